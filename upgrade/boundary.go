package upgrade

import (
	"crypto/rand"
	"encoding/binary"
)

// frameCursor follows the WebSocket frame boundaries of one direction of a relayed byte stream, so
// that a close frame can be put between two frames when the relay ends a tunnel. It reads frame
// headers only (2 to 14 bytes, possibly split across reads) and counts payloads down without
// touching them: following a stream costs a few instructions per frame, whatever its size.
type frameCursor struct {
	skip uint64   // bytes of the current frame still to pass: its masking key and payload
	got  uint8    // bytes of a header split across reads, kept in hdr
	hdr  [10]byte // 2 bytes and up to 8 of extended length; the masking key is skipped, not kept
	// closed: a close frame's header went by. Its sender ended the WebSocket, whoever closes the TCP
	// connection first afterwards (a server answers a client's close packet by closing at once).
	closed bool
}

// atBoundary reports whether the bytes seen so far end with a whole frame.
func (c *frameCursor) atBoundary() bool { return c.skip == 0 && c.got == 0 }

// advance moves the cursor over b, the next bytes of the stream. It jumps from header to header:
// a read of a few small frames costs a few dozen instructions.
func (c *frameCursor) advance(b []byte) {
	if c.got != 0 {
		b = c.collect(b)
	}
	end := uint64(len(b))
	next := c.skip // where the next header starts in b
	for next < end {
		if end-next >= 2 {
			c.closed = c.closed || b[next]&0x0f == opClose
			b1 := b[next+1]
			if n := uint64(b1 & 0x7f); n < 126 { // a 7-bit length: Engine.IO's usual packet
				next += 2 + n + uint64(b1>>7)*4
				continue
			}
			if n := uint64(headerLen(b1)); end-next >= n {
				next += n + frameRest(b[next:next+n]) // no overflow: frameRest is at most 1<<63 + 4
				continue
			}
		}
		c.skip = 0
		c.collect(b[next:]) // a header that the end of b splits
		return
	}
	c.skip = next - end
}

// collect adds the bytes of b to a header split across reads, until it is whole (then the frame's
// rest is known), and returns what follows it.
func (c *frameCursor) collect(b []byte) []byte {
	for len(b) > 0 {
		need := 2
		if c.got >= 2 {
			need = headerLen(c.hdr[1])
		}
		n := copy(c.hdr[c.got:need], b)
		c.got += uint8(n)
		b = b[n:]
		if int(c.got) == need && headerLen(c.hdr[1]) == need {
			c.closed = c.closed || c.hdr[0]&0x0f == opClose
			c.skip = frameRest(c.hdr[:need])
			c.got = 0
			return b
		}
	}
	return b
}

// headerLen is the length of a frame header up to its masking key, from its second byte.
func headerLen(b1 byte) int {
	switch b1 & 0x7f {
	case 126:
		return 4
	case 127:
		return 10
	}
	return 2
}

// frameRest is what follows header h (as long as headerLen says): the masking key and the payload.
func frameRest(h []byte) uint64 {
	var n uint64
	switch len(h) {
	case 4:
		n = uint64(binary.BigEndian.Uint16(h[2:]))
	case 10:
		n = binary.BigEndian.Uint64(h[2:])
	default:
		n = uint64(h[1] & 0x7f)
	}
	n = min(n, 1<<63) // a valid length is below; a corrupt one must not make the cursor wrap around
	if h[1]&0x80 != 0 {
		n += 4
	}
	return n
}

// closeGoingAway is the close frame a server sends when it goes away: status 1001, unmasked.
var closeGoingAway = []byte{0x88, 0x02, 0x03, 0xe9}

// maskedCloseGoingAway returns close 1001 as a client must send it: masked with a fresh random key
// (RFC 6455 §5.3), since the relay speaks to the node in the client's place.
func maskedCloseGoingAway() []byte {
	f := []byte{0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe9}
	_, _ = rand.Read(f[2:6]) // never fails (crypto/rand)
	f[6] ^= f[2]
	f[7] ^= f[3]
	return f
}
