package engineio

import (
	"bytes"
	"math"
)

// CloseScanner reports whether a polling payload, fed to it in pieces of any
// size, holds a close packet. A proxy relays a node's polling answers as they
// come, whatever their size, and still has to notice the one that ends the
// session; the scanner keeps a few dozen bytes of state and never stores a
// record, only whether the record being read can still be a close packet.
//
// Its answer is the one a full decode of the whole body gives:
//   - v4: some record is exactly "1";
//   - v3: a text packet of type close (with any data) is among the packets a
//     decoder delivers before the payload turns out malformed; the body is an
//     XHR2 binary payload when its first byte is 0x00 or 0x01, else a string
//     payload;
//   - JSONP: the payload is the d field of a form-encoded POST body if the body
//     is one (and it comes from a client), else the string inside
//     ___eio[N]("…") if the body is that (and it comes from a node), else the
//     body as it is.
//
// The zero value is not ready for use; call NewCloseScanner.
type CloseScanner struct {
	raw   payloadScan // the body as it is: the only reading without JSONP, the last resort with it
	post  payloadScan // JSONP: the payload in the d field of a form-encoded POST body
	get   payloadScan // JSONP: the payload in the string of an answer ___eio[N]("…");
	form  formScan
	wrap  jsonpScan
	jsonp bool
	from  Sender
}

// Sender says who wrote a polling payload, which decides how a JSONP body is read.
type Sender uint8

// The senders. A node's JSONP answer is never read as a form: a chat message holding "&d=1:1" would
// then read as a close packet and end the session of whoever received it.
const (
	FromEither Sender = iota // read a JSONP body as a POST form first, then as an answer
	FromClient               // a POST body: a JSONP one is a form
	FromNode                 // an answer to a GET: a JSONP one is ___eio[N]("…")
)

// NewCloseScanner returns a scanner for a payload of protocol revision eio (3,
// or anything else for 4), JSONP-encoded when jsonp is set, written by from.
func NewCloseScanner(eio int, jsonp bool, from Sender) CloseScanner {
	p := newPayloadScan(eio)
	return CloseScanner{raw: p, post: p, get: p, jsonp: jsonp, from: from}
}

// Write reads the next piece of the payload. It never fails, so the scanner
// can sit behind an io.TeeReader or an io.MultiWriter.
func (s *CloseScanner) Write(p []byte) (int, error) {
	switch {
	case !s.jsonp:
		s.raw.write(p)
	case s.form.phase != fDone || s.from == FromNode: // once a POST's d field has ended, nothing after it matters
		s.raw.write(p)
		s.writeJSONP(p)
	}
	return len(p), nil
}

// writeJSONP decodes p both as part of a form-encoded POST body and as part of
// a JSONP answer, feeding each decoded payload to its own scanner. Bytes that
// leave a decoder's state alone (plain string content, a field being skipped)
// go through in stretches; the others one at a time.
func (s *CloseScanner) writeJSONP(p []byte) {
	post, get := sink{to: &s.post}, sink{to: &s.get}
	var form, wrap stretch
	for len(p) > 0 {
		if form.n == 0 {
			form = s.form.stretch(p)
		}
		if wrap.n == 0 {
			wrap = s.wrap.stretch(p)
		}
		n := max(1, min(form.n, wrap.n))
		if form.n == 0 {
			s.form.feed(p[0], &post)
		} else {
			form.take(p[:n], &post)
		}
		if wrap.n == 0 {
			s.wrap.feed(p[0], &get)
		} else {
			wrap.take(p[:n], &get)
		}
		p = p[n:]
	}
	post.flush()
	get.flush()
}

// Closed reports whether the payload written so far holds a close packet,
// reading the last Write as the end of the body (which ends its last record).
// It does not change the scanner, so Writes may still follow.
func (s *CloseScanner) Closed() bool {
	t := *s // ending the body changes the state: end a copy
	return t.finish()
}

