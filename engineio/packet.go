package engineio

import (
	"errors"
	"fmt"
	"strconv"
)

// Version is an Engine.IO protocol revision (the EIO query parameter).
type Version int

// Supported protocol revisions.
const (
	V3 Version = 3
	V4 Version = 4
)

// PacketType is the Engine.IO packet type, written on the wire as one ASCII
// digit in text form or as a raw byte in v3 binary form.
type PacketType byte

// Packet types in wire order.
const (
	Open PacketType = iota
	Close
	Ping
	Pong
	Message
	Upgrade
	Noop
)

var packetTypeNames = [...]string{"open", "close", "ping", "pong", "message", "upgrade", "noop"}

// String returns the protocol name of t, e.g. "message".
func (t PacketType) String() string {
	if t.valid() {
		return packetTypeNames[t]
	}
	return "PacketType(" + strconv.Itoa(int(t)) + ")"
}

func (t PacketType) valid() bool { return t <= Noop }

// digit is the ASCII digit that names t in text form.
func (t PacketType) digit() byte { return '0' + byte(t) }

// typeFromDigit maps an ASCII type digit to its PacketType.
func typeFromDigit(c byte) (PacketType, bool) {
	t := PacketType(c - '0') // wraps for c < '0', which valid rejects
	return t, t.valid()
}

// Packet is one Engine.IO packet. Binary is true only for binary message data.
//
// Packets returned by decoders have Data aliasing the decoded input unless the
// decoder documents otherwise (base64 data has to be decoded into new memory).
type Packet struct {
	Type   PacketType
	Data   []byte
	Binary bool
}

// Sentinel errors. Decoders wrap them with context; test with errors.Is.
var (
	// ErrInvalidPacket reports a malformed single packet (bad type, bad base64).
	ErrInvalidPacket = errors.New("engineio: invalid packet")
	// ErrInvalidPayload reports a malformed polling payload, JSONP body or
	// framing. Payload errors caused by a bad packet wrap both sentinels.
	ErrInvalidPayload = errors.New("engineio: invalid payload")
	// ErrNotOpen reports a handshake answer whose first packet is well formed
	// but is not an open packet.
	ErrNotOpen = errors.New("engineio: first packet is not an open packet")
)

func packetError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidPacket}, args...)...)
}

func payloadError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidPayload}, args...)...)
}

// AppendPacket appends the text form of p ("<digit><data>"), as sent in a
// WebSocket text frame. p.Binary must be false: binary data goes through
// AppendBinaryFrame or a payload encoder; here it is written verbatim.
func AppendPacket(dst []byte, p Packet) []byte {
	dst = append(dst, p.Type.digit())
	return append(dst, p.Data...)
}

// DecodeTextPacket decodes a WebSocket text frame. Data aliases frame.
func DecodeTextPacket(frame []byte) (Packet, error) {
	if len(frame) == 0 {
		return Packet{}, packetError("empty packet")
	}
	t, ok := typeFromDigit(frame[0])
	if !ok {
		return Packet{}, packetError("unknown type %q", frame[0])
	}
	return Packet{Type: t, Data: frame[1:]}, nil
}

// DecodeBinaryFrame decodes a WebSocket binary frame. In v4 the frame is the
// raw data of a message; in v3 it starts with a raw type byte (0x04 for a
// message). Data aliases frame. Any version other than V3 is treated as V4.
func DecodeBinaryFrame(v Version, frame []byte) (Packet, error) {
	if v != V3 {
		return Packet{Type: Message, Data: frame, Binary: true}, nil
	}
	if len(frame) == 0 {
		return Packet{}, packetError("empty v3 binary frame")
	}
	t := PacketType(frame[0])
	if !t.valid() {
		return Packet{}, packetError("unknown binary type byte 0x%02x", frame[0])
	}
	return Packet{Type: t, Data: frame[1:], Binary: true}, nil
}

// AppendBinaryFrame appends the WebSocket binary frame form of p: the raw data
// in v4 (where a binary packet is always a message), or a raw type byte and
// the data in v3. Any version other than V3 is treated as V4.
func AppendBinaryFrame(v Version, dst []byte, p Packet) []byte {
	if v == V3 {
		dst = append(dst, byte(p.Type))
	}
	return append(dst, p.Data...)
}
