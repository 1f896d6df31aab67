//go:build linux

package proxy

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"

	"github.com/sidpin/sidpin/backends"
	"github.com/sidpin/sidpin/clientlimits"
	"github.com/sidpin/sidpin/internal/evloop"
	"github.com/sidpin/sidpin/internal/httpwire"
	"github.com/sidpin/sidpin/internal/proxyproto"
)

// shard is the loop front's part in one event loop: the client connections and node connections it
// holds, and the scratch space its handlers share (they run one at a time, under the loop's lock).
type shard struct {
	f       *front
	p       *Proxy
	loop    *evloop.Loop
	clients clientList
	pools   map[*backends.Transport]*nodePool
	idle    int           // node connections idle in the pools
	sweep   *evloop.Timer // closes node connections idle too long; set while any is idle

	req  httpwire.Request  // the request being routed
	resp httpwire.Response // the answer head being read
	args fasthttp.Args     // the routed request's query
	out  []byte            // where an answer head (and the body bytes that came with it) is put together
}

func newShard(f *front, l *evloop.Loop) *shard {
	return &shard{f: f, p: f.p, loop: l, pools: map[*backends.Transport]*nodePool{}, out: make([]byte, 0, 4<<10)}
}

// wireLimits are the parser's limits: limits.max_header_bytes, as the fasthttp path reads it.
func (s *shard) wireLimits() httpwire.Limits {
	return httpwire.Limits{MaxHeaderBytes: s.p.cfg().Limits.MaxHeaderBytes}
}

// phase is what a client connection waits for, which says what its deadline does.
type phase uint8

const (
	phaseIdle   phase = iota // between requests (or before the first): timeouts.client_idle closes it
	phaseHead                // a request is partly read: timeouts.client_read closes it
	phaseLookup              // its session's pin is looked up in Redis
	phaseNode                // the request is with its node: the node's deadline answers 504
	phaseWrite               // the answer waits for the client to read it
)

// clientConn is one client connection held by a loop.
type clientConn struct {
	s       *shard
	fd      int
	addr    netip.AddrPort
	release func() // ends the connection's count (limits.per_client)

	in  []byte        // bytes read and not yet used: a request partly read, or requests pipelined behind one
	out []byte        // answer bytes the socket could not take yet
	x   *loopExchange // the request in flight, nil between requests

	phase    phase
	deadline int64 // when the phase's wait ends (unix nanos); 0: none
	timer    *evloop.Timer
	timerAt  int64         // when timer fires
	lookup   *lookupResult // a pin looked up in Redis for the request in c.in
	admitted *admission    // a handshake admitted away from the loop, for the request in c.in

	awaitProxy bool // the PROXY header must come first (clients.proxy_protocol)
	serving    bool // serve is on the stack: an answer written within it does not serve the next request
	unread     bool // bytes (or the end) may wait in the socket: an edge came while it was not read
	gone       bool // the client shut its side: nothing more will come
	closeAfter bool // the connection closes once the answer in flight is written
	closed     bool

	prev, next *clientConn // the shard's list
}

// accepted takes a connection the loop accepted: counted, refused over a limit, or registered.
func (s *shard) accepted(fd int, sa unix.Sockaddr) {
	f := s.f
	addr := sockaddrAddr(sa)
	if f.conns.Add(1) > int64(s.p.cfg().Limits.MaxConnections) {
		f.conns.Add(-1)
		refuse(fd, answerTooManyConns.close)
		return
	}
	_ = evloop.NoDelay(fd)
	if s.p.peers.proxyProtocol.Contains(addr.Addr()) {
		// The client's address comes with the PROXY header: counted per client once it is read.
		if c := s.adopt(fd, addr, func() {}, nil); c != nil {
			c.awaitProxy = true
			c.wait(phaseHead)
		}
		return
	}
	release, ok := s.p.limits.AdmitAddr(addr.Addr())
	if !ok {
		f.conns.Add(-1)
		refuse(fd, []byte(clientlimits.Answer429))
		return
	}
	s.adopt(fd, addr, release, nil)
}

