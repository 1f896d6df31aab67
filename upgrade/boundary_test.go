package upgrade

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// wsFrame builds a frame whose length uses the encoding given (0: 7-bit, 2: 16-bit, 8: 64-bit, even
// when a shorter one would do: the cursor must follow any valid header).
func wsFrame(opcode byte, n int, masked bool, lenBytes int) []byte {
	f := []byte{0x80 | opcode, 0}
	switch lenBytes {
	case 0:
		f[1] = byte(n)
	case 2:
		f[1] = 126
		f = binary.BigEndian.AppendUint16(f, uint16(n))
	case 8:
		f[1] = 127
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	if masked {
		f[1] |= 0x80
		f = append(f, 0xa1, 0xb2, 0xc3, 0xd4)
	}
	return append(f, bytes.Repeat([]byte{0x7e}, n)...) // 0x7e looks like a length byte: it must be skipped
}

func TestFrameCursor(t *testing.T) {
	for _, tc := range []struct {
		name   string
		frames [][]byte
	}{
		{"7-bit", [][]byte{wsFrame(opText, 5, false, 0)}},
		{"7-bit masked", [][]byte{wsFrame(opText, 5, true, 0)}},
		{"empty", [][]byte{wsFrame(0x9, 0, false, 0)}},
		{"empty masked", [][]byte{wsFrame(0xa, 0, true, 0)}},
		{"125 bytes", [][]byte{wsFrame(0x2, 125, true, 0)}},
		{"16-bit", [][]byte{wsFrame(0x2, 126, false, 2)}},
		{"16-bit masked", [][]byte{wsFrame(0x2, 300, true, 2)}},
		{"64-bit", [][]byte{wsFrame(0x2, 70000, false, 8)}},
		{"64-bit masked", [][]byte{wsFrame(0x2, 70000, true, 8)}},
		{"64-bit short payload", [][]byte{wsFrame(0x2, 3, true, 8)}},
		{"close", [][]byte{closeGoingAway, maskedCloseGoingAway()}},
		{"mixed", [][]byte{
			wsFrame(opText, 1, true, 0), wsFrame(0x2, 200, false, 2), wsFrame(0x9, 0, true, 0),
			wsFrame(0x2, 66000, true, 8), wsFrame(opText, 2, false, 0),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stream []byte
			boundary := map[int]bool{0: true}
			for range 2 { // twice: the cursor must start the second round exactly where the first ended
				for _, f := range tc.frames {
					stream = append(stream, f...)
					boundary[len(stream)] = true
				}
			}
			for i := 0; i <= len(stream); i++ { // every split, headers included
				var c frameCursor
				c.advance(stream[:i])
				if c.atBoundary() != boundary[i] {
					t.Fatalf("after %d of %d bytes: atBoundary %v, want %v", i, len(stream), c.atBoundary(), boundary[i])
				}
				c.advance(stream[i:])
				if !c.atBoundary() {
					t.Fatalf("split at %d: not at a boundary at the end", i)
				}
			}
			var c frameCursor
			for i := range stream { // byte by byte: headers arrive in as many pieces as they have bytes
				c.advance(stream[i : i+1])
				if c.atBoundary() != boundary[i+1] {
					t.Fatalf("byte by byte, after %d bytes: atBoundary %v", i+1, c.atBoundary())
				}
			}
		})
	}
}

// TestFrameCursorCorruptLength: a 64-bit length with its top bit set (invalid) must not wrap the
// count around and report a boundary inside the frame.
func TestFrameCursorCorruptLength(t *testing.T) {
	var c frameCursor
	c.advance([]byte{0x82, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4})
	c.advance(make([]byte, 1<<16))
	if c.atBoundary() {
		t.Fatal("a boundary inside a frame of 2^64-1 bytes")
	}
}

func TestMaskedCloseGoingAway(t *testing.T) {
	a, b := maskedCloseGoingAway(), maskedCloseGoingAway()
	if bytes.Equal(a[2:6], b[2:6]) {
		t.Fatal("two close frames got the same masking key")
	}
	f, err := readFrame(bytes.NewReader(a), new(frameBuf), 100)
	if err != nil || f.opcode != opClose || !f.fin || !bytes.Equal(f.payload, []byte{0x03, 0xe9}) || a[1]&0x80 == 0 {
		t.Fatalf("masked close: % x → %+v %v", a, f, err)
	}
}

func BenchmarkFrameCursor(b *testing.B) {
	msg := wsFrame(opText, 64, true, 0) // a read in the event loop: one small frame
	var c frameCursor
	for b.Loop() {
		c.advance(msg)
	}
}
