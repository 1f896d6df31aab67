//go:build linux

package proxy

import (
	"bytes"
	"fmt"
	"net/netip"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/affinity"
	"github.com/sidpin/sidpin/backends"
	"github.com/sidpin/sidpin/engineio"
	"github.com/sidpin/sidpin/internal/httpwire"
)

// loopHandshake is what a polling handshake adds to its exchange: the node's answer is held until
// the session's pin is written (as serveHandshake does), and a node that refused the connection is
// replaced by another once.
type loopHandshake struct {
	r         request
	ws        *wsOpen        // a WebSocket-first session: its first frame is read instead (loop_websocket)
	client    netip.AddrPort // who opens the session (clientOf): its pin's client_addr
	retried   bool           // a second node was picked
	hold      []byte         // the answer so far, head included, until the pin is written
	payload   []byte         // the start of the body's payload (≤ sniffLimit), for the open packet
	encoding  string
	cookie    string // the io cookie, the fallback for the sid
	released  bool   // the answer goes on as it comes
	pinning   bool   // the pin is being written away from the loop (Redis); the answer waits
	sawEnd    bool   // the whole answer is held
	nodeEnded bool   // EndHandshake was called for x.node
	ended     bool
}

// admission is a handshake's admission decided away from the loop (the handshake limits or the pin
// table need I/O): either the node picked for it, or the answer refusing it.
type admission struct {
	node   *backends.Node
	refuse canned
}

// admitsInLoop reports whether a handshake's admission needs no I/O: this instance's own handshake
// buckets, and the memory table (room and session counts). Otherwise one goroutine decides it.
func (p *Proxy) admitsInLoop() bool {
	return p.pinsInLoop() && p.limits.Local()
}

// pinsInLoop reports whether writing a pin needs no I/O (the memory table).
func (p *Proxy) pinsInLoop() bool { return p.memStore }

// poolLoopable reports whether every node of the pool can be reached by the loop (none is TLS), so that
// the node a handshake gets is one the loop can talk to.
func poolLoopable(pool *backends.Pool) bool {
	for _, n := range pool.Nodes {
		if _, ok := n.Endpoint(); !ok {
			return false
		}
	}
	return true
}

// servesHandshake reports whether the loop opens this request's session itself: a polling
// handshake, or a WebSocket-first one (with nothing sent behind it: the client's frames wait for
// the 101) when established tunnels go to the event loops.
func (c *clientConn) servesHandshake(req *httpwire.Request, pool *backends.Pool, r request, bodyLen int64, behind bool) bool {
	if r.kind != kindHandshake || bodyLen != 0 || string(req.Method) != "GET" || !poolLoopable(pool) {
		return false
	}
	if r.upgrade {
		return r.transport == "websocket" && !behind && c.s.p.relay.Loops()
	}
	return r.transport == "polling"
}

// serveHandshake admits a new polling session and sends its handshake to a picked node; the answer
// is held until the sid it carries is pinned. An admission that needs I/O is decided away from the
// loop first, and the request served again with it.
func (c *clientConn) serveHandshake(data []byte, head int, pool *backends.Pool, r request) (int, bool) {
	s := c.s
	p := s.p
	a := c.admitted
	c.admitted = nil
	client := c.clientOf(&s.req)
	switch {
	case a == nil && !p.admitsInLoop():
		c.keep(data)
		c.admitAway(pool, client)
		return 0, false
	case a == nil:
		adm := p.admit(pool, client)
		a = &adm
	}
	if a.node == nil {
		c.answerCanned(a.refuse, !s.req.KeepAlive())
		return head, true
	}
	node := a.node
	ep, ok := node.Endpoint()
	if !ok { // the pool changed under the check: rare, answered as a node that cannot be reached
		node.EndHandshake()
		p.store.ReleasePin()
		c.answerCanned(answerBadGateway, !s.req.KeepAlive())
		return head, true
	}
	c.closeAfter = !s.req.KeepAlive()
	x := s.newExchange(c, pool, node, ep, affinity.Pin{TTL: p.cfg().Timeouts.Handshake.D()}, r)
	x.hs = &loopHandshake{r: r, client: client}
	if r.upgrade {
		x.hs.ws = &wsOpen{}
	}
	x.begin(&s.req, nil, 0)
	return head, true
}

