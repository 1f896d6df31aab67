package engineio

import "bytes"

// recordSeparator joins packets in a v4 polling payload. The protocol assumes
// it never occurs inside packet data.
const recordSeparator = 0x1e

// AppendPayloadV4 appends a v4 polling payload: packets joined by 0x1e, text
// packets as "<digit><data>", binary packets as "b<base64>" (a binary packet
// is always a message in v4, so its type is not written).
func AppendPayloadV4(dst []byte, pkts []Packet) []byte {
	for i, p := range pkts {
		if i > 0 {
			dst = append(dst, recordSeparator)
		}
		dst = appendRecordV4(dst, p)
	}
	return dst
}

func appendRecordV4(dst []byte, p Packet) []byte {
	if p.Binary {
		dst = append(dst, 'b')
		return b64.AppendEncode(dst, p.Data)
	}
	return AppendPacket(dst, p)
}

// DecodePayloadV4 calls fn for each packet of a v4 polling payload, in order.
// Text packets' Data aliases body; binary packets' Data is newly allocated
// (the base64 has to be decoded somewhere). It stops at the first error from
// fn and returns it unchanged. Packets before a malformed record have already
// been passed to fn when the error is returned. An empty body is invalid.
func DecodePayloadV4(body []byte, fn func(Packet) error) error {
	if len(body) == 0 {
		return payloadError("empty v4 payload")
	}
	for n := 0; ; n++ {
		rec, rest, more := cutRecordV4(body)
		p, err := decodeRecordV4(nil, rec)
		if err != nil {
			return payloadError("record %d: %w", n, err)
		}
		if err := fn(p); err != nil {
			return err
		}
		if !more {
			return nil
		}
		body = rest
	}
}

// cutRecordV4 splits off the first record; more reports a separator followed.
func cutRecordV4(body []byte) (rec, rest []byte, more bool) {
	i := bytes.IndexByte(body, recordSeparator)
	if i < 0 {
		return body, nil, false
	}
	return body[:i], body[i+1:], true
}

// decodeRecordV4 decodes one record. Base64 data is appended to scratch, so a
// caller may pass a stack buffer when the packet does not outlive it.
func decodeRecordV4(scratch, rec []byte) (Packet, error) {
	if len(rec) > 0 && rec[0] == 'b' {
		data, err := appendBase64Decode(scratch, rec[1:])
		if err != nil {
			return Packet{}, err
		}
		return Packet{Type: Message, Data: data, Binary: true}, nil
	}
	return DecodeTextPacket(rec)
}