// readProxyHeader reads the PROXY header at the start of data (clients.proxy_protocol): the
// connection takes the client's address, and is counted for that client. It returns the header's
// length; false when more bytes are needed (kept) or the connection was refused.
func (c *clientConn) readProxyHeader(data []byte) (int, bool) {
	h, n, err := proxyproto.Parse(data)
	switch {
	case err == proxyproto.ErrNeedMore:
		c.keep(data)
		return 0, false
	case err != nil:
		c.s.p.log.Debug("connection refused: no valid PROXY header from a clients.proxy_protocol peer", "peer", c.addr, "err", err)
		c.close()
		return 0, false
	}
	if h.Source.IsValid() {
		c.addr = h.Source
	}
	release, ok := c.s.p.limits.AdmitAddr(c.addr.Addr())
	if !ok {
		_, _ = evloop.Write(c.fd, []byte(clientlimits.Answer429))
		c.close()
		return 0, false
	}
	c.release, c.awaitProxy = release, false
	c.wait(phaseIdle)
	return n, true
}

// adopt registers a client connection (new, or back from fasthttp with its count) and serves what
// was read of it already; nil when the loop could not take it (closed).
func (s *shard) adopt(fd int, addr netip.AddrPort, release func(), buffered []byte) *clientConn {
	c := &clientConn{s: s, fd: fd, addr: addr, release: release}
	if err := s.loop.Add(fd, c, evloop.In|evloop.Out|evloop.RdHup|evloop.Edge); err != nil {
		evloop.Close(fd)
		release()
		s.f.conns.Add(-1)
		return nil
	}
	s.clients.push(c)
	c.wait(phaseIdle)
	if len(buffered) > 0 {
		c.in = append([]byte(nil), buffered...)
		c.serve(c.in)
	}
	return c
}

// refuse writes a whole answer to a connection just accepted (its send buffer takes it) and closes it.
func refuse(fd int, answer []byte) {
	_, _ = evloop.Write(fd, answer)
	evloop.Close(fd)
}

var answerTooManyConns = newCanned(fasthttp.StatusServiceUnavailable, "sidpin: limits.max_connections reached")

func sockaddrAddr(sa unix.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port))
	}
	return netip.AddrPort{}
}

// Event handles the client socket's readiness.
func (c *clientConn) Event(ev uint32) {
	if c.closed {
		return
	}
	if ev&evloop.Err != 0 {
		c.abort() // reset by the client: whatever is in flight ends with it
		return
	}
	if ev&evloop.Out != 0 && c.out != nil && !c.flush() {
		return
	}
	if ev&(evloop.RdHup|evloop.Hup) != 0 {
		c.gone = true
	}
	if ev&(evloop.In|evloop.RdHup|evloop.Hup) != 0 {
		c.unread = true
		c.readMore()
	}
}

// readMore reads what the connection's state wants read: requests between answers, or the body of
// the request in flight. Bytes pipelined behind a request in flight wait in the socket until its
// answer is written; but a client that shut its side while its request is in flight went away, and
// the request is cut at the node, as it would have been without a proxy.
func (c *clientConn) readMore() {
	switch {
	case c.free():
		c.readRequests()
	case c.x != nil && c.x.bodyLeft > 0:
		c.x.readBody()
	case c.gone && (c.x != nil || c.phase == phaseLookup):
		c.abort()
	}
}

// readRequests reads and serves requests until the socket is drained or a request is in flight.
func (c *clientConn) readRequests() {
	for c.free() && c.unread {
		scratch := c.s.loop.Scratch()
		n, errno := evloop.Read(c.fd, scratch)
		switch {
		case errno == unix.EAGAIN:
			c.unread = false
			return
		case errno != 0 || n == 0:
			c.ended()
			return
		}
		if n < len(scratch) {
			c.unread = false // drained: a new edge comes with new bytes
		}
		if c.in != nil {
			c.in = append(c.in, scratch[:n]...)
			c.serve(c.in)
		} else {
			c.serve(scratch[:n])
		}
	}
}

// ended handles the client's end of stream between requests: a request cut short is dropped.
func (c *clientConn) ended() {
	c.gone = true
	c.close()
}