// admit decides whether a new session may open, as admitHandshake and pick do: the client's
// handshake rate, room in the pin table, a node. On a node, the caller ends its handshake and
// releases the reservation.
func (p *Proxy) admit(pool *backends.Pool, addr netip.AddrPort) admission {
	switch status, retry := p.allowNew(addr.Addr(), clientString(addr)); status {
	case fasthttp.StatusTooManyRequests:
		return admission{refuse: tooManyHandshakes(retry)}
	case fasthttp.StatusServiceUnavailable:
		return admission{refuse: answerPinTableFull}
	}
	node, err := p.pick(pool)
	if err != nil {
		p.store.ReleasePin()
		return admission{refuse: answerNoNode}
	}
	return admission{node: node}
}

// admitAway decides the admission of the handshake kept in c.in where waiting is allowed, then
// serves it again.
func (c *clientConn) admitAway(pool *backends.Pool, client netip.AddrPort) {
	var a admission
	c.away(func() { a = c.s.p.admit(pool, client) }, func(open bool) {
		if open {
			c.admitted = &a
		} else {
			a.release(c.s.p)
		}
	})
}

// dropAdmission releases an admission no request took.
func (c *clientConn) dropAdmission() {
	if a := c.admitted; a != nil {
		c.admitted = nil
		a.release(c.s.p)
	}
}

// release ends what an admission began.
func (a *admission) release(p *Proxy) {
	if a.node != nil {
		a.node.EndHandshake()
		p.store.ReleasePin()
	}
}

// tooManyHandshakes is the answer to a client over its handshake rate, as admitHandshake writes it.
func tooManyHandshakes(retry time.Duration) canned {
	return newCannedHeader(fasthttp.StatusTooManyRequests, "text/plain; charset=utf-8",
		fmt.Sprintf("Retry-After: %d\r\n", retryAfterSecs(retry)), []byte(textTooManySessions))
}

// holdAnswer starts holding a handshake's 200 answer, whose head is given.
func (h *loopHandshake) holdAnswer(resp *httpwire.Response, head []byte) {
	h.encoding = contentCoding(resp.Get("Content-Encoding"))
	h.cookie = ioCookieOf(resp)
	h.hold = append(make([]byte, 0, len(head)+256), head...)
}

// collect keeps the start of the body's payload for the open packet.
func (h *loopHandshake) collect(p []byte) {
	if n := sniffLimit - len(h.payload); n > 0 {
		h.payload = append(h.payload, p[:min(len(p), n)]...)
	}
}

// relayHeld takes answer bytes while the answer is held; the answer is released, pinned, once it is
// whole, its first sniffLimit payload bytes are here, or bufferLimit bytes are held (a node's chunk
// framing around few payload bytes holds no more than that). False when the exchange ended.
func (x *loopExchange) relayHeld(out []byte, end bool) bool {
	h := x.hs
	h.hold = append(h.hold, out...)
	h.sawEnd = h.sawEnd || end
	if h.pinning || !end && len(h.payload) < sniffLimit && len(h.hold) < bufferLimit {
		return true
	}
	return x.releaseHandshake()
}

// releaseHandshake pins the session the held answer opens and sends the answer on; a session that
// cannot be pinned is refused as on the fasthttp path. False when the exchange ended.
func (x *loopExchange) releaseHandshake() bool {
	h := x.hs
	p := x.s.p
	h.released = true
	info, found := sniffOpen(h.payload, h.encoding, h.cookie)
	h.payload = nil
	switch {
	case !found:
		p.log.Debug("handshake answer without a sid", "pool", x.pool.Name, "node", x.node.Name)
	case !p.pinsInLoop():
		x.pinAway(info, affinity.TransportPolling, func() {
			p.sessions.Get(info.SID).Handshake(x.bytesIn, x.bytesOut)
			x.pinnedAway()
		})
		return true // held until the pin is written
	default:
		if err := p.pin(x.pool, x.node, info, h.r, clientString(h.client), affinity.TransportPolling); err != nil {
			x.refusePin(info, err)
			return false
		}
		p.sessions.Get(info.SID).Handshake(x.bytesIn, x.bytesOut)
	}
	return x.sendHeld()
}