func (s *CloseScanner) finish() bool {
	if s.jsonp {
		post := sink{to: &s.post}
		if s.from != FromNode && s.form.finish(&post) {
			post.flush()
			return s.post.finish()
		}
		if s.from != FromClient && s.wrap.valid() {
			return s.get.finish()
		}
	}
	return s.raw.finish()
}

// payloadScan follows one reading of a body as an Engine.IO payload.
type payloadScan struct {
	n      int64 // v3: the record length being read, then the units (string) or bytes (binary) still to come
	mode   uint8
	phase  uint8
	found  bool  // a close packet has been delivered
	close  bool  // the current record is a text packet of type close
	binary bool  // v3 binary: the current record has the binary marker
	aux    uint8 // v3 binary: length digits read; v3 string base64: the b64Step state
	lead   byte  // v3 string text: the first byte of a UTF-8 sequence not yet complete
	held   uint8 // how many bytes of that sequence have come (0: none is open)
}

const (
	modeV4       uint8 = iota
	modeV3             // v3 before the first byte, which tells string from binary payloads
	modeV3String       // "<len>:<packet>…", len in UTF-16 units
	modeV3Binary       // XHR2: marker, length digits as bytes, 0xFF, packet
)

// Phases: v4 and v3 have their own, since a scanner's mode never goes back.
const (
	v4Start uint8 = iota // at the start of a record
	v4One                // the record so far is "1"
	v4Other              // the record is something else
)

const (
	sLenStart uint8 = iota // v3 string: at the start of a record's length
	sLen                   // in the length
	sType                  // at the packet's first byte
	sText                  // in a text packet's data
	sB64Type               // after 'b', at the type digit of a base64 packet
	sB64                   // in base64 data
	bMarker                // v3 binary: at a record's marker
	bLen                   // in the length digits
	bType                  // at the packet's type byte
	bData                  // in the packet's data
)

// phaseDead marks a malformed payload: a decoder stops there, so nothing after counts.
const phaseDead uint8 = 255

// maxStringLen keeps a v3 length from overflowing. A longer record would need
// more bytes than any body can have, and the decoder refuses it as too long.
const maxStringLen = (math.MaxInt64 - 9) / 10

func newPayloadScan(eio int) payloadScan {
	if eio == int(V3) {
		return payloadScan{mode: modeV3}
	}
	return payloadScan{mode: modeV4, phase: v4Start}
}

func (p *payloadScan) write(b []byte) {
	for len(b) > 0 && p.phase != phaseDead {
		switch p.mode {
		case modeV4:
			b = p.v4(b)
		case modeV3:
			p.mode, p.phase = modeV3String, sLenStart
			if b[0] <= 1 {
				p.mode, p.phase = modeV3Binary, bMarker
			}
		case modeV3String:
			b = p.v3String(b)
		default:
			b = p.v3Binary(b)
		}
	}
}

// finish ends the body and returns the answer.
func (p *payloadScan) finish() bool {
	switch {
	case p.phase == phaseDead:
	case p.mode == modeV4:
		return p.found || p.phase == v4One
	case p.mode == modeV3String && p.phase == sText && p.held > 0:
		p.breakRune() // DecodeRune turns a sequence cut short into one unit per byte
	}
	return p.found
}

// v4 reads records up to the separators; it skips through a record once it cannot be "1".
func (p *payloadScan) v4(b []byte) []byte {
	if p.phase == v4Other {
		i := bytes.IndexByte(b, recordSeparator)
		if i < 0 {
			return nil
		}
		p.phase = v4Start
		return b[i+1:]
	}
	switch c := b[0]; {
	case c == recordSeparator:
		p.found = p.found || p.phase == v4One
		p.phase = v4Start
	case c == '1' && p.phase == v4Start:
		p.phase = v4One
	default:
		p.phase = v4Other
	}
	return b[1:]
}

