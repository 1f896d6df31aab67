package engineio

import (
	"encoding/binary"
	"strconv"
	"unicode/utf8"
)

// AppendPayloadV3String appends a v3 string payload: "<len>:<packet>" per
// packet, where len counts UTF-16 code units of the packet text (JavaScript's
// String.length). Binary packets are written as "b<digit><base64>". An empty
// batch is written "0:". Packet data should be valid UTF-8; an invalid byte
// is counted as one unit, the way a decoder's U+FFFD replacement would be.
func AppendPayloadV3String(dst []byte, pkts []Packet) []byte {
	if len(pkts) == 0 {
		return append(dst, "0:"...)
	}
	for _, p := range pkts {
		dst = appendRecordV3String(dst, p)
	}
	return dst
}

func appendRecordV3String(dst []byte, p Packet) []byte {
	if p.Binary {
		n := 2 + b64.EncodedLen(len(p.Data)) // 'b', type digit, base64
		dst = strconv.AppendInt(dst, int64(n), 10)
		dst = append(dst, ':', 'b', p.Type.digit())
		return b64.AppendEncode(dst, p.Data)
	}
	dst = strconv.AppendInt(dst, int64(1+utf16Len(p.Data)), 10)
	dst = append(dst, ':')
	return AppendPacket(dst, p)
}

