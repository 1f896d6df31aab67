package httpwire

import "strconv"

// AppendRequestHead appends the head of the request to send to a node: the request line with
// r's method and target as received, each header line of r that skip does not name (skip may be
// nil), then extra, then the blank line. It allocates nothing beyond growing dst.
//
// The version written is HTTP/1.1 whatever the client's: the node connection is sidpin's own
// and kept alive (an HTTP/1.0 request without Host then needs one in extra: its Authority if it
// has one, which a Host must equal). Lines are written
// "Name: value" from the parsed fields, so no whitespace or line end of the client's reaches the
// node. extra is the caller's own and is not checked: it must hold no CR or LF.
//
// With the body relayed as received, skip is r.NotForwarded: the hop-by-hop headers and those
// Connection names go, the body's framing stays. (r.IsHopByHop alone would drop
// Transfer-Encoding.) An upgrade adds its Connection and Upgrade back in extra.
func AppendRequestHead(dst []byte, r *Request, skip func(name []byte) bool, extra []Field) []byte {
	dst = append(dst, r.Method...)
	dst = append(dst, ' ')
	dst = append(dst, r.Target...)
	dst = append(dst, " HTTP/1.1\r\n"...)
	return appendFields(dst, &r.Header, skip, extra)
}

// AppendResponseHead appends the head of the answer to send to a client: the status line with
// r's status and reason, then the header lines as AppendRequestHead writes them (skip is
// r.NotForwarded for a body relayed as received). A chunked answer to an HTTP/1.0 client cannot
// be relayed as received: the caller sends the ChunkedReader's payload, delimited by close.
func AppendResponseHead(dst []byte, r *Response, skip func(name []byte) bool, extra []Field) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(r.Status), 10)
	dst = append(dst, ' ')
	dst = append(dst, r.Reason...)
	dst = append(dst, "\r\n"...)
	return appendFields(dst, &r.Header, skip, extra)
}

func appendFields(dst []byte, h *Header, skip func(name []byte) bool, extra []Field) []byte {
	for i := range h.Len() {
		f := h.Field(i)
		if skip == nil || !skip(f.Name) {
			dst = AppendField(dst, f.Name, f.Value)
		}
	}
	for _, f := range extra {
		dst = AppendField(dst, f.Name, f.Value)
	}
	return append(dst, "\r\n"...)
}

// AppendField appends one header line, "name: value\r\n".
func AppendField(dst, name, value []byte) []byte {
	dst = append(dst, name...)
	dst = append(dst, ": "...)
	dst = append(dst, value...)
	return append(dst, "\r\n"...)
}
