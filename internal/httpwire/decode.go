package httpwire

// maxContentLength bounds Content-Length: far beyond any body, and no sum of it overflows.
const maxContentLength = 1 << 62

// decode reads the header lines that frame the message or concern the hop. Repeats of those
// whose value must be single are refused rather than merged: the first-wins and last-wins
// parsers along the way would frame or route the message differently.
func (h *Header) decode(name, value []byte, s span) error {
	switch len(name) {
	case len("host"):
		if h.p.request && equalFold(name, "host") {
			return h.decodeHost(value, s)
		}
	case len("upgrade"):
		if equalFold(name, "upgrade") {
			if h.upgrade.nameEnd != 0 {
				return ErrDuplicateUpgrade
			}
			h.upgrade = s
		}
	case len("connection"):
		if equalFold(name, "connection") {
			return h.decodeConnection(value)
		}
	case len("content-length"):
		if equalFold(name, "content-length") {
			return h.decodeContentLength(value)
		}
	case len("transfer-encoding"):
		if equalFold(name, "transfer-encoding") {
			return h.decodeTransferEncoding(value)
		}
	}
	return nil
}

// decodeContentLength accepts 1*DIGIT only: no sign, no inner space, no list ("4, 4"), once.
func (h *Header) decodeContentLength(v []byte) error {
	if h.ContentLength >= 0 {
		return ErrDuplicateContentLength
	}
	if len(v) == 0 {
		return ErrBadContentLength
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return ErrBadContentLength
		}
		if n = n*10 + int64(c-'0'); n > maxContentLength {
			return ErrBadContentLength
		}
	}
	h.ContentLength = n
	return nil
}

// decodeTransferEncoding accepts one Transfer-Encoding, exactly "chunked", in HTTP/1.1 only
// (RFC 9112 §6.1: an HTTP/1.0 message with one has faulty framing).
func (h *Header) decodeTransferEncoding(v []byte) error {
	switch {
	case h.p.minor == 0:
		return ErrTEOnHTTP10
	case h.Chunked:
		return ErrDuplicateTE
	case !equalFold(v, "chunked"):
		return ErrUnsupportedTE
	}
	h.Chunked = true
	return nil
}

// decodeConnection notes the options sidpin acts on. Every option must be a token, since each
// names a header the proxy removes, and none may name Content-Length or Host: a sender must not
// list a field meant for every recipient (RFC 9110 §7.6.1), and a proxy that honoured
// "Connection: Content-Length" would forward the body without its length, to be read by the next
// hop as the next message.
func (h *Header) decodeConnection(v []byte) error {
	for len(v) > 0 {
		var opt []byte
		opt, v = nextListItem(v)
		switch {
		case !allOf(opt, &tokenChar), equalFold(opt, "content-length"), equalFold(opt, "host"):
			return ErrBadConnection
		case equalFold(opt, "close"):
			h.ConnClose = true
		case equalFold(opt, "keep-alive"):
			h.ConnKeepAlive = true
		case equalFold(opt, "upgrade"):
			h.ConnUpgrade = true
		case len(opt) > 0:
			h.connNames = true
		}
	}
	return nil
}

// decodeHost accepts one non-empty Host of host[:port] bytes (RFC 9112 §3.2: a server must
// answer 400 to a repeated or invalid Host).
func (h *Header) decodeHost(v []byte, s span) error {
	switch {
	case h.host.nameEnd != 0:
		return ErrDuplicateHost
	case len(v) == 0 || !allOf(v, &hostChar):
		return ErrBadHost
	}
	h.host = s
	return nil
}
