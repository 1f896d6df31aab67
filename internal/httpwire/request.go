package httpwire

// Request is a parsed request head. Its slices alias the buffer given to ParseRequest and are
// capped at their own length; they stay valid as long as that buffer is left unchanged.
type Request struct {
	Method  []byte
	Target  []byte // as sent
	Path    []byte // the target's path: up to '?', after the authority of an absolute-form target
	Query   []byte // after '?'; nil without '?', empty (not nil) for a bare '?'
	Version []byte // "HTTP/1.0" or "HTTP/1.1"
	Minor   int    // 0 or 1
	// Authority is an absolute-form target's host[:port], nil for origin-form. It equals Host
	// (without case) whenever both are present.
	Authority []byte
	Host      []byte // the Host value, nil without one (HTTP/1.0 only)
	Header

	// Offsets into the target, recorded when it is checked.
	pathStart, query, authority, authorityEnd int
}

// ParseRequest parses the request head at the start of buf, within lim. It returns the head's
// length (request line to blank line) or an error: ErrNeedMore when buf holds a valid but
// unfinished head, any other error as soon as the bytes so far break a rule or a limit.
//
// After ErrNeedMore, call again with the same bytes and more (the same buffer grown, or a copy):
// the parse resumes where it stopped and no byte is looked at twice. Any other result ends the
// parse; the next call on req starts a new one. Reset abandons one left pending.
func ParseRequest(buf []byte, lim Limits, req *Request) (n int, err error) {
	lim = lim.normalized()
	if !req.p.resumes(len(buf)) {
		req.Reset()
	}
	n, err = req.run(buf, &lim, req.stepStart)
	if err == nil {
		err = req.finish(buf[:n:n])
	}
	req.p.pending = err == ErrNeedMore
	if err != nil {
		return 0, err
	}
	return n, nil
}

// Reset readies req for a new head, abandoning a pending parse.
func (r *Request) Reset() {
	r.Method, r.Target, r.Path, r.Query, r.Version = nil, nil, nil, nil, nil
	r.Authority, r.Host, r.Minor = nil, nil, 0
	r.resetHeader()
	r.p.request = true
}

// KeepAlive reports whether the client's connection may carry another request after this one,
// by version and Connection only. A request with both Content-Length and chunked framing should
// close it anyway (RFC 9112 §6.3); that is the caller's decision.
func (r *Request) KeepAlive() bool {
	if r.ConnClose {
		return false
	}
	return r.Minor == 1 || r.ConnKeepAlive
}

// Framing says how the body after this head is delimited.
func (r *Request) Framing() Framing {
	switch {
	case r.Chunked:
		return FramingChunked
	case r.ContentLength > 0:
		return FramingLength
	}
	return FramingNone
}

