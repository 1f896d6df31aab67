package httpwire

// Response is a parsed response head. Its slices alias the buffer given to ParseResponse and are
// capped at their own length.
type Response struct {
	Status  int    // 100-599
	Reason  []byte // may be empty
	Version []byte // "HTTP/1.d"
	Minor   int    // 0-9; any minor but 0 reads as 1.1 (RFC 9110 §2.5)
	Header
}

// ParseResponse parses the response head at the start of buf, within lim, incrementally like
// ParseRequest. ErrNotHTTP, as soon as the first bytes cannot begin "HTTP/1.d ddd", says the node
// does not speak HTTP; the limits (IsLimit) may be a client's doing; every other error is a
// malformed head from a node that does.
//
// A 1xx head other than 101 (Interim) is followed by another head: skip n bytes and parse again.
func ParseResponse(buf []byte, lim Limits, resp *Response) (n int, err error) {
	lim = lim.normalized()
	if !resp.p.resumes(len(buf)) {
		resp.Reset()
	}
	n, err = resp.run(buf, &lim, resp.stepStart)
	if err == nil {
		resp.finish(buf[:n:n])
	}
	resp.p.pending = err == ErrNeedMore
	if err != nil {
		return 0, err
	}
	return n, nil
}

// Reset readies resp for a new head, abandoning a pending parse.
func (r *Response) Reset() {
	r.Status, r.Reason, r.Version, r.Minor = 0, nil, nil, 0
	r.resetHeader()
	r.p.state = stStatus
}

// Interim reports a 1xx head that another head follows (100 Continue, 103 Early Hints); 101
// Switching Protocols is the last head of its connection and is not one.
func (r *Response) Interim() bool { return r.Status < 200 && r.Status != 101 }

// KeepAlive reports whether the node's connection may carry another request after this answer,
// by version and Connection only; FramingClose also ends it.
func (r *Response) KeepAlive() bool {
	if r.ConnClose {
		return false
	}
	return r.Minor != 0 || r.ConnKeepAlive
}

// Framing says how the body after this head is delimited; head is set when the request was a
// HEAD, whose answer never has a body (RFC 9112 §6.3).
func (r *Response) Framing(head bool) Framing {
	switch {
	case head || r.Status < 200 || r.Status == 204 || r.Status == 304:
		return FramingNone
	case r.Chunked:
		return FramingChunked
	case r.ContentLength == 0:
		return FramingNone
	case r.ContentLength > 0:
		return FramingLength
	}
	return FramingClose
}

// statusPrefix is what a status line's first 12 bytes must match; 'd' is a digit.
const statusPrefix = "HTTP/1.d ddd"

// stepStart reads the status line as far as b goes. Every byte of "HTTP/1.d ddd" is checked as it
// arrives, so a node answering with something else is told at its first wrong byte.
func (r *Response) stepStart(b []byte) error {
	p := &r.p
	for p.pos < len(b) && p.state < stFieldStart {
		var err error
		switch p.state {
		case stStatus:
			err = p.statusCode(b)
		case stAfterCode:
			err = p.afterCode(b[p.pos])
		case stReason:
			err = p.reason(b)
		default:
			err = p.stepStartEnd(b, ErrNotHTTP)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (p *parser) statusCode(b []byte) error {
	for ; p.pos < len(b) && p.pos < len(statusPrefix); p.pos++ {
		want, c := statusPrefix[p.pos], b[p.pos]
		switch {
		case want != 'd' && c != want, want == 'd' && (c < '0' || c > '9'):
			return ErrNotHTTP
		case p.pos == 9 && (c < '1' || c > '5'):
			return ErrNotHTTP // status codes are 100-599
		}
	}
	if p.pos == len(statusPrefix) {
		p.minor = b[7] - '0'
		p.state = stAfterCode
	}
	return nil
}

// afterCode reads the SP before the reason; a line without one ("HTTP/1.1 200\r\n") is accepted,
// the reason being meaningless (RFC 9112 §4).
func (p *parser) afterCode(c byte) error {
	switch c {
	case ' ':
		p.pos++
		p.state = stReason
		return nil
	case '\r', '\n':
		p.state = stStartCR
		return nil
	}
	return ErrNotHTTP
}

func (p *parser) reason(b []byte) error {
	i := p.pos
	for i < len(b) && valueChar[b[i]] {
		i++
	}
	p.pos = i
	if i < len(b) {
		p.reasonEnd = i
		p.state = stStartCR
	}
	return nil
}

func (r *Response) finish(head []byte) {
	p := &r.p
	r.finishHeader(head)
	r.Version = r.slice(0, 8)
	r.Minor = int(p.minor)
	r.Status = int(head[9]-'0')*100 + int(head[10]-'0')*10 + int(head[11]-'0')
	if p.reasonEnd > 12 {
		r.Reason = r.slice(13, int32(p.reasonEnd))
	} else {
		r.Reason = r.slice(12, 12)
	}
}
