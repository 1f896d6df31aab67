package httpwire

import "math"

// cstate is where in a chunked body a ChunkedReader stands.
type cstate uint8

const (
	cSize         cstate = iota // chunk-size hex digits
	cExt                        // chunk extensions, up to the CR
	cSizeLF                     // the LF of the size line
	cData                       // chunk data
	cDataCR                     // the CRLF after chunk data
	cDataLF                     //
	cTrailerStart               // the first byte of a trailer line, or the CR of the last line
	cTrailerName                //
	cTrailerValue               //
	cTrailerLF                  //
	cEndLF                      // the LF of the last line
	cDone                       // the body is complete
)

// ChunkedReader finds the payload and the end of a chunked body fed to it in pieces of any size,
// without copying it: the caller passes the raw bytes on unchanged and learns which of them are
// payload (for a close-packet scanner, or to count against a body limit) and where the body ends
// (the 0-size chunk and the trailer section). Extensions and trailers are checked and bounded,
// not kept. A ChunkedReader is 72 bytes; the zero value reads with the default limits.
type ChunkedReader struct {
	left       int64 // payload bytes left in the chunk; the size being read on a size line
	total      int64 // payload bytes so far
	line       int   // bytes of the size line so far
	trailer    int   // bytes of the trailer section so far
	maxLine    int
	maxTrailer int
	err        error
	digits     uint8
	state      cstate
}

// Reset readies c for a new body, with lim's chunk limits.
func (c *ChunkedReader) Reset(lim Limits) {
	lim = lim.normalized()
	*c = ChunkedReader{maxLine: lim.MaxChunkLineBytes, maxTrailer: lim.MaxTrailerBytes}
}

// Done reports whether the body is complete.
func (c *ChunkedReader) Done() bool { return c.state == cDone }

// Payload is the number of payload bytes read so far.
func (c *ChunkedReader) Payload() int64 { return c.total }

// Next reads p up to and including the next stretch of payload, which it returns as a sub-slice
// of p; n is the number of bytes of p it read, framing and payload. Call it again with p[n:] for
// the rest. When the body ends within p, done is set and p[n:] is what follows the body. An error
// is sticky. Next reads all of p (n == len(p)) unless it finds payload, the end, or an error.
func (c *ChunkedReader) Next(p []byte) (payload []byte, n int, done bool, err error) {
	if c.err != nil {
		return nil, 0, false, c.err
	}
	for n < len(p) && c.state != cDone {
		if c.state == cData {
			k := int(min(c.left, int64(len(p)-n)))
			c.left -= int64(k)
			c.total += int64(k)
			if c.left == 0 {
				c.state = cDataCR
			}
			return p[n : n+k : n+k], n + k, false, nil
		}
		if c.err = c.step(p[n]); c.err != nil {
			return nil, n, false, c.err
		}
		n++
	}
	return nil, n, c.state == cDone, nil
}

// Feed reads all of p, or up to the end of the body, calling data for each stretch of payload.
// It returns the bytes of p that belong to the body.
func (c *ChunkedReader) Feed(p []byte, data func(payload []byte)) (n int, done bool, err error) {
	for {
		payload, k, d, err := c.Next(p[n:])
		n += k
		if len(payload) > 0 && data != nil {
			data(payload)
		}
		if err != nil || d || n == len(p) {
			return n, d, err
		}
	}
}

// step reads one framing byte.
func (c *ChunkedReader) step(b byte) error {
	switch c.state {
	case cSize, cExt, cSizeLF:
		if c.line++; c.line > c.limit(c.maxLine, DefaultMaxChunkLineBytes) {
			return ErrChunkLineTooLong
		}
		return c.sizeLine(b)
	case cDataCR, cDataLF:
		return c.dataEnd(b)
	}
	if c.trailer++; c.trailer > c.limit(c.maxTrailer, DefaultMaxTrailerBytes) {
		return ErrTrailerTooLarge
	}
	return c.trailerLine(b)
}

