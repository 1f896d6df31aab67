package engineio

import (
	"bytes"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// The JSONP decoders of a CloseScanner undo DecodeJSONPPost and UnwrapJSONP
// one byte at a time. A body's reading is only known at its end, so both run
// side by side, each feeding its own payload scanner.

// sink gathers the bytes a decoder produces so that the payload scanner reads
// them in runs rather than one call per byte.
type sink struct {
	to  *payloadScan
	n   int
	buf [128]byte
}

func (k *sink) put(c byte) {
	if k.n == len(k.buf) {
		k.flush()
	}
	k.buf[k.n] = c
	k.n++
}

func (k *sink) putRune(r rune) {
	var b [utf8.UTFMax]byte
	for _, c := range b[:utf8.EncodeRune(b[:], r)] {
		k.put(c)
	}
}

func (k *sink) write(p []byte) {
	if len(p) <= len(k.buf)-k.n {
		k.n += copy(k.buf[k.n:], p)
		return
	}
	k.flush()
	k.to.write(p)
}

func (k *sink) flush() {
	k.to.write(k.buf[:k.n])
	k.n = 0
}

// stretch is a run of bytes that leaves a decoder's state as it is: the
// decoder passes each of them on unchanged (emit) or ignores them all.
type stretch struct {
	n    int
	emit bool
}

// take lets p, the start of the stretch, through.
func (r *stretch) take(p []byte, out *sink) {
	if r.emit {
		out.write(p)
	}
	r.n -= len(p)
}

// upTo returns how many bytes at the start of p are not c.
func upTo(p []byte, c byte) int {
	if i := bytes.IndexByte(p, c); i >= 0 {
		return i
	}
	return len(p)
}

// byteSet marks bytes for spanNot.
type byteSet [256]bool

func newByteSet(members string) (t byteSet) {
	for i := range len(members) {
		t[members[i]] = true
	}
	return t
}

// spanNot returns how many bytes at the start of p are not in set.
func spanNot(p []byte, set *byteSet) int {
	for i, c := range p {
		if set[c] {
			return i
		}
	}
	return len(p)
}

var (
	formKeyEnds   = newByteSet("=&")
	formValueEnds = newByteSet("&%+\\") // '\\' may start a newline escape
	jsonSpecial   = func() (t byteSet) {
		for c := range 0x20 {
			t[c] = true
		}
		t['"'], t['\\'] = true, true
		return t
	}()
)

// formScan decodes a form-encoded POST body d=<urlencoded payload>: the first
// field named d holds the payload, %XX and '+' decoded, then the client's
// newline escapes undone.
type formScan struct {
	phase   uint8
	keyLen  uint8   // bytes of the current key, len(key)+1 once it is too long to name d
	key     [3]byte // the current key so far; "d" and "%64" both name the payload
	nibble  byte    // fPct2: the escape's first hex digit
	slashes uint8   // backslashes held by the newline unescaping (0-2)
}

const (
	fKey   uint8 = iota // in a field's key
	fSkip               // in a field other than d
	fValue              // in d's value
	fPct1               // after '%' in d's value
	fPct2               // after '%' and one hex digit
	fDone               // d's value has ended: the body is a POST and the rest does not matter
	fBad                // d's value holds a bad escape: the body is no POST
)

func (f *formScan) feed(c byte, out *sink) {
	switch f.phase {
	case fKey:
		f.keyByte(c)
	case fSkip:
		if c == '&' {
			f.phase, f.keyLen = fKey, 0
		}
	case fValue:
		f.valueByte(c, out)
	case fPct1, fPct2:
		f.escapeByte(c, out)
	}
}

// stretch finds the bytes at the start of p that f would ignore or pass on unchanged.
func (f *formScan) stretch(p []byte) stretch {
	switch {
	case f.phase == fDone || f.phase == fBad:
		return stretch{n: len(p)}
	case f.phase == fSkip:
		return stretch{n: upTo(p, '&')}
	case f.phase == fKey && int(f.keyLen) > len(f.key):
		return stretch{n: spanNot(p, &formKeyEnds)}
	case f.phase == fValue && f.slashes == 0:
		return stretch{n: spanNot(p, &formValueEnds), emit: true}
	}
	return stretch{}
}

func (f *formScan) keyByte(c byte) {
	switch {
	case c == '=' && f.isD():
		f.phase = fValue
	case c == '=':
		f.phase = fSkip
	case c == '&' && f.isD():
		f.phase = fDone // "d" without '=' holds an empty payload
	case c == '&':
		f.keyLen = 0
	case int(f.keyLen) < len(f.key):
		f.key[f.keyLen] = c
		f.keyLen++
	default:
		f.keyLen = uint8(len(f.key)) + 1
	}
}

// isD reports whether the current key decodes to "d", as isFormKeyD would
// (without the error value it allocates for a bad escape).
func (f *formScan) isD() bool {
	if int(f.keyLen) > len(f.key) {
		return false
	}
	k := string(f.key[:f.keyLen])
	return k == "d" || k == "%64"
}

func (f *formScan) valueByte(c byte, out *sink) {
	switch c {
	case '&':
		f.flushSlashes(out)
		f.phase = fDone
	case '%':
		f.phase = fPct1
	case '+':
		f.unescapeNewline(' ', out)
	default:
		f.unescapeNewline(c, out)
	}
}

// escapeByte reads a hex digit of %XX; '&' is no digit, as the field ends there.
func (f *formScan) escapeByte(c byte, out *sink) {
	h := unhex(c)
	switch {
	case h < 0:
		f.phase = fBad
	case f.phase == fPct1:
		f.nibble, f.phase = byte(h), fPct2
	default:
		f.phase = fValue
		f.unescapeNewline(f.nibble<<4|byte(h), out)
	}
}

// unescapeNewline does what unescapeJSONPNewlines does, left to right: `\\n`
// stays `\n` and `\n` becomes a newline. Up to two backslashes wait for the
// byte that decides.
func (f *formScan) unescapeNewline(c byte, out *sink) {
	switch {
	case f.slashes == 0 && c == '\\':
		f.slashes = 1
	case f.slashes == 0:
		out.put(c)
	case f.slashes == 1 && c == 'n':
		f.slashes = 0
		out.put('\n')
	case f.slashes == 1 && c == '\\':
		f.slashes = 2
	case f.slashes == 1:
		f.slashes = 0
		out.put('\\')
		out.put(c)
	case c == 'n':
		f.slashes = 0
		out.put('\\')
		out.put('n')
	default: // the first of two backslashes stands alone; the second may still start an escape
		f.slashes = 1
		out.put('\\')
		f.unescapeNewline(c, out)
	}
}

func (f *formScan) flushSlashes(out *sink) {
	for ; f.slashes > 0; f.slashes-- {
		out.put('\\')
	}
}

// finish ends the body and reports whether it was a valid POST body.
func (f *formScan) finish(out *sink) bool {
	switch f.phase {
	case fKey:
		return f.isD()
	case fValue:
		f.flushSlashes(out)
		return true
	}
	return f.phase == fDone
}

// jsonpScan decodes a JSONP answer ___eio[N]("…"); (the ';' optional, white
// space after it allowed), unescaping the JSON string on the fly.
type jsonpScan struct {
	phase uint8
	n     uint8   // gPrefix: prefix bytes matched; gHex: hex digits read; gTrail: bytes of a rune held
	unit  uint16  // gHex: the UTF-16 unit being read
	high  uint16  // a high surrogate waiting for a \u low one to pair with, else 0
	ws    [3]byte // gTrail: a multibyte rune that must be white space
}

const (
	gPrefix    uint8 = iota // in "___eio["
	gIndex                  // in the callback index's digits
	gParen                  // after ']'
	gQuote                  // after '('
	gString                 // in the JSON string
	gEscape                 // after '\'
	gHex                    // in \uXXXX
	gClose                  // after the closing quote
	gSemicolon              // after ')', where an optional ';' may come
	gTrail                  // in the white space that may end the body
	gBad                    // not a JSONP answer
)

// jsonEscapes maps the byte after '\' to what it stands for; 0 marks a bad
// escape ('u' is handled apart).
var jsonEscapes = [256]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

func (j *jsonpScan) feed(c byte, out *sink) {
	switch j.phase {
	case gPrefix:
		j.prefixByte(c)
	case gIndex:
		if c == ']' {
			j.phase = gParen
		} else if !isDigit(c) {
			j.phase = gBad
		}
	case gParen:
		j.expect(c, '(', gQuote)
	case gQuote:
		j.expect(c, '"', gString)
	case gString:
		j.stringByte(c, out)
	case gEscape:
		j.escapeByte(c, out)
	case gHex:
		j.hexByte(c, out)
	case gClose:
		j.expect(c, ')', gSemicolon)
	case gSemicolon:
		if j.phase = gTrail; c != ';' {
			j.trailByte(c)
		}
	case gTrail:
		j.trailByte(c)
	}
}

// stretch finds the bytes at the start of p that j would ignore or pass on unchanged.
func (j *jsonpScan) stretch(p []byte) stretch {
	switch {
	case j.phase == gBad:
		return stretch{n: len(p)}
	case j.phase == gString && j.high == 0:
		return stretch{n: spanNot(p, &jsonSpecial), emit: true}
	}
	return stretch{}
}

func (j *jsonpScan) expect(c, want byte, next uint8) {
	if c != want {
		next = gBad
	}
	j.phase = next
}

func (j *jsonpScan) prefixByte(c byte) {
	switch {
	case c != jsonpPrefix[j.n]:
		j.phase = gBad
	case int(j.n) == len(jsonpPrefix)-1:
		j.phase, j.n = gIndex, 0
	default:
		j.n++
	}
}

func (j *jsonpScan) stringByte(c byte, out *sink) {
	switch {
	case c == '\\':
		j.phase = gEscape
	case c < 0x20: // JSON wants control characters escaped
		j.phase = gBad
	case c == '"':
		j.flushHigh(out)
		j.phase = gClose
	default:
		j.flushHigh(out)
		out.put(c)
	}
}

func (j *jsonpScan) escapeByte(c byte, out *sink) {
	if c == 'u' {
		j.phase, j.n, j.unit = gHex, 0, 0
		return
	}
	j.flushHigh(out)
	if j.phase = gString; jsonEscapes[c] == 0 {
		j.phase = gBad
		return
	}
	out.put(jsonEscapes[c])
}

func (j *jsonpScan) hexByte(c byte, out *sink) {
	h := unhex(c)
	if h < 0 {
		j.phase = gBad
		return
	}
	j.unit = j.unit<<4 | uint16(h)
	if j.n++; j.n < 4 {
		return
	}
	j.phase, j.n = gString, 0
	j.codeUnit(rune(j.unit), out)
}

// codeUnit writes the unit of a \u escape, pairing surrogates the way
// appendJSONUnquote does: a high one joins a low one that follows at once,
// anything else unpaired becomes U+FFFD.
func (j *jsonpScan) codeUnit(r rune, out *sink) {
	if j.high != 0 {
		pair := utf16.DecodeRune(rune(j.high), r)
		j.high = 0
		if pair != utf8.RuneError {
			out.putRune(pair)
			return
		}
		out.putRune(utf8.RuneError)
	}
	switch {
	case 0xd800 <= r && r < 0xdc00:
		j.high = uint16(r)
	case utf16.IsSurrogate(r):
		out.putRune(utf8.RuneError)
	default:
		out.putRune(r)
	}
}

// flushHigh writes a high surrogate that no low one followed.
func (j *jsonpScan) flushHigh(out *sink) {
	if j.high != 0 {
		j.high = 0
		out.putRune(utf8.RuneError)
	}
}

// trailByte checks what follows the call: bytes.TrimSpace must leave nothing,
// so it has to be white space runes, whole and valid.
func (j *jsonpScan) trailByte(c byte) {
	j.ws[j.n] = c
	j.n++
	size, _, _ := utf8Lead(j.ws[0])
	switch {
	case j.n == 1 && c < utf8.RuneSelf:
		j.n = 0
		if !isASCIISpace(c) {
			j.phase = gBad
		}
	case size == 1 || size > len(j.ws): // no lead byte, or a rune above U+FFFF: none is white space
		j.phase = gBad
	case int(j.n) == size:
		r, n := utf8.DecodeRune(j.ws[:size])
		j.n = 0
		if n != size || !unicode.IsSpace(r) {
			j.phase = gBad
		}
	}
}

// valid reports whether the body so far is a whole JSONP answer.
func (j *jsonpScan) valid() bool {
	return (j.phase == gSemicolon || j.phase == gTrail) && j.n == 0
}

func isASCIISpace(c byte) bool {
	switch c {
	case '\t', '\n', '\v', '\f', '\r', ' ':
		return true
	}
	return false
}
