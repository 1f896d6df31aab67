package httpwire

import "github.com/sidpin/sidpin/internal/hophdr"

// Field is one header field line: its name as sent and its value without surrounding whitespace.
// Both alias the parsed buffer.
type Field struct{ Name, Value []byte }

// span locates a field line's name and trimmed value in the head, as offsets: the buffer may be
// a different, grown copy on the call that completes an incremental parse, so slices into an
// earlier one could not be kept.
type span struct{ name, nameEnd, value, valueEnd int32 }

// Header is the header section of a parsed head, shared by Request and Response: the field lines
// in order, and what the parser decoded of the ones that frame the message or name the hop.
type Header struct {
	// ContentLength is the Content-Length value, -1 without one. With Chunked also set the body
	// is chunked (RFC 9112 §6.3): forward without the Content-Length and close after the message.
	ContentLength int64
	// Chunked: Transfer-Encoding is exactly "chunked".
	Chunked bool
	// The Connection options sidpin acts on, from every Connection line. Other options name
	// hop-by-hop headers: see IsHopByHop.
	ConnClose, ConnKeepAlive, ConnUpgrade bool
	// Upgrade is the Upgrade value, nil without one.
	Upgrade []byte

	head    []byte // the whole head, set when it is complete
	fields  [MaxHeaderFields]span
	nfields int
	host    span // the Host line (requests), its name set when seen
	upgrade span
	p       parser
	// connNames: a Connection option other than close, keep-alive and upgrade names a header.
	connNames bool
}

// Len is the number of header field lines of a complete head; 0 before one (after ErrNeedMore or
// a refusal), so that Field is never asked for a line of a head that is not there.
func (h *Header) Len() int {
	if h.head == nil {
		return 0
	}
	return h.nfields
}

// Field returns the i-th header field line, 0 <= i < Len(). The slices are capped at their own
// length, so appending to them never writes into the buffer.
func (h *Header) Field(i int) Field {
	s := h.fields[i]
	return Field{Name: h.slice(s.name, s.nameEnd), Value: h.slice(s.value, s.valueEnd)}
}

// Get returns the value of the first field named name, in any case on either side, or nil.
func (h *Header) Get(name string) []byte {
	for i := range h.Len() {
		s := h.fields[i]
		if equalFoldBytes(h.head[s.name:s.nameEnd], name) {
			return h.slice(s.value, s.valueEnd)
		}
	}
	return nil
}

// Raw is the whole head as received, start line to blank line.
func (h *Header) Raw() []byte { return h.head }

// IsHopByHop reports whether a field named name must not be forwarded: one of the hop-by-hop
// headers (internal/hophdr) or one this message's Connection lines name. Those never name
// Content-Length or Host (refused by the parser), but Transfer-Encoding is hop-by-hop: a caller
// relaying a body as received skips with NotForwarded instead.
func (h *Header) IsHopByHop(name []byte) bool {
	if len(name) < len(hopLengths) && hopLengths[len(name)] && hophdr.Is(name) {
		return true
	}
	return h.InConnection(name)
}

// NotForwarded reports whether a field named name stays out of a head that sidpin forwards with
// the body relayed exactly as it was received: the hop-by-hop fields (IsHopByHop), except what
// the relayed body still needs. Transfer-Encoding stays (it is always "chunked" here, and the
// chunks pass unchanged: without it the next hop would read them as the next message), and
// Content-Length goes when the body is chunked, as RFC 9112 §6.3 has an intermediary do.
func (h *Header) NotForwarded(name []byte) bool {
	switch {
	case equalFold(name, "transfer-encoding"):
		return false
	case equalFold(name, "content-length"):
		return h.Chunked
	}
	return h.IsHopByHop(name)
}

// hopLengths marks the lengths of hophdr.Names: most names are no hop-by-hop header's length, and
// are told so without comparing them to each.
var hopLengths = func() (t [32]bool) {
	for _, n := range hophdr.Names {
		t[len(n)] = true
	}
	return t
}()

// InConnection reports whether a Connection line of this message names name.
func (h *Header) InConnection(name []byte) bool {
	if !h.connNames {
		return h.ConnClose && equalFold(name, "close") || h.ConnKeepAlive && equalFold(name, "keep-alive") ||
			h.ConnUpgrade && equalFold(name, "upgrade")
	}
	for i := range h.Len() {
		s := h.fields[i]
		if !equalFold(h.head[s.name:s.nameEnd], "connection") {
			continue
		}
		for v := h.head[s.value:s.valueEnd]; len(v) > 0; {
			var opt []byte
			opt, v = nextListItem(v)
			if equalFoldBytes(opt, name) {
				return true
			}
		}
	}
	return false
}

func (h *Header) slice(from, to int32) []byte { return h.head[from:to:to] }

// resetHeader readies h for a new head, leaving the field array alone (only Len() of it is read).
func (h *Header) resetHeader() {
	h.ContentLength, h.Chunked = -1, false
	h.ConnClose, h.ConnKeepAlive, h.ConnUpgrade, h.connNames = false, false, false, false
	h.Upgrade, h.head = nil, nil
	h.nfields = 0
	h.host, h.upgrade = span{}, span{}
	h.p = parser{}
}

// finishHeader keeps the completed head and the slices decoded from it.
func (h *Header) finishHeader(head []byte) {
	h.head = head
	if h.upgrade.nameEnd != 0 {
		h.Upgrade = h.slice(h.upgrade.value, h.upgrade.valueEnd)
	}
}

// nextListItem cuts the first element of a comma-separated list, trimmed of OWS.
func nextListItem(v []byte) (item, rest []byte) {
	for i, c := range v {
		if c == ',' {
			return trimOWS(v[:i]), v[i+1:]
		}
	}
	return trimOWS(v), nil
}