func (c *ChunkedReader) limit(set, def int) int {
	if set == 0 {
		return def
	}
	return set
}

// sizeLine reads a chunk-size line: 1-16 hex digits, then optionally ";" and extensions of
// visible bytes, then CRLF. Extensions are not interpreted. Whitespace after the size is refused,
// though RFC 9112 allows it before ';' (BWS): net/http and Node's llhttp both refuse it, and a
// proxy gains nothing accepting what its peers refuse. Bare LF is refused here as everywhere (RFC
// 9112 erratum 7633 refuses it for chunk lines in particular).
func (c *ChunkedReader) sizeLine(b byte) error {
	switch c.state {
	case cSize:
		return c.sizeDigit(b)
	case cExt:
		switch {
		case b == '\r':
			c.state = cSizeLF
		case b == '\n':
			return ErrBareLF
		case !valueChar[b]:
			return ErrBadChunk
		}
		return nil
	}
	if b != '\n' {
		return ErrBareCR
	}
	return c.startChunk()
}

func (c *ChunkedReader) sizeDigit(b byte) error {
	v := hexValue(b)
	if v < 0 {
		return c.afterSize(b)
	}
	// 16 digits at most, leading zeros included, as net/http; and the value must fit an int64.
	if c.digits == 16 || c.left > math.MaxInt64>>4 {
		return ErrChunkSizeOverflow
	}
	c.digits++
	c.left = c.left<<4 | v
	return nil
}

// afterSize reads the byte after the size digits: ';' or the CR.
func (c *ChunkedReader) afterSize(b byte) error {
	switch {
	case c.digits == 0:
		return ErrBadChunk
	case b == ';':
		c.state = cExt
	case b == '\r':
		c.state = cSizeLF
	case b == '\n':
		return ErrBareLF
	default:
		return ErrBadChunk
	}
	return nil
}

// startChunk begins the chunk whose size line just ended: data, or the trailer section after 0.
func (c *ChunkedReader) startChunk() error {
	if c.left == 0 {
		c.state = cTrailerStart
	} else {
		c.state = cData
	}
	return nil
}

// dataEnd reads the CRLF after chunk data; anything else means the chunk ran longer than its size.
func (c *ChunkedReader) dataEnd(b byte) error {
	switch {
	case c.state == cDataCR && b == '\r':
		c.state = cDataLF
	case c.state == cDataLF && b == '\n':
		c.state, c.line, c.digits = cSize, 0, 0
	default:
		return ErrBadChunk
	}
	return nil
}

// trailerLine reads the trailer section: header lines with the header rules (token name, no
// whitespace before the colon, no control byte, no obs-fold), then the final CRLF.
func (c *ChunkedReader) trailerLine(b byte) error {
	switch c.state {
	case cTrailerStart:
		return c.trailerStart(b)
	case cTrailerName:
		switch {
		case b == ':':
			c.state = cTrailerValue
		case !tokenChar[b]:
			return ErrBadTrailer
		}
	case cTrailerValue:
		switch {
		case b == '\r':
			c.state = cTrailerLF
		case b == '\n':
			return ErrBareLF
		case !valueChar[b]:
			return ErrBadTrailer
		}
	case cTrailerLF:
		return c.lineEnd(b, cTrailerStart)
	case cEndLF:
		return c.lineEnd(b, cDone)
	}
	return nil
}

func (c *ChunkedReader) trailerStart(b byte) error {
	switch {
	case b == '\r':
		c.state = cEndLF
	case tokenChar[b]:
		c.state = cTrailerName
	case b == '\n':
		return ErrBareLF
	default:
		return ErrBadTrailer // whitespace first (obs-fold) included
	}
	return nil
}

func (c *ChunkedReader) lineEnd(b byte, next cstate) error {
	if b != '\n' {
		return ErrBareCR
	}
	c.state = next
	return nil
}
