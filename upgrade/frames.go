package upgrade

import (
	"encoding/binary"
	"errors"
	"io"
)

// WebSocket opcodes the watcher cares about.
const (
	opText  = 0x1
	opClose = 0x8
)

// maxInspect bounds the payload the watcher unmasks and looks at; Engine.IO's open packet, 2probe and
// 5 are far smaller. Larger frames are forwarded unread.
const maxInspect = 4096

var errFrameTooLarge = errors.New("upgrade: frame larger than the relay's limit")

// frame is one WebSocket frame as read off the wire: raw holds its exact bytes for forwarding,
// payload the unmasked payload when it was small enough to inspect.
type frame struct {
	raw     []byte
	opcode  byte
	fin     bool
	rsv1    bool // compressed (permessage-deflate): the payload cannot be read as text
	payload []byte
}

// readFrame reads one whole frame of at most maxFrame payload bytes from r. buf is reused for raw.
func readFrame(r io.Reader, buf []byte, maxFrame int) (frame, error) {
	raw := append(buf[:0], 0, 0)
	if _, err := io.ReadFull(r, raw[:2]); err != nil {
		return frame{}, err
	}
	f := frame{opcode: raw[0] & 0x0f, fin: raw[0]&0x80 != 0, rsv1: raw[0]&0x40 != 0}
	masked := raw[1]&0x80 != 0
	length := uint64(raw[1] & 0x7f)
	ext := 0
	switch length {
	case 126:
		ext = 2
	case 127:
		ext = 8
	}
	if masked {
		ext += 4
	}
	raw = append(raw, make([]byte, ext)...)
	if _, err := io.ReadFull(r, raw[2:]); err != nil {
		return frame{}, err
	}
	hdr := raw[2:]
	switch length {
	case 126:
		length, hdr = uint64(binary.BigEndian.Uint16(hdr)), hdr[2:]
	case 127:
		length, hdr = binary.BigEndian.Uint64(hdr), hdr[8:]
	}
	if length > uint64(maxFrame) {
		return frame{}, errFrameTooLarge
	}
	var mask []byte
	if masked {
		mask = hdr[:4]
	}
	start := len(raw)
	raw = append(raw, make([]byte, length)...)
	if _, err := io.ReadFull(r, raw[start:]); err != nil {
		return frame{}, err
	}
	f.raw = raw
	if length <= maxInspect {
		f.payload = unmask(raw[start:], mask)
	}
	return f, nil
}

// unmask returns a copy of p unmasked with key (or p itself when there is no key).
func unmask(p, key []byte) []byte {
	if key == nil {
		return p
	}
	out := make([]byte, len(p))
	for i := range p {
		out[i] = p[i] ^ key[i&3]
	}
	return out
}

// textIs reports whether f is a whole, uncompressed text frame whose payload is exactly want.
func (f frame) textIs(want string) bool {
	return f.opcode == opText && f.fin && !f.rsv1 && f.payload != nil && string(f.payload) == want
}