func (p *payloadScan) v3String(b []byte) []byte {
	switch p.phase {
	case sText:
		return p.text(b)
	case sB64:
		return p.base64(b)
	case sLenStart, sLen:
		p.lengthByte(b[0])
	case sType:
		p.typeByte(b[0])
	case sB64Type:
		p.b64TypeByte(b[0])
	}
	return b[1:]
}

func (p *payloadScan) lengthByte(c byte) {
	switch {
	case isDigit(c) && p.n <= maxStringLen:
		p.n = p.n*10 + int64(c-'0')
		p.phase = sLen
	case c == ':' && p.phase == sLen && p.n == 0:
		p.phase = sLenStart // "0:" holds no packet
	case c == ':' && p.phase == sLen:
		p.phase = sType
	default:
		p.phase = phaseDead
	}
}

// typeByte reads a record's first byte. A byte that cannot start a packet
// dooms the record whether or not its length turns out to fit, so the scan
// can give up at once.
func (p *payloadScan) typeByte(c byte) {
	p.n--
	_, text := typeFromDigit(c)
	switch {
	case text:
		p.close, p.phase = c == '1', sText
		if p.n == 0 {
			p.stringRecordDone()
		}
	case c == 'b' && p.n > 0: // "b" alone lacks the type digit
		p.phase = sB64Type
	default:
		p.phase = phaseDead
	}
}

func (p *payloadScan) b64TypeByte(c byte) {
	p.n--
	switch _, ok := typeFromDigit(c); {
	case !ok:
		p.phase = phaseDead
	case p.n == 0:
		p.stringRecordDone() // no data: an empty binary packet
	default:
		p.phase, p.aux = sB64, 0
	}
}

// base64 checks a base64 packet's data; every valid byte is ASCII, one unit.
func (p *payloadScan) base64(b []byte) []byte {
	k := min(int64(len(b)), p.n)
	for _, c := range b[:k] {
		if p.aux = b64Step(p.aux, c); p.aux == b64Bad {
			p.phase = phaseDead
			return nil
		}
	}
	if p.n -= k; p.n == 0 {
		p.stringRecordDone()
	}
	return b[k:]
}

// text counts off a text packet's data in UTF-16 units, ASCII in runs.
func (p *payloadScan) text(b []byte) []byte {
	if p.held > 0 {
		return p.runeByte(b)
	}
	k := asciiPrefixLen(b[:min(int64(len(b)), p.n)])
	p.n -= int64(k)
	b = b[k:]
	switch {
	case p.n == 0:
		p.stringRecordDone()
		return b
	case len(b) == 0:
		return b
	}
	if size, _, _ := utf8Lead(b[0]); size > 1 {
		p.lead, p.held = b[0], 1
	} else if p.n--; p.n == 0 { // a byte that starts no sequence is one unit
		p.stringRecordDone()
	}
	return b[1:]
}

// runeByte reads the next byte of an open UTF-8 sequence. JavaScript counts a
// complete sequence as one unit, or two above U+FFFF.
func (p *payloadScan) runeByte(b []byte) []byte {
	size, lo, hi := utf8Lead(p.lead)
	if p.held > 1 {
		lo, hi = 0x80, 0xbf
	}
	if c := b[0]; c < lo || c > hi {
		p.breakRune()
		return b // c is read again, in the phase breakRune leaves
	}
	if p.held++; int(p.held) < size {
		return b[1:]
	}
	p.lead, p.held = 0, 0
	p.n--
	if size == 4 {
		p.n--
	}
	switch {
	case p.n < 0: // the length ends inside a surrogate pair
		p.phase = phaseDead
	case p.n == 0:
		p.stringRecordDone()
	}
	return b[1:]
}

// breakRune closes an open UTF-8 sequence that turned out broken or was cut
// short: DecodeRune then yields one unit per byte held.
func (p *payloadScan) breakRune() {
	h := int64(p.held)
	p.lead, p.held = 0, 0
	if h < p.n {
		p.n -= h
		return
	}
	ragged := h > p.n
	p.n = 0
	p.stringRecordDone()
	if ragged {
		// The record ends inside the held bytes, so the next length starts
		// with a continuation byte, which is no digit.
		p.phase = phaseDead
	}
}

