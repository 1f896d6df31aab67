package httpwire

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"unsafe"
)

// chunkResult is everything a ChunkedReader reports on a whole input.
type chunkResult struct {
	payload string
	n       int
	done    bool
	err     error
}

func (r chunkResult) String() string {
	return fmt.Sprintf("payload=%q n=%d done=%v err=%v", r.payload, r.n, r.done, r.err)
}

// readChunked feeds in to a new ChunkedReader in pieces of the sizes next gives, checking that
// every payload stretch lies within the piece it came from, where it was read.
func readChunked(t *testing.T, in []byte, lim Limits, next func() int) chunkResult {
	t.Helper()
	var c ChunkedReader
	c.Reset(lim)
	var res chunkResult
	var payload bytes.Buffer
	for res.n < len(in) && !res.done && res.err == nil {
		piece := in[res.n:min(len(in), res.n+next())]
		k, done, err := c.Feed(piece, func(p []byte) {
			if !within(p, piece) {
				t.Fatalf("payload %q is not within its piece", p)
			}
			payload.Write(p)
		})
		res.n, res.done, res.err = res.n+k, done, err
		if err == nil && !done && k != len(piece) {
			t.Fatalf("read %d of a %d-byte piece without finishing", k, len(piece))
		}
	}
	res.payload = payload.String()
	if res.err != nil {
		res.n = -1 // where an error is found depends on no piece boundary, but n counts pieces read
	}
	if c.Payload() != int64(payload.Len()) {
		t.Fatalf("Payload() %d, got %d bytes", c.Payload(), payload.Len())
	}
	return res
}

// within reports whether sub is a sub-slice of b (the same memory, not a copy).
func within(sub, b []byte) bool {
	start, end := uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(unsafe.Pointer(unsafe.SliceData(sub)))
	return end >= start && end+uintptr(len(sub)) <= start+uintptr(len(b))
}

func readChunkedWhole(t *testing.T, in []byte, lim Limits) chunkResult {
	return readChunked(t, in, lim, func() int { return len(in) + 1 })
}

func TestChunked(t *testing.T) {
	cases := []struct {
		name, in, payload string
		rest              string // what follows the body
		want              error
	}{
		{"one chunk", "5\r\nhello\r\n0\r\n\r\n", "hello", "", nil},
		{"chunks, hex cases, leading zeros", "3\r\nabc\r\nA\r\n0123456789\r\n0005\r\nhello\r\n000\r\n\r\n", "abc0123456789hello", "", nil},
		{"what follows is left alone", "1\r\nx\r\n0\r\n\r\nGET / HTTP/1.1\r\n", "x", "GET / HTTP/1.1\r\n", nil},
		{"extensions", "5;a=b;c=\"d e\"\r\nhello\r\n0;last\r\n\r\n", "hello", "", nil},
		{"trailers", "1\r\nx\r\n0\r\nX-Sum: 1\r\nY:\r\n\r\n", "x", "", nil},
		{"empty body", "0\r\n\r\n", "", "", nil},
		{"largest size", "7fffffffffffffff\r\nabc", "abc", "", ErrNeedMore},

		{"whitespace after size", "5 \r\nhello\r\n0\r\n\r\n", "", "", ErrBadChunk},
		{"whitespace before ';' (BWS)", "5 ;a\r\nhello\r\n0\r\n\r\n", "", "", ErrBadChunk},
		{"no size", "\r\nhello\r\n0\r\n\r\n", "", "", ErrBadChunk},
		{"not hex", "g\r\n", "", "", ErrBadChunk},
		{"signed size", "+5\r\nhello\r\n", "", "", ErrBadChunk},
		{"0x prefix", "0x5\r\nhello\r\n", "", "", ErrBadChunk},
		{"size overflows int64", "8000000000000000\r\n", "", "", ErrChunkSizeOverflow},
		{"17 digits", "00000000000000001\r\n", "", "", ErrChunkSizeOverflow},
		{"bare LF after size", "5\nhello\r\n0\r\n\r\n", "", "", ErrBareLF},
		{"bare LF after extension", "5;a\nhello\r\n0\r\n\r\n", "", "", ErrBareLF},
		{"CR without LF after size", "5\rhello\r\n", "", "", ErrBareCR},
		{"control byte in extension", "5;a\x00\r\nhello\r\n0\r\n\r\n", "", "", ErrBadChunk},
		{"data longer than its size", "5\r\nhello!\r\n0\r\n\r\n", "hello", "", ErrBadChunk},
		{"bare LF after data", "5\r\nhello\n0\r\n\r\n", "hello", "", ErrBadChunk},
		{"trailer obs-fold", "0\r\nX: 1\r\n 2\r\n\r\n", "", "", ErrBadTrailer},
		{"trailer space before colon", "0\r\nX : 1\r\n\r\n", "", "", ErrBadTrailer},
		{"trailer control byte", "0\r\nX: \x01\r\n\r\n", "", "", ErrBadTrailer},
		{"trailer without colon", "0\r\nX\r\n\r\n", "", "", ErrBadTrailer},
		{"trailer bare LF", "0\r\nX: 1\n\r\n", "", "", ErrBareLF},
		{"bare LF last line", "0\r\n\n", "", "", ErrBareLF},
		{"CR without LF last line", "0\r\n\rx", "", "", ErrBareCR},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := []byte(c.in)
			whole := readChunkedWhole(t, in, Limits{})
			want := chunkResult{payload: c.payload, n: len(c.in) - len(c.rest), done: true}
			switch c.want {
			case ErrNeedMore:
				want.n, want.done = len(c.in), false
			case nil:
			default:
				want.n, want.done, want.err = -1, false, c.want
			}
			if whole != want {
				t.Fatalf("%q\n got  %v\n want %v", c.in, whole, want)
			}
			for seed := range uint64(20) {
				next := randomSplits(seed, 3)
				if seed == 0 {
					next = byteAtATime
				}
				if got := readChunked(t, in, Limits{}, next); got != whole {
					t.Fatalf("%q split (seed %d)\n got   %v\n whole %v", c.in, seed, got, whole)
				}
			}
		})
	}
}

