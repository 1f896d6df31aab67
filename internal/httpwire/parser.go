package httpwire

// state is where in a head the parser stands.
type state uint8

const (
	stLead       state = iota // request: before the request line, where empty lines are skipped
	stLeadLF                  // request: the LF of such an empty line
	stMethod                  // request line
	stTarget                  //
	stVersion                 //
	stStatus                  // response: "HTTP/1.d ddd" being matched
	stAfterCode               // response: SP before the reason, or the CR of a line without one
	stReason                  //
	stStartCR                 // the CR ending the start line
	stStartLF                 // its LF
	stFieldStart              // the first byte of a header line, or the CR of the blank line
	stName                    //
	stValue                   //
	stFieldLF                 // the LF of a header line
	stEndLF                   // the LF of the blank line
	stDone                    // the head is complete
)

// parser is the state of a head being parsed, kept between calls so that each byte is looked at
// once however the head arrives: a client sending one byte per segment costs O(n), not O(n²).
type parser struct {
	pos       int // the bytes before pos are checked
	lineStart int // where the line being read starts
	colon     int // the colon of the header line being read
	start     int // where the start line begins (after skipped empty lines)
	methodEnd int // request line: the SP after the method
	targetEnd int // request line: the SP after the target
	reasonEnd int // status line: the CR after the reason
	minor     byte
	state     state
	request   bool
	pending   bool // the last call returned ErrNeedMore: the next resumes at pos
}

// resumes reports whether a parse left pending can go on with a buffer of n bytes; the buffer
// must begin with the bytes it had then (it may be a grown copy).
func (p *parser) resumes(n int) bool { return p.pending && n >= p.pos }

// window is the part of buf the parser may look at now: the head and the line being read end
// within their limits, so nothing beyond them is ever scanned.
func (p *parser) window(buf []byte, lim *Limits) []byte {
	end := min(len(buf), lim.MaxHeaderBytes, p.lineStart+lim.MaxLineBytes)
	return buf[:end]
}

// exhausted is the result of reaching the end of the window without finishing the head: a limit
// reached (at once, since no head can finish within it any more) or a need for more bytes.
func (p *parser) exhausted(lim *Limits) error {
	switch {
	case p.pos >= lim.MaxHeaderBytes:
		return ErrHeadTooLarge
	case p.pos-p.lineStart >= lim.MaxLineBytes:
		return ErrLineTooLong
	}
	return ErrNeedMore
}

// newLine starts a line at pos.
func (p *parser) newLine(next state) {
	p.lineStart = p.pos
	p.state = next
}

// run drives the parse of one head: start steps the start line, the header lines are common.
// It returns the head's length once its blank line is read.
func (h *Header) run(buf []byte, lim *Limits, start func(b []byte) error) (int, error) {
	p := &h.p
	for p.state != stDone {
		b := p.window(buf, lim)
		if p.pos == len(b) {
			return 0, p.exhausted(lim)
		}
		var err error
		if p.state < stFieldStart {
			err = start(b)
		} else {
			err = h.stepField(b, lim)
		}
		if err != nil {
			return 0, err
		}
	}
	return p.pos, nil
}

// stepStartEnd reads the CRLF that ends a start line; bad is what any other byte makes it.
func (p *parser) stepStartEnd(b []byte, bad *Error) error {
	c := b[p.pos]
	switch {
	case p.state == stStartLF && c == '\n':
		p.pos++
		p.newLine(stFieldStart)
	case p.state == stStartLF:
		return ErrBareCR
	case c == '\r':
		p.pos++
		p.state = stStartLF
	case c == '\n':
		return ErrBareLF
	default:
		return bad
	}
	return nil
}

// stepField reads one header line, or the blank line, as far as b goes. It returns at the end of
// a line, since the line limit of the next one gives another window.
func (h *Header) stepField(b []byte, lim *Limits) error {
	p := &h.p
	for p.pos < len(b) {
		var err error
		switch p.state {
		case stFieldStart:
			err = h.fieldStart(b[p.pos], lim)
		case stName:
			err = p.name(b)
		case stValue:
			err = p.value(b)
		case stFieldLF:
			return h.fieldEnd(b)
		case stEndLF:
			return p.headEnd(b[p.pos])
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// fieldEnd reads the LF of a header line, then records and decodes the line.
func (h *Header) fieldEnd(b []byte) error {
	p := &h.p
	if b[p.pos] != '\n' {
		return ErrBareCR
	}
	if err := h.endField(b); err != nil {
		return err
	}
	p.pos++
	p.newLine(stFieldStart)
	return nil
}

// headEnd reads the LF of the blank line that ends the head.
func (p *parser) headEnd(c byte) error {
	if c != '\n' {
		return ErrBareCR
	}
	p.pos++
	p.state = stDone
	return nil
}

// fieldStart reads the first byte of a line after the start line: a header name, or the CR of
// the blank line. A line starting with whitespace is obs-fold (or, on the first line, what RFC
// 9112 §2.2 lets a server reject): refused, never joined.
func (h *Header) fieldStart(c byte, lim *Limits) error {
	p := &h.p
	switch {
	case c == '\r':
		p.state = stEndLF
	case tokenChar[c]:
		if h.nfields >= lim.MaxHeaders {
			return ErrTooManyHeaders
		}
		p.state = stName
	case isOWS(c):
		return ErrObsFold
	case c == '\n':
		return ErrBareLF
	default:
		return ErrBadHeaderName
	}
	p.pos++
	return nil
}

// name reads a header name up to its colon. Whitespace before the colon is its own error: it is
// the classic way to hide a Transfer-Encoding from one parser and not another (RFC 9112 §5.1).
func (p *parser) name(b []byte) error {
	i := p.pos
	for i < len(b) && tokenChar[b[i]] {
		i++
	}
	p.pos = i
	if i == len(b) {
		return nil
	}
	switch b[i] {
	case ':':
		p.colon = i
		p.pos++
		p.state = stValue
		return nil
	case ' ', '\t':
		return ErrSpaceBeforeColon
	}
	return ErrBadHeaderName
}

// value reads a header value up to its CR.
func (p *parser) value(b []byte) error {
	i := p.pos
	for i < len(b) && valueChar[b[i]] {
		i++
	}
	p.pos = i
	if i == len(b) {
		return nil
	}
	switch b[i] {
	case '\r':
		p.pos++
		p.state = stFieldLF
		return nil
	case '\n':
		return ErrBareLF
	}
	return ErrBadHeaderValue
}

// endField records the header line that ends at the CR before pos and decodes it.
func (h *Header) endField(b []byte) error {
	p := &h.p
	s := span{name: int32(p.lineStart), nameEnd: int32(p.colon), value: int32(p.colon + 1), valueEnd: int32(p.pos - 1)}
	for s.value < s.valueEnd && isOWS(b[s.value]) {
		s.value++
	}
	for s.valueEnd > s.value && isOWS(b[s.valueEnd-1]) {
		s.valueEnd--
	}
	h.fields[h.nfields] = s
	h.nfields++
	return h.decode(b[s.name:s.nameEnd], b[s.value:s.valueEnd], s)
}
