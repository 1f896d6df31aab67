package upgrade

import (
	"encoding/binary"
	"errors"
	"io"
	"sync"

	"github.com/sidpin/sidpin/engineio"
)

// WebSocket opcodes the watcher cares about.
const (
	opText  = 0x1
	opClose = 0x8
)

// maxInspect bounds the payload the watcher reads whole, unmasks and looks at; Engine.IO's open
// packet, 2probe and 5 are far smaller. A larger frame is forwarded in pieces, unread.
const maxInspect = 4096

// maxFrameHeader is the longest frame header: 2 bytes, 8 of extended length and a 4-byte mask.
const maxFrameHeader = 14

var errFrameTooLarge = errors.New("upgrade: frame larger than the relay's limit")

// frameBuf is what a watcher reads frames into: its size is fixed, whatever length a frame announces,
// so a peer that announces a huge frame and sends a few bytes costs no more than one that sends none.
type frameBuf struct {
	raw   [maxFrameHeader + maxInspect]byte
	plain [maxInspect]byte // the unmasked payload of a small frame
}

var frameBufs = sync.Pool{New: func() any { return new(frameBuf) }}

// frame is one WebSocket frame as read off the wire, small ones whole.
type frame struct {
	raw     []byte // the bytes to forward first: the header, and for a small frame its payload
	rest    uint64 // payload bytes of a large frame not read yet: forward them after raw
	opcode  byte
	fin     bool
	rsv1    bool   // compressed (permessage-deflate): the payload cannot be read as text
	payload []byte // the unmasked payload of a small frame; nil for a large one
}

// readFrame reads one frame of at most maxFrame payload bytes from r into b: a payload of up to
// maxInspect bytes whole, else only the header (the caller forwards the rest with forwardRest).
func readFrame(r io.Reader, b *frameBuf, maxFrame int) (frame, error) {
	raw := b.raw[:2]
	if _, err := io.ReadFull(r, raw); err != nil {
		return frame{}, err
	}
	f := frame{opcode: raw[0] & 0x0f, fin: raw[0]&0x80 != 0, rsv1: raw[0]&0x40 != 0}
	masked := raw[1]&0x80 != 0
	hdr := headerLen(raw[1])
	if masked {
		hdr += 4
	}
	raw = b.raw[:hdr]
	if _, err := io.ReadFull(r, raw[2:]); err != nil {
		return frame{}, err
	}
	length := payloadLen(raw[:headerLen(raw[1])])
	if length > uint64(maxFrame) {
		return frame{}, errFrameTooLarge
	}
	if length > maxInspect {
		f.raw, f.rest = raw, length
		return f, nil
	}
	f.raw = b.raw[:hdr+int(length)]
	if _, err := io.ReadFull(r, f.raw[hdr:]); err != nil {
		return frame{}, err
	}
	var mask []byte
	if masked {
		mask = raw[hdr-4 : hdr]
	}
	f.payload = unmask(b.plain[:length], f.raw[hdr:], mask)
	return f, nil
}

// forward writes f to w: its read bytes, then the rest of a large frame read from r through b.
func (f frame) forward(r io.Reader, w func([]byte) error, b *frameBuf) error {
	if err := w(f.raw); err != nil {
		return err
	}
	for left := f.rest; left > 0; {
		n, err := r.Read(b.raw[:min(uint64(len(b.raw)), left)])
		if n > 0 {
			if werr := w(b.raw[:n]); werr != nil {
				return werr
			}
			left -= uint64(n)
		}
		if err != nil && left > 0 {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// unmask writes p unmasked with key into dst (p itself when there is no key) and returns it.
func unmask(dst, p, key []byte) []byte {
	if key == nil {
		return p
	}
	for i := range p {
		dst[i] = p[i] ^ key[i&3]
	}
	return dst[:len(p)]
}

// textIs reports whether f is a whole, uncompressed text frame whose payload is exactly want.
func (f frame) textIs(want string) bool {
	return f.opcode == opText && f.fin && !f.rsv1 && f.payload != nil && string(f.payload) == want
}

// payloadLen is the payload length announced by hdr, a frame header up to its masking key.
func payloadLen(hdr []byte) uint64 {
	switch len(hdr) {
	case 4:
		return uint64(binary.BigEndian.Uint16(hdr[2:]))
	case 10:
		return binary.BigEndian.Uint64(hdr[2:])
	}
	return uint64(hdr[1] & 0x7f)
}

// OpenFrame is what FirstFrame found at the start of a WebSocket-first session's stream.
type OpenFrame struct {
	Info   engineio.OpenInfo
	IsOpen bool // the frame is an Engine.IO open packet: Info holds it
}

// FirstFrame looks at b, the start of a node's stream after its 101 to a WebSocket-first upgrade, as
// watchOpen does: a frame whose payload is at most maxInspect bytes is read whole and its open packet
// parsed; a larger one is passed on unread. done is false while b holds too little to tell. A frame
// over maxFrame is an error (the tunnel is refused, as on the goroutine path).
func FirstFrame(b []byte, maxFrame int) (f OpenFrame, done bool, err error) {
	if len(b) < 2 {
		return f, false, nil
	}
	hdr := headerLen(b[1])
	masked := b[1]&0x80 != 0
	if masked {
		hdr += 4
	}
	if len(b) < hdr {
		return f, false, nil
	}
	length := payloadLen(b[:headerLen(b[1])])
	switch {
	case length > uint64(maxFrame):
		return f, true, errFrameTooLarge
	case length > maxInspect:
		return f, true, nil
	case uint64(len(b)-hdr) < length:
		return f, false, nil
	}
	fin, rsv1, opcode := b[0]&0x80 != 0, b[0]&0x40 != 0, b[0]&0x0f
	if opcode != opText || !fin || rsv1 || length < 2 {
		return f, true, nil
	}
	var plain [maxInspect]byte
	var mask []byte
	if masked {
		mask = b[hdr-4 : hdr]
	}
	payload := unmask(plain[:length], b[hdr:hdr+int(length)], mask)
	if payload[0] != '0' {
		return f, true, nil
	}
	if info, perr := engineio.ParseOpen(payload[1:]); perr == nil {
		f.Info, f.IsOpen = info, true
	}
	return f, true, nil
}