// serve serves the requests in data, in order, while the connection is free; what is left (a
// request partly read, or requests behind one in flight) is kept in c.in.
func (c *clientConn) serve(data []byte) {
	if c.awaitProxy {
		used, ok := c.readProxyHeader(data)
		if !ok {
			return
		}
		data = data[used:]
	}
	c.serving = true
	defer func() { c.serving = false }()
	for len(data) > 0 && c.free() {
		used, ok := c.serveOne(data)
		if !ok {
			return // more bytes are needed (kept), or the connection was handed over or closed
		}
		data = data[used:]
	}
	c.keep(data)
}

// free reports whether the connection may start its next request.
func (c *clientConn) free() bool {
	return !c.closed && !c.closeAfter && c.x == nil && c.phase != phaseLookup
}

// keep makes rest the bytes kept for later (rest may alias c.in, or the loop's scratch).
func (c *clientConn) keep(rest []byte) {
	switch {
	case c.closed:
		c.in = nil
	case len(rest) == 0:
		c.in = nil
	case c.in != nil && len(rest) > 0 && &rest[0] == &c.in[0]:
		// already in place
	default:
		c.in = append(c.in[:0:0], rest...)
	}
	if len(c.in) > 0 && c.x == nil && c.phase == phaseIdle {
		c.wait(phaseHead)
	}
}

// wait enters a phase and sets its deadline. The loop's timer is set only when none is pending: a
// deadline pushed later is found when the timer fires, which re-arms it for the rest.
func (c *clientConn) wait(ph phase) {
	c.phase = ph
	var d time.Duration
	switch ph {
	case phaseIdle:
		d = c.s.p.cfg().Timeouts.ClientIdle.D()
	case phaseHead, phaseWrite:
		d = c.s.p.cfg().Timeouts.ClientRead.D()
	case phaseLookup:
		d = storeTimeout + time.Second // the lookup's own timeout answers first
	case phaseNode:
		d = c.x.ttl
	}
	c.deadline = c.s.loop.Now() + int64(d)
	switch {
	case c.timer == nil:
		c.timer, c.timerAt = c.s.loop.After(d, c.onDeadline), c.deadline
	case c.deadline < c.timerAt: // sooner than the timer set: set it again (in place)
		c.s.loop.Reset(c.timer, d)
		c.timerAt = c.deadline
	}
}

func (c *clientConn) onDeadline() {
	c.timer = nil
	if c.closed || c.deadline == 0 {
		return
	}
	if left := c.deadline - c.s.loop.Now(); left > 0 {
		c.timer, c.timerAt = c.s.loop.After(time.Duration(left), c.onDeadline), c.deadline
		return
	}
	switch c.phase {
	case phaseNode:
		c.x.timedOut()
	default:
		c.close()
	}
}

// send writes b to the client, keeping what the socket cannot take yet (the exchange stops reading
// its node until it is written); false when the connection failed and was closed.
func (c *clientConn) send(b []byte) bool {
	if c.out != nil {
		c.out = append(c.out, b...)
		return true
	}
	n, errno := evloop.WriteAll(c.fd, b)
	switch errno {
	case 0:
	case unix.EAGAIN:
		c.out = append([]byte(nil), b[n:]...)
	default:
		c.abort()
		return false
	}
	return true
}

// flush writes what the socket could not take before; false when the connection closed.
func (c *clientConn) flush() bool {
	n, errno := evloop.WriteAll(c.fd, c.out)
	switch errno {
	case 0:
	case unix.EAGAIN:
		c.out = c.out[n:]
		return true
	default:
		c.abort()
		return false
	}
	c.out = nil
	switch {
	case c.x != nil:
		c.x.clientDrained()
	case c.closeAfter:
		c.close()
		return false
	}
	return !c.closed
}

// answered runs when the answer in flight is written (or kept to be written): the connection closes
// or waits for its next request, served at once when it is already here (unless serve, on the
// stack, goes on with it).
func (c *clientConn) answered() {
	c.x = nil
	if c.closeAfter || c.s.p.draining.Load() {
		c.closeAfter = true
		if c.out == nil {
			c.close()
		}
		return
	}
	c.wait(phaseIdle)
	if c.serving {
		return
	}
	if len(c.in) > 0 {
		c.serve(c.in)
	}
	if c.free() && c.unread {
		c.readRequests()
	}
}