// DecodePayloadV3String calls fn for each packet of a v3 string payload, in
// order. Text packets' Data aliases body; base64 ("b…") packets' Data is
// newly allocated. Zero-length records (as in the empty payload "0:") carry
// no packet and are skipped. It stops at the first error from fn and returns
// it unchanged. An empty body is invalid.
func DecodePayloadV3String(body []byte, fn func(Packet) error) error {
	if len(body) == 0 {
		return payloadError("empty v3 payload")
	}
	for n := 0; len(body) > 0; n++ {
		rec, rest, err := cutRecordV3String(body)
		if err != nil {
			return payloadError("record %d: %w", n, err)
		}
		body = rest
		if len(rec) == 0 {
			continue
		}
		p, err := decodeRecordV3String(nil, rec)
		if err != nil {
			return payloadError("record %d: %w", n, err)
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	return nil
}

// cutRecordV3String splits "<len>:<packet>" off the front of body. The errors
// it returns are plain descriptions; callers wrap them.
func cutRecordV3String(body []byte) (rec, rest []byte, err error) {
	n, i := 0, 0
	for ; i < len(body) && body[i] != ':'; i++ {
		c := body[i]
		if c < '0' || c > '9' {
			return nil, nil, errorString("bad length digit")
		}
		n = n*10 + int(c-'0')
		// A packet has at least one byte per unit, so a length beyond the
		// body cannot fit; checking here also rules out overflow.
		if n > len(body) {
			return nil, nil, errorString("length runs past end")
		}
	}
	switch {
	case i == 0:
		return nil, nil, errorString("empty length")
	case i == len(body):
		return nil, nil, errorString("missing ':' after length")
	}
	body = body[i+1:]
	end, ok := utf16Prefix(body, n)
	if !ok {
		return nil, nil, errorString("length runs past end")
	}
	return body[:end], body[end:], nil
}

// decodeRecordV3String decodes a non-empty record of a v3 string payload.
// Base64 data is appended to scratch.
func decodeRecordV3String(scratch, rec []byte) (Packet, error) {
	if rec[0] != 'b' {
		return DecodeTextPacket(rec)
	}
	if len(rec) < 2 {
		return Packet{}, packetError("base64 packet without type")
	}
	t, ok := typeFromDigit(rec[1])
	if !ok {
		return Packet{}, packetError("unknown type %q", rec[1])
	}
	data, err := appendBase64Decode(scratch, rec[2:])
	if err != nil {
		return Packet{}, err
	}
	return Packet{Type: t, Data: data, Binary: true}, nil
}

// NeedsV3Binary reports whether a v3 batch should be sent as an XHR2 binary
// payload: the client did not ask for base64 (b64=1) and the batch holds at
// least one binary packet.
func NeedsV3Binary(pkts []Packet, b64 bool) bool {
	if b64 {
		return false
	}
	for _, p := range pkts {
		if p.Binary {
			return true
		}
	}
	return false
}

// AppendPayloadV3Binary appends a v3 XHR2 binary payload. Each packet is a
// 0x00 (string) or 0x01 (binary) marker, the decimal length with one byte per
// digit value, 0xFF, then the packet: the ASCII type digit and UTF-8 text, or
// a raw type byte and the data. Lengths count bytes and include the type.
func AppendPayloadV3Binary(dst []byte, pkts []Packet) []byte {
	for _, p := range pkts {
		marker, typ := byte(0), p.Type.digit()
		if p.Binary {
			marker, typ = 1, byte(p.Type)
		}
		dst = append(dst, marker)
		digits := len(dst)
		dst = strconv.AppendInt(dst, int64(1+len(p.Data)), 10)
		for i := digits; i < len(dst); i++ {
			dst[i] -= '0'
		}
		dst = append(dst, 0xff, typ)
		dst = append(dst, p.Data...)
	}
	return dst
}

// maxBinaryLenDigits bounds the length field of an XHR2 record; ten digits
// already exceed any body we could be handed.
const maxBinaryLenDigits = 10

// DecodePayloadV3Binary calls fn for each packet of a v3 XHR2 binary payload,
// in order. Data aliases body. It stops at the first error from fn and
// returns it unchanged. An empty body is invalid.
func DecodePayloadV3Binary(body []byte, fn func(Packet) error) error {
	if len(body) == 0 {
		return payloadError("empty v3 binary payload")
	}
	for n := 0; len(body) > 0; n++ {
		isBinary, rec, rest, err := cutRecordV3Binary(body)
		if err != nil {
			return payloadError("record %d: %w", n, err)
		}
		p, err := decodeRecordV3Binary(isBinary, rec)
		if err != nil {
			return payloadError("record %d: %w", n, err)
		}
		if err := fn(p); err != nil {
			return err
		}
		body = rest
	}
	return nil
}

// cutRecordV3Binary splits one XHR2 record off the front of a non-empty body.
func cutRecordV3Binary(body []byte) (isBinary bool, rec, rest []byte, err error) {
	switch body[0] {
	case 0:
	case 1:
		isBinary = true
	default:
		return false, nil, nil, errorString("bad record marker")
	}
	n, i := 0, 1
	for ; i < len(body) && body[i] != 0xff; i++ {
		d := body[i]
		switch {
		case d > 9:
			return false, nil, nil, errorString("bad length digit")
		case i > maxBinaryLenDigits:
			return false, nil, nil, errorString("length has too many digits")
		}
		n = n*10 + int(d)
	}
	switch {
	case i == 1:
		return false, nil, nil, errorString("empty length")
	case i == len(body):
		return false, nil, nil, errorString("missing 0xFF after length")
	}
	body = body[i+1:]
	if n > len(body) {
		return false, nil, nil, errorString("length runs past end")
	}
	return isBinary, body[:n], body[n:], nil
}

func decodeRecordV3Binary(isBinary bool, rec []byte) (Packet, error) {
	if !isBinary {
		return DecodeTextPacket(rec)
	}
	return DecodeBinaryFrame(V3, rec)
}

// utf16Len returns the length JavaScript would report for s decoded as UTF-8:
// characters outside the BMP count two units, an invalid byte counts one.
func utf16Len(s []byte) int {
	n := 0
	for i := 0; i < len(s); {
		ascii := asciiPrefixLen(s[i:])
		n += ascii
		if i += ascii; i == len(s) {
			break
		}
		r, size := utf8.DecodeRune(s[i:])
		n += runeUnits(r)
		i += size
	}
	return n
}

// utf16Prefix returns the byte length of the prefix of s that holds exactly
// units UTF-16 code units. It fails when s is too short or when the prefix
// would end inside a surrogate pair.
func utf16Prefix(s []byte, units int) (int, bool) {
	i := 0
	for units > 0 {
		ascii := asciiPrefixLen(s[i:min(len(s), i+units)])
		i += ascii
		if units -= ascii; units == 0 {
			break
		}
		if i >= len(s) {
			return 0, false
		}
		r, size := utf8.DecodeRune(s[i:])
		units -= runeUnits(r)
		i += size
	}
	return i, units == 0
}

// asciiPrefixLen returns how many leading bytes of s are ASCII, testing eight
// at a time: payload text is mostly ASCII JSON.
func asciiPrefixLen(s []byte) int {
	i := 0
	for ; len(s)-i >= 8; i += 8 {
		if binary.LittleEndian.Uint64(s[i:])&0x8080808080808080 != 0 {
			break
		}
	}
	for i < len(s) && s[i] < utf8.RuneSelf {
		i++
	}
	return i
}

func runeUnits(r rune) int {
	if r >= 0x10000 {
		return 2
	}
	return 1
}

// errorString is an allocation-free error for framing details that callers
// wrap with a sentinel.
type errorString string

func (e errorString) Error() string { return string(e) }