func TestChunkedLimits(t *testing.T) {
	lim := Limits{MaxChunkLineBytes: 8, MaxTrailerBytes: 12}
	for _, c := range []struct {
		in   string
		want error
	}{
		{"5;abcd\r\nhello\r\n0\r\n\r\n", nil},                  // a size line of 8 bytes
		{"5;abcde\r\nhello\r\n0\r\n\r\n", ErrChunkLineTooLong}, // 9
		{"0\r\nX: 12345\r\n\r\n", nil},                         // trailers of 12 bytes
		{"0\r\nX: 123456\r\n\r\n", ErrTrailerTooLarge},         // 13
		{"0000000000\r\n\r\n", ErrChunkLineTooLong},
	} {
		if got := readChunkedWhole(t, []byte(c.in), lim); got.err != c.want {
			t.Errorf("%q: %v, want %v", c.in, got.err, c.want)
		}
	}
}

// TestChunkedNext: Next stops right after each payload stretch, so the caller can hand it to a
// scanner before reading on, and the bytes it reads are exactly the body.
func TestChunkedNext(t *testing.T) {
	in := []byte("3\r\nabc\r\n2;x\r\nde\r\n0\r\nT: 1\r\n\r\nNEXT")
	var c ChunkedReader
	var stretches []string
	var body []byte
	for p := in; ; {
		payload, n, done, err := c.Next(p)
		if err != nil {
			t.Fatal(err)
		}
		body = append(body, p[:n]...)
		if payload != nil {
			stretches = append(stretches, string(payload))
		}
		p = p[n:]
		if done {
			if string(p) != "NEXT" || !c.Done() {
				t.Fatalf("after the body: %q", p)
			}
			break
		}
	}
	if strings.Join(stretches, "|") != "abc|de" || string(body) != string(in[:len(in)-4]) {
		t.Fatalf("stretches %q, body %q", stretches, body)
	}
	if _, n, done, err := c.Next([]byte("more")); n != 0 || !done || err != nil {
		t.Fatalf("after done: %d %v %v", n, done, err)
	}
}

func TestChunkedErrorIsSticky(t *testing.T) {
	var c ChunkedReader
	if _, _, err := c.Feed([]byte("zz"), nil); err != ErrBadChunk {
		t.Fatal(err)
	}
	if _, n, _, err := c.Next([]byte("0\r\n\r\n")); err != ErrBadChunk || n != 0 {
		t.Fatal(n, err)
	}
	c.Reset(Limits{})
	if n, done, err := c.Feed([]byte("0\r\n\r\n"), nil); err != nil || !done || n != 5 {
		t.Fatal(n, done, err)
	}
}
