package httpwire

// Byte classes, as 256-entry tables so that the hot loops are one load per byte.
var (
	// tokenChar: RFC 9110 tchar, the bytes of methods, header names and Connection options.
	tokenChar = makeTable("!#$%&'*+-.^_`|~", true)
	// targetChar: the bytes of a request target. Visible ASCII but '#': a fragment is never sent,
	// and raw UTF-8 is refused (browsers percent-encode it), so no two parsers decode it differently.
	targetChar = func() (t [256]bool) {
		for c := 0x21; c < 0x7f; c++ {
			t[c] = c != '#'
		}
		return t
	}()
	// valueChar: field-vchar, SP and HTAB (RFC 9110 §5.5), obs-text included: no control byte.
	valueChar = func() (t [256]bool) {
		t['\t'] = true
		for c := 0x20; c < 0x100; c++ {
			t[c] = c != 0x7f
		}
		return t
	}()
	// hostChar: the bytes of RFC 3986 host [":" port]: reg-name (unreserved, sub-delims), IP-literal
	// brackets and the port's colon. No '@', '/', '?', '#', '\\' or space: a Host that a node could
	// split into user, host and path differently is refused. No '%' either, though reg-name allows
	// pct-encoded: net/http decodes "%61dmin" in a target's authority to "admin", fasthttp does not.
	hostChar = makeTable("-._~!$&'()*+,;=:[]", true)
)

// makeTable marks extra and, when alnum is set, letters and digits.
func makeTable(extra string, alnum bool) (t [256]bool) {
	for i := 0; i < len(extra); i++ {
		t[extra[i]] = true
	}
	for c := 0; alnum && c < 256; c++ {
		t[c] = t[c] || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
	}
	return t
}

// hexValue is a byte's value as a hex digit, or -1.
func hexValue(c byte) int64 {
	switch {
	case '0' <= c && c <= '9':
		return int64(c - '0')
	case 'a' <= c && c <= 'f':
		return int64(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int64(c-'A') + 10
	}
	return -1
}

// equalFold compares ASCII without case; s is lower case. Only letters fold: a bare c|0x20
// would also turn "\r" into "-" and "_" into DEL.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		if lower(b[i]) != s[i] {
			return false
		}
	}
	return true
}

// equalFoldBytes compares ASCII without case, both sides in any case.
func equalFoldBytes[T string | []byte](a []byte, b T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func isOWS(c byte) bool { return c == ' ' || c == '\t' }

// trimOWS removes leading and trailing SP and HTAB.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && isOWS(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isOWS(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func allOf(b []byte, table *[256]bool) bool {
	for _, c := range b {
		if !table[c] {
			return false
		}
	}
	return true
}
