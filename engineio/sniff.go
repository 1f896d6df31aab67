package engineio

import (
	"bytes"
	"fmt"
)

// SniffHandshake finds the open packet in the body of a polling handshake
// answer, as a proxy sees it, and returns its info. It accepts a v4 payload
// ("0{…}" with possibly more records after 0x1e), a v3 string payload
// ("118:0{…}" with possibly more packets after it, base64 records included),
// a v3 XHR2 binary payload (first byte 0x00 or 0x01), and any of those as a
// JSONP answer ___eio[N]("…"). Only the first packet is examined, and it
// must be an open packet (else ErrNotOpen). The body must already be
// decompressed.
func SniffHandshake(body []byte) (OpenInfo, error) {
	var unquoted [512]byte // JSONP content; stays on the stack when it fits
	if hasJSONPPrefix(body) {
		raw, escaped, err := cutJSONP(body)
		if err != nil {
			return OpenInfo{}, err
		}
		body = raw
		if escaped {
			body = appendJSONUnquote(unquoted[:0], raw)
		}
	}
	var scratch [256]byte // base64 open data
	p, err := firstPacket(scratch[:0], body)
	if err != nil {
		return OpenInfo{}, err
	}
	if p.Type != Open {
		return OpenInfo{}, notOpenError(p)
	}
	return ParseOpen(p.Data)
}

// firstPacket decodes the first packet of a polling payload of any encoding.
func firstPacket(scratch, body []byte) (Packet, error) {
	switch {
	case len(body) == 0:
		return Packet{}, payloadError("empty handshake body")
	case bytes.HasPrefix(body, []byte{0x1f, 0x8b}):
		return Packet{}, payloadError("handshake body is gzip-compressed")
	case body[0] <= 1:
		return firstPacketV3Binary(body)
	case startsV3String(body):
		return firstPacketV3String(scratch, body)
	}
	rec, _, _ := cutRecordV4(body)
	p, err := decodeRecordV4(scratch, rec)
	if err != nil {
		return Packet{}, payloadError("first v4 record: %w", err)
	}
	return p, nil
}

func firstPacketV3Binary(body []byte) (Packet, error) {
	isBinary, rec, _, err := cutRecordV3Binary(body)
	if err != nil {
		return Packet{}, payloadError("first v3 binary record: %w", err)
	}
	p, err := decodeRecordV3Binary(isBinary, rec)
	if err != nil {
		return Packet{}, payloadError("first v3 binary record: %w", err)
	}
	return p, nil
}

// firstPacketV3String skips empty records ("0:") and decodes the first real
// one; the rest of the payload is not examined.
func firstPacketV3String(scratch, body []byte) (Packet, error) {
	for len(body) > 0 {
		rec, rest, err := cutRecordV3String(body)
		if err != nil {
			return Packet{}, payloadError("first v3 record: %w", err)
		}
		if len(rec) > 0 {
			p, err := decodeRecordV3String(scratch, rec)
			if err != nil {
				return Packet{}, payloadError("first v3 record: %w", err)
			}
			return p, nil
		}
		body = rest
	}
	return Packet{}, payloadError("v3 payload holds no packet")
}

// startsV3String reports whether body starts with "<digits>:". A v4 body
// cannot: its first byte is a type digit followed by data, and an open
// packet's data starts with '{'.
func startsV3String(body []byte) bool {
	i := 0
	for i < len(body) && isDigit(body[i]) {
		i++
	}
	return i > 0 && i < len(body) && body[i] == ':'
}

func notOpenError(p Packet) error {
	kind := "text"
	if p.Binary {
		kind = "binary"
	}
	return fmt.Errorf("%w: got %s %s", ErrNotOpen, kind, p.Type)
}