// answerCanned writes an answer sidpin makes itself, after which the connection closes when
// closing says so (or it was to close anyway).
func (c *clientConn) answerCanned(a canned, closing bool) {
	b := a.keep
	if closing || c.closeAfter || c.s.p.draining.Load() {
		c.closeAfter = true
		b = a.close
	}
	if c.send(b) {
		c.answered()
	}
}

// close closes the connection once, with anything in flight.
func (c *clientConn) close() {
	if c.closed {
		return
	}
	c.closed = true
	c.deadline = 0
	c.s.loop.Stop(c.timer)
	c.timer = nil
	if x := c.x; x != nil {
		c.x = nil
		x.clientGone()
	}
	c.dropAdmission()
	c.s.loop.Remove(c.fd)
	c.s.clients.remove(c)
	c.in, c.out = nil, nil
	c.release()
	c.s.f.conns.Add(-1)
}

// abort closes the connection with a reset when bytes the client sent were never read, as a server
// closing it would (the client learns its request was not taken).
func (c *clientConn) abort() { c.close() }

// clientIP is the connection's address as X-Forwarded-For carries it.
func (c *clientConn) clientIP(dst []byte) []byte { return c.addr.Addr().AppendTo(dst) }

// clientOf is who req comes from (peers.clientOf over the connection's address).
func (c *clientConn) clientOf(req *httpwire.Request) netip.AddrPort {
	return c.s.p.peers.clientOf(c.addr, req.Get("X-Forwarded-For"))
}

// canned is a whole answer of sidpin's own, in its two forms: keeping the connection, or closing it.
type canned struct {
	status      int
	keep, close []byte
}

// newCanned makes a plain-text answer, as fasthttp's ctx.Error writes it.
func newCanned(status int, text string) canned {
	return newCannedBody(status, "text/plain; charset=utf-8", []byte(text))
}

func newCannedBody(status int, contentType string, body []byte) canned {
	return newCannedHeader(status, contentType, "", body)
}

// newCannedHeader makes an answer with one more header line (extra ends with CRLF, or is empty).
func newCannedHeader(status int, contentType, extra string, body []byte) canned {
	return canned{status: status, keep: cannedAnswer(status, contentType, extra, body, false),
		close: cannedAnswer(status, contentType, extra, body, true)}
}

func cannedAnswer(status int, contentType, extra string, body []byte, closing bool) []byte {
	b := []byte("HTTP/1.1 ")
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, fasthttp.StatusMessage(status)...)
	b = append(b, "\r\n"...)
	b = append(b, extra...)
	b = append(b, "Content-Type: "...)
	b = append(b, contentType...)
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	if closing {
		b = append(b, "\r\nConnection: close"...)
	}
	b = append(b, "\r\n\r\n"...)
	return append(b, body...)
}

// clientList is a shard's client connections, for shutdown.
type clientList struct {
	head *clientConn
	n    int
}

func (l *clientList) push(c *clientConn) {
	c.next = l.head
	if l.head != nil {
		l.head.prev = c
	}
	l.head = c
	l.n++
}

func (l *clientList) remove(c *clientConn) {
	if c.prev != nil {
		c.prev.next = c.next
	} else if l.head == c {
		l.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	}
	c.prev, c.next = nil, nil
	l.n--
}

// closeIdle closes the connections between requests (shutdown); the others close after their answer.
func (s *shard) closeIdle() {
	for c := s.clients.head; c != nil; {
		next := c.next
		c.closeAfter = true
		if c.x == nil && c.phase == phaseIdle && len(c.in) == 0 && c.out == nil {
			c.close()
		}
		c = next
	}
}

// closeAll closes every connection (shutdown's grace is over).
func (s *shard) closeAll() {
	for c := s.clients.head; c != nil; {
		next := c.next
		c.close()
		c = next
	}
}
