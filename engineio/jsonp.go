package engineio

import "bytes"

// jsonpPrefix opens every JSONP answer: the client registers its callbacks in
// the global ___eio array.
const jsonpPrefix = "___eio["

// AppendJSONP appends the JSONP answer ___eio[N]("<payload>"); for a v3 client
// polling with j=N. Only the digits of index are kept, like Node, so the query
// value cannot inject script. The payload is escaped like JSON.stringify, plus
// U+2028 and U+2029, which JavaScript (unlike JSON) forbids raw in strings.
func AppendJSONP(dst []byte, index []byte, payload []byte) []byte {
	dst = append(dst, jsonpPrefix...)
	for _, c := range index {
		if isDigit(c) {
			dst = append(dst, c)
		}
	}
	dst = append(dst, ']', '(')
	dst = appendJSONString(dst, payload, true)
	return append(dst, ')', ';')
}

// UnwrapJSONP returns the payload inside a JSONP answer, the inverse of
// AppendJSONP. The result aliases body when the string holds no escapes and
// is newly allocated otherwise. A missing final ';' and trailing whitespace
// are tolerated.
func UnwrapJSONP(body []byte) ([]byte, error) {
	raw, escaped, err := cutJSONP(body)
	if err != nil || !escaped {
		return raw, err
	}
	return appendJSONUnquote(make([]byte, 0, len(raw)), raw), nil
}

// cutJSONP validates a JSONP answer and returns the raw (still escaped)
// content of its string argument.
func cutJSONP(body []byte) (raw []byte, escaped bool, err error) {
	if !hasJSONPPrefix(body) {
		return nil, false, payloadError("JSONP answer does not start with %q", jsonpPrefix)
	}
	rest, ok := body[len(jsonpPrefix):], false
	i := 0
	for i < len(rest) && isDigit(rest[i]) {
		i++
	}
	if rest, ok = bytes.CutPrefix(rest[i:], []byte("](")); !ok || len(rest) == 0 || rest[0] != '"' {
		return nil, false, payloadError(`JSONP answer lacks ](" after the index`)
	}
	raw, next, escaped, err := scanJSONString(rest)
	if err != nil {
		return nil, false, payloadError("JSONP string: %w", err)
	}
	rest = rest[next:]
	if rest, ok = bytes.CutPrefix(rest, []byte(")")); !ok {
		return nil, false, payloadError("JSONP answer lacks ')' after the string")
	}
	rest = bytes.TrimPrefix(rest, []byte(";"))
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, false, payloadError("trailing data after JSONP call")
	}
	return raw, escaped, nil
}

// DecodeJSONPPost returns the payload of a JSONP POST body, a form-encoded
// d=<urlencoded payload>. The client writes newlines as `\n` and a literal
// `\n` as `\\n` (browsers would otherwise turn newlines into CRLF); both are
// turned back. The result is newly allocated.
func DecodeJSONPPost(body []byte) ([]byte, error) {
	for len(body) > 0 {
		var field []byte
		field, body, _ = bytes.Cut(body, []byte("&"))
		key, val, _ := bytes.Cut(field, []byte("="))
		if !isFormKeyD(key) {
			continue
		}
		out, err := appendFormUnescape(make([]byte, 0, len(val)), val)
		if err != nil {
			return nil, err
		}
		return unescapeJSONPNewlines(out), nil
	}
	return nil, payloadError("JSONP POST body has no d field")
}

// isFormKeyD reports whether a form key decodes to "d" (it may be escaped).
func isFormKeyD(key []byte) bool {
	if len(key) > 3 { // "%64" is the longest spelling of "d"
		return false
	}
	var buf [3]byte
	k, err := appendFormUnescape(buf[:0], key)
	return err == nil && len(k) == 1 && k[0] == 'd'
}

// appendFormUnescape appends the application/x-www-form-urlencoded decoding
// of s: '+' is a space and %XX a byte.
func appendFormUnescape(dst, s []byte) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '+':
			dst = append(dst, ' ')
		case '%':
			if i+2 >= len(s) || unhex(s[i+1]) < 0 || unhex(s[i+2]) < 0 {
				return dst, payloadError("bad %%-escape in JSONP POST body")
			}
			dst = append(dst, byte(unhex(s[i+1])<<4|unhex(s[i+2])))
			i += 2
		default:
			dst = append(dst, c)
		}
	}
	return dst, nil
}

// unescapeJSONPNewlines undoes the client's newline escaping in place:
// `\\n` becomes `\n` and `\n` becomes a newline, scanning left to right like
// Node's pair of regular expressions.
func unescapeJSONPNewlines(b []byte) []byte {
	if bytes.IndexByte(b, '\\') < 0 {
		return b
	}
	w := 0
	for r := 0; r < len(b); {
		if b[r] == '\\' {
			if r+2 < len(b) && b[r+1] == '\\' && b[r+2] == 'n' {
				b[w], b[w+1] = '\\', 'n'
				w, r = w+2, r+3
				continue
			}
			if r+1 < len(b) && b[r+1] == 'n' {
				b[w] = '\n'
				w, r = w+1, r+2
				continue
			}
		}
		b[w] = b[r]
		w, r = w+1, r+1
	}
	return b[:w]
}

func hasJSONPPrefix(b []byte) bool {
	return len(b) >= len(jsonpPrefix) && string(b[:len(jsonpPrefix)]) == jsonpPrefix
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