// sendHeld sends the held answer on; false when the client failed.
func (x *loopExchange) sendHeld() bool {
	h := x.hs
	hold := h.hold
	h.hold = nil
	return x.c.send(hold)
}

func (x *loopExchange) refusePin(info engineio.OpenInfo, err error) {
	status, text := x.s.p.handshakeRefusal(x.node, info, err)
	x.answerOwn(newCanned(status, text))
}

// pinAway writes the pin where waiting is allowed (Redis); the node is not read meanwhile, and then
// runs (or the refusal is answered) in the loop once the pin is written.
func (x *loopExchange) pinAway(info engineio.OpenInfo, transport string, then func()) {
	h := x.hs
	h.pinning = true
	p, client := x.s.p, clientString(h.client)
	go func() {
		err := p.pin(x.pool, x.node, info, h.r, client, transport)
		x.s.loop.Locked(func() {
			h.pinning = false
			switch {
			case x.done: // the client went away meanwhile
			case err != nil:
				x.refusePin(info, err)
			default:
				then()
			}
		})
	}()
}

// pinnedAway sends a polling handshake's held answer on once its pin is written.
func (x *loopExchange) pinnedAway() {
	if !x.sendHeld() {
		return
	}
	if x.hs.sawEnd {
		x.finish(true)
		return
	}
	x.clientDrained() // the node was not read while the pin was written
}

// retryHandshake sends the handshake to another node after the first refused the connection (it never
// saw the request), as pickAndSend does; false when there is none to try.
func (x *loopExchange) retryHandshake() bool {
	h := x.hs
	if h.retried || x.answered || x.req == nil {
		return false
	}
	h.retried = true
	x.node.EndHandshake()
	h.nodeEnded = true
	if x.nc != nil {
		x.s.closeNodeConn(x.nc)
		x.nc = nil
	}
	node, err := x.s.p.pick(x.pool)
	if err != nil {
		x.answerOwn(answerNoNode)
		return true
	}
	h.nodeEnded = false
	ep, ok := node.Endpoint()
	x.node, x.ep, x.retried = node, ep, false
	if !ok {
		x.answerOwn(answerBadGateway)
		return true
	}
	nc, err := x.s.takeConn(x)
	if err != nil {
		x.failed(err)
		return true
	}
	x.use(nc)
	return true
}

// endHandshake ends what admitting the handshake began, once: the node's handshake count and the
// pin table's reservation.
func (x *loopExchange) endHandshake() {
	h := x.hs
	if h == nil || h.ended {
		return
	}
	h.ended = true
	if !h.nodeEnded {
		x.node.EndHandshake()
	}
	x.s.p.store.ReleasePin()
}

// ioCookieOf is the io cookie a node set on its handshake answer, when it holds a valid sid.
func ioCookieOf(resp *httpwire.Response) string {
	for i := range resp.Len() {
		f := resp.Field(i)
		if !equalFoldString(f.Name, "Set-Cookie") {
			continue
		}
		v := f.Value
		if j := bytes.IndexByte(v, ';'); j >= 0 {
			v = v[:j]
		}
		name, value, ok := bytes.Cut(v, []byte("="))
		if ok && string(bytes.TrimSpace(name)) == "io" && validSID(bytes.TrimSpace(value)) {
			return string(bytes.TrimSpace(value))
		}
	}
	return ""
}

var (
	answerNoNode       = newCanned(fasthttp.StatusServiceUnavailable, textNoNode)
	answerPinTableFull = newCanned(fasthttp.StatusServiceUnavailable, textPinTableFull)
)