// stepStart reads the request line as far as b goes, or one byte of an empty line before it.
func (r *Request) stepStart(b []byte) error {
	p := &r.p
	if p.state <= stLeadLF {
		return p.lead(b[p.pos]) // an empty line moves the window
	}
	for p.pos < len(b) && p.state < stFieldStart {
		var err error
		switch p.state {
		case stMethod:
			err = p.method(b)
		case stTarget:
			err = r.target(b)
		case stVersion:
			err = r.version(b)
		default:
			err = p.stepStartEnd(b, ErrBadRequestLine)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// lead skips the empty lines a server should ignore before a request line (RFC 9112 §2.2): old
// clients sent a CRLF after a POST body.
func (p *parser) lead(c byte) error {
	switch {
	case p.state == stLeadLF && c == '\n':
		p.pos++
		p.newLine(stLead)
	case p.state == stLeadLF:
		return ErrBareCR
	case c == '\r':
		p.pos++
		p.state = stLeadLF
	case c == '\n':
		return ErrBareLF
	default:
		p.start = p.pos
		p.state = stMethod
	}
	return nil
}

// method reads the method, a token, and the single SP after it.
func (p *parser) method(b []byte) error {
	i := p.pos
	for i < len(b) && tokenChar[b[i]] {
		i++
	}
	p.pos = i
	switch {
	case i == len(b):
		return nil
	case b[i] != ' ' || i == p.start:
		return ErrBadRequestLine
	}
	p.methodEnd = i
	p.pos++
	p.state = stTarget
	return nil
}

// target reads the request target and the SP after it, then checks its form.
func (r *Request) target(b []byte) error {
	p := &r.p
	i := p.pos
	for i < len(b) && targetChar[b[i]] {
		i++
	}
	p.pos = i
	if i == len(b) {
		return nil
	}
	switch c := b[i]; {
	case c == '\r' || c == '\n' || c == ' ' && i == p.methodEnd+1: // no version, or no target
		return ErrBadRequestLine
	case c != ' ':
		return ErrBadTarget
	}
	if err := r.splitTarget(b, p.methodEnd+1, i); err != nil {
		return err
	}
	p.targetEnd = i
	p.pos++
	p.state = stVersion
	return nil
}

// splitTarget checks that b[from:to] is origin-form ("/path?query") or absolute-form with an
// http or https scheme, an authority of host bytes (no userinfo) and a path, and notes where its
// parts are. "*" (OPTIONS) and authority-form (CONNECT) have no use behind sidpin.
func (r *Request) splitTarget(b []byte, from, to int) error {
	r.authority, r.authorityEnd, r.query = 0, 0, -1
	path := from
	if b[from] != '/' {
		a, ok := authorityStart(b[from:to])
		if !ok {
			return ErrBadTarget
		}
		r.authority = from + a
		path = r.authority
		for path < to && hostChar[b[path]] {
			path++
		}
		if path == r.authority || path == to || b[path] != '/' {
			return ErrBadTarget
		}
		r.authorityEnd = path
	}
	r.pathStart = path
	for i := path; i < to; i++ {
		if b[i] == '?' {
			r.query = i
			break
		}
	}
	return nil
}

// authorityStart returns the length of an "http://" or "https://" prefix (any case).
func authorityStart(t []byte) (int, bool) {
	switch {
	case len(t) > 7 && equalFold(t[:7], "http://"):
		return 7, true
	case len(t) > 8 && equalFold(t[:8], "https://"):
		return 8, true
	}
	return 0, false
}

// version reads "HTTP/1.0" or "HTTP/1.1", checking each byte as it comes. A digit that makes
// another version is ErrVersion (505) at once, any other wrong byte a malformed line: each error
// is decided by the bytes up to it, so it is the same however the head is split.
func (r *Request) version(b []byte) error {
	p := &r.p
	v := p.targetEnd + 1
	for ; p.pos < len(b) && p.pos < v+8; p.pos++ {
		i, c := p.pos-v, b[p.pos]
		switch {
		case !versionByte(i, c):
			return ErrBadRequestLine
		case i == 5 && c != '1', i == 7 && c > '1':
			return ErrVersion
		}
	}
	if p.pos == v+8 {
		p.minor = b[v+7] - '0'
		p.state = stStartCR
	}
	return nil
}

// versionByte reports whether c can be byte i of "HTTP/d.d".
func versionByte(i int, c byte) bool {
	switch i {
	case 5, 7:
		return '0' <= c && c <= '9'
	case 6:
		return c == '.'
	}
	return c == "HTTP/"[i]
}

// finish applies the rules that need the whole head, then exposes its parts.
func (r *Request) finish(head []byte) error {
	p := &r.p
	switch {
	case r.host.nameEnd == 0 && p.minor == 1:
		return ErrMissingHost
	case r.authority != 0 && r.host.nameEnd != 0 &&
		!equalFoldBytes(head[r.authority:r.authorityEnd], head[r.host.value:r.host.valueEnd]):
		// RFC 9112 §3.2.2 has a server use the target's authority and ignore Host, while fasthttp
		// reports Host and net/http the authority: the two must agree or sidpin refuses.
		return ErrHostMismatch
	}
	r.finishHeader(head)
	r.Method = r.slice(int32(p.start), int32(p.methodEnd))
	r.Target = r.slice(int32(p.methodEnd+1), int32(p.targetEnd))
	r.Version = r.slice(int32(p.targetEnd+1), int32(p.targetEnd+9))
	r.Minor = int(p.minor)
	r.Path = r.slice(int32(r.pathStart), int32(p.targetEnd))
	if r.query >= 0 {
		r.Path = r.slice(int32(r.pathStart), int32(r.query))
		r.Query = r.slice(int32(r.query+1), int32(p.targetEnd))
	}
	if r.authority != 0 {
		r.Authority = r.slice(int32(r.authority), int32(r.authorityEnd))
	}
	if r.host.nameEnd != 0 {
		r.Host = r.slice(r.host.value, r.host.valueEnd)
	}
	return nil
}

// Framing is how a message's body is delimited.
type Framing uint8

const (
	FramingNone    Framing = iota // no body: the message ends with its head
	FramingLength                 // ContentLength bytes
	FramingChunked                // chunked: a ChunkedReader finds its end
	FramingClose                  // a response read until the node closes the connection
)