// stringRecordDone delivers a v3 string record whose units have all come.
func (p *payloadScan) stringRecordDone() {
	if p.phase == sB64 && !b64Complete(p.aux) {
		p.phase = phaseDead
		return
	}
	p.found = p.found || p.close
	p.phase, p.close = sLenStart, false
}

func (p *payloadScan) v3Binary(b []byte) []byte {
	switch p.phase {
	case bData:
		k := min(int64(len(b)), p.n)
		if p.n -= k; p.n == 0 {
			p.binaryRecordDone()
		}
		return b[k:]
	case bMarker:
		p.markerByte(b[0])
	case bLen:
		p.binaryLengthByte(b[0])
	case bType:
		p.binaryTypeByte(b[0])
	}
	return b[1:]
}

func (p *payloadScan) markerByte(c byte) {
	if c > 1 {
		p.phase = phaseDead
		return
	}
	p.binary, p.phase, p.aux, p.n = c == 1, bLen, 0, 0
}

func (p *payloadScan) binaryLengthByte(c byte) {
	switch {
	case c == 0xff && p.aux > 0 && p.n > 0: // an empty record is not a packet
		p.phase = bType
	case c <= 9 && p.aux < maxBinaryLenDigits:
		p.aux++
		p.n = p.n*10 + int64(c)
	default:
		p.phase = phaseDead
	}
}

// binaryTypeByte reads a record's first byte: an ASCII type digit after the
// string marker, a raw type byte after the binary one.
func (p *payloadScan) binaryTypeByte(c byte) {
	_, ok := typeFromDigit(c)
	if p.binary {
		ok = PacketType(c).valid()
	}
	if !ok {
		p.phase = phaseDead
		return
	}
	p.close = !p.binary && c == '1'
	p.phase = bData
	if p.n--; p.n == 0 {
		p.binaryRecordDone()
	}
}

func (p *payloadScan) binaryRecordDone() {
	p.found = p.found || p.close
	p.phase, p.close = bMarker, false
}

// b64Step states: 0-3 characters of the current quantum read, then padding.
const (
	b64Pad1 = 4 + iota // "xx=": one more '=' must end the data
	b64Done            // padded: nothing may follow
	b64Bad
)

var b64Alphabet = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") {
		t[c] = true
	}
	return t
}()

// b64Step follows what the standard padded decoder accepts (appendBase64Decode
// has already refused the CR and LF it would skip).
func b64Step(q uint8, c byte) uint8 {
	switch {
	case q < 4 && b64Alphabet[c]:
		return (q + 1) & 3
	case c != '=':
		return b64Bad
	case q == 2:
		return b64Pad1
	case q == 3 || q == b64Pad1:
		return b64Done
	}
	return b64Bad
}

// b64Complete reports whether the data may end in state q: whole quanta, or padded.
func b64Complete(q uint8) bool { return q == 0 || q == b64Done }

// utf8Lead returns the length of the UTF-8 sequence c starts and the range
// its second byte must fall in, as utf8.DecodeRune decides them; size is 1
// for ASCII and for bytes that start no sequence.
func utf8Lead(c byte) (size int, lo, hi byte) {
	switch {
	case c < 0xc2: // ASCII, continuation bytes, and C0/C1, which could only start overlong forms
		return 1, 0, 0
	case c < 0xe0:
		return 2, 0x80, 0xbf
	case c == 0xe0: // no overlong forms
		return 3, 0xa0, 0xbf
	case c == 0xed: // no surrogates
		return 3, 0x80, 0x9f
	case c < 0xf0:
		return 3, 0x80, 0xbf
	case c == 0xf0: // no overlong forms
		return 4, 0x90, 0xbf
	case c < 0xf4:
		return 4, 0x80, 0xbf
	case c == 0xf4: // nothing above U+10FFFF
		return 4, 0x80, 0x8f
	}
	return 1, 0, 0
}
