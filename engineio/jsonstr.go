package engineio

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// jsonPlain marks bytes JSON.stringify copies unchanged. 0xE2 is left out so
// the JSONP encoder can look for U+2028/U+2029 (E2 80 A8/A9) in one pass.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\' && c != 0xe2
	}
	return t
}()

// appendJSONString appends s as a JSON string literal, escaping exactly what
// JavaScript's JSON.stringify escapes (no HTML escaping, unlike
// encoding/json). With lineSeps, U+2028 and U+2029 are escaped too, as
// JSONP needs them to be valid JavaScript. Bytes that are not valid UTF-8 are
// copied unchanged.
func appendJSONString[S string | []byte](dst []byte, s S, lineSeps bool) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if jsonPlain[c] {
			i++
			continue
		}
		if c == 0xe2 {
			if !lineSeps || !isLineSep(s, i) {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\u202`...)
			dst = append(dst, "89"[s[i+2]-0xa8])
			i += 3
			start = i
			continue
		}
		dst = append(dst, s[start:i]...)
		dst = appendJSONEscape(dst, c)
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// isLineSep reports whether U+2028 or U+2029 starts at s[i].
func isLineSep[S string | []byte](s S, i int) bool {
	return len(s)-i >= 3 && s[i] == 0xe2 && s[i+1] == 0x80 && (s[i+2] == 0xa8 || s[i+2] == 0xa9)
}

func appendJSONEscape(dst []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(dst, '\\', c)
	case '\b':
		return append(dst, '\\', 'b')
	case '\f':
		return append(dst, '\\', 'f')
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	return append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
}

// scanJSONString validates the JSON string literal at the start of s (s[0]
// must be '"'). It returns the raw content between the quotes, the index just
// past the closing quote, and whether the content holds escapes.
func scanJSONString(s []byte) (raw []byte, next int, escaped bool, err error) {
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return s[1:i], i + 1, escaped, nil
		case c < 0x20:
			return nil, 0, false, errorString("control character in string")
		case c == '\\':
			escaped = true
			i++
			if i >= len(s) {
				break
			}
			switch s[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(s) || !isHex4(s[i+1:i+5]) {
					return nil, 0, false, errorString("bad \\u escape")
				}
				i += 4
			default:
				return nil, 0, false, errorString("bad escape")
			}
		}
	}
	return nil, 0, false, errorString("unterminated string")
}

func isHex4(s []byte) bool {
	for _, c := range s[:4] {
		if unhex(c) < 0 {
			return false
		}
	}
	return true
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

func hex4(s []byte) rune {
	return rune(unhex(s[0])<<12 | unhex(s[1])<<8 | unhex(s[2])<<4 | unhex(s[3]))
}

// appendJSONUnquote appends the decoded form of raw, string content already
// validated by scanJSONString. A lone surrogate becomes U+FFFD, as in
// encoding/json, since UTF-8 cannot carry it.
func appendJSONUnquote(dst, raw []byte) []byte {
	for {
		i := bytes.IndexByte(raw, '\\')
		if i < 0 {
			return append(dst, raw...)
		}
		dst = append(dst, raw[:i]...)
		c := raw[i+1]
		raw = raw[i+2:]
		switch c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			var r rune
			r, raw = unquoteRune(raw)
			dst = utf8.AppendRune(dst, r)
		default: // '"', '\\', '/'
			dst = append(dst, c)
		}
	}
}

// unquoteRune decodes the 4 hex digits after `\u`, joining a following
// `\uXXXX` low surrogate when r is a high one.
func unquoteRune(raw []byte) (rune, []byte) {
	r := hex4(raw)
	raw = raw[4:]
	if !utf16.IsSurrogate(r) {
		return r, raw
	}
	if len(raw) >= 6 && raw[0] == '\\' && raw[1] == 'u' && isHex4(raw[2:]) {
		if pair := utf16.DecodeRune(r, hex4(raw[2:])); pair != utf8.RuneError {
			return pair, raw[6:]
		}
	}
	return utf8.RuneError, raw
}
