//go:build linux

package proxy

import (
	"bytes"
	"context"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/affinity"
	"github.com/sidpin/sidpin/backends"
	"github.com/sidpin/sidpin/configs"
	"github.com/sidpin/sidpin/engineio"
	"github.com/sidpin/sidpin/internal/httpwire"
	"github.com/sidpin/sidpin/metrics"
	"github.com/sidpin/sidpin/sessionlog"
)

// serveOne serves the request at the start of data. used is how many bytes of data it took; more
// says whether the connection is free for the next request at once (nothing in flight, nothing
// waiting, not handed over, not closed).
//
// The loop serves the polling requests of established sessions, and answers itself what it would
// answer on the fasthttp path (a malformed request, no pool, a sid that cannot be one or that no
// node holds). Everything else goes to fasthttp with the connection: handshakes (the new session's
// pin is written before the answer goes on, which may wait on Redis), upgrades, plain requests,
// and the unusual (HTTP/1.0, chunked or Expect bodies, absolute-form targets, encoded paths, the
// admin page's cookie, TLS nodes).
func (c *clientConn) serveOne(data []byte) (used int, more bool) {
	s := c.s
	req := &s.req
	req.Reset()
	n, err := httpwire.ParseRequest(data, s.wireLimits(), req)
	switch {
	case err == httpwire.ErrNeedMore:
		c.keep(data)
		return 0, false
	case err != nil:
		c.answerCanned(malformedAnswer(err), true)
		return 0, false
	}
	if !inNormalForm(req.Target) {
		c.answerCanned(answerNotNormal, true)
		return 0, false
	}
	if !loopServable(req) {
		c.handOff(data)
		return 0, false
	}
	bodyLen := max(req.ContentLength, 0)
	if bodyLen > int64(s.p.cfg().Limits.MaxBodyBytes) {
		c.answerCanned(answerBodyTooLarge, true)
		return 0, false
	}
	// An answer of sidpin's own keeps the connection when the body is here (it is skipped) and the
	// client did not ask to close. closeAfter is set only once the answer begins: it stops the
	// connection from serving, and a request may first wait for its pin.
	whole := int64(len(data)-n) >= bodyLen
	closing := !whole || !req.KeepAlive()
	pool := s.p.nodes.Current().Match(req.Host, req.Path)
	if pool == nil {
		c.answerCanned(answerNoPool, closing)
		return consumed(n, bodyLen, whole), true
	}
	s.args.ParseBytes(req.Query)
	r := classify(pool.EngineIOPath, req.Path, &s.args, isWebSocketUpgrade(req))
	switch {
	case r.kind == kindBadSID && !r.upgrade:
		c.answerUnknownSID(pool, r, metrics.CauseBadSID, closing)
		return consumed(n, bodyLen, whole), true
	case c.servesHandshake(req, pool, r, bodyLen, len(data) > n):
		return c.serveHandshake(data, n, pool, r)
	case r.kind != kindSession || r.upgrade || !isGetOrPost(req.Method):
		c.handOff(data)
		return 0, false
	}
	return c.serveSession(data, n, bodyLen, pool, r)
}

// consumed is how much of the read bytes a request answered by sidpin took: all of it with its
// body, or everything when the connection closes anyway.
func consumed(head int, body int64, whole bool) int {
	if !whole {
		return head
	}
	return head + int(body)
}

// loopServable reports whether the loop may serve req itself; the rest goes to fasthttp.
func loopServable(req *httpwire.Request) bool {
	return req.Minor == 1 && req.Authority == nil && !req.Chunked && req.Get("Expect") == nil &&
		bytes.IndexByte(req.Path, '%') < 0 && !hasAdminCookie(req)
}

func hasAdminCookie(req *httpwire.Request) bool {
	for i := range req.Len() {
		f := req.Field(i)
		if equalFoldString(f.Name, "cookie") && bytes.Contains(f.Value, []byte(configs.AdminCookie)) {
			return true
		}
	}
	return false
}

func isWebSocketUpgrade(req *httpwire.Request) bool {
	return req.ConnUpgrade && bytes.EqualFold(req.Upgrade, []byte("websocket"))
}

func isGetOrPost(method []byte) bool { return string(method) == "GET" || string(method) == "POST" }

func equalFoldString(b []byte, s string) bool { return bytes.EqualFold(b, []byte(s)) }

// lookupResult is a pin looked up away from the loop.
type lookupResult struct {
	sid string
	pin affinity.Pin
	ok  bool
	err error
}

// serveSession routes a polling request of an established session to its node.
func (c *clientConn) serveSession(data []byte, head int, bodyLen int64, pool *backends.Pool, r request) (int, bool) {
	s := c.s
	pin, ok, err, done := c.lookupPin(r.sid)
	if !done {
		c.keep(data)
		c.lookupAway(r.sid)
		return 0, false
	}
	node := routeSession(pool, pin, ok, err)
	whole := int64(len(data)-head) >= bodyLen
	if node == nil {
		c.answerSessionRefused(pool, r, pin, ok, err, !whole || !s.req.KeepAlive())
		return consumed(head, bodyLen, whole), true
	}
	ep, loopable := node.Endpoint()
	if !loopable {
		c.handOff(data)
		return 0, false
	}
	c.closeAfter = !s.req.KeepAlive()
	s.p.store.Touch(r.sid)
	avail := min(bodyLen, int64(len(data)-head))
	x := s.newExchange(c, pool, node, ep, pin, r)
	x.begin(&s.req, data[head:head+int(avail)], bodyLen-avail)
	return head + int(avail), true
}

// lookupPin answers from the result looked up away from the loop for this request, or from the
// table when it can answer without I/O (done is false when it cannot).
func (c *clientConn) lookupPin(sid string) (pin affinity.Pin, ok bool, err error, done bool) {
	if lr := c.lookup; lr != nil && lr.sid == sid {
		c.lookup = nil
		return lr.pin, lr.ok, lr.err, true
	}
	pin, ok, done = c.s.p.store.LookupNow(sid)
	return pin, ok, nil, done
}

// lookupAway looks sid up where waiting is allowed, then serves the kept request again.
func (c *clientConn) lookupAway(sid string) {
	lr := &lookupResult{sid: sid}
	c.away(func() {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		lr.pin, lr.ok, lr.err = c.s.p.store.Lookup(ctx, sid)
		cancel()
	}, func(open bool) {
		if open {
			c.lookup = lr
		}
	})
}

// away runs work where waiting is allowed (one goroutine) while the kept request waits; back in the
// loop, back hears whether the connection is still open, and the request is served again with what
// work found.
func (c *clientConn) away(work func(), back func(open bool)) {
	c.wait(phaseLookup)
	go func() {
		work()
		c.s.loop.Locked(func() {
			if c.closed {
				back(false)
				return
			}
			back(true)
			c.wait(phaseIdle)
			c.serve(c.in)
			c.dropAdmission() // not taken: the request was not served again as a handshake
			if !c.closed && c.x == nil && c.unread {
				c.readRequests()
			}
		})
	}()
}

// answerSessionRefused answers a session request routeSession refused, as pinnedNode does.
func (c *clientConn) answerSessionRefused(pool *backends.Pool, r request, pin affinity.Pin, ok bool, err error, closing bool) {
	p := c.s.p
	if err != nil {
		p.log.Error("pin lookup failed", "sid", r.sid, "err", err)
		c.answerCanned(answerPinTableDown, closing)
		return
	}
	cause, unpin := p.sessionRefusal(pool, r, pin, ok, time.Now())
	if unpin {
		p.unpinAsync(r.sid, sessionlog.EndNodeDown)
	}
	c.answerUnknownSID(pool, r, cause, closing)
}

// answerUnknownSID answers "Session ID unknown" like an Engine.IO server, and counts why.
func (c *clientConn) answerUnknownSID(pool *backends.Pool, r request, cause string, closing bool) {
	c.s.p.metrics.SessionUnknown(pool.Name, cause)
	c.s.p.metrics.Pool(pool.Name).Observe(metrics.KindSession, fasthttp.StatusBadRequest, 0)
	c.answerCanned(answerUnknownSID, closing)
}

// unpinAsync unpins sid without holding the caller: the loop must not wait on Redis.
func (p *Proxy) unpinAsync(sid string, cause sessionlog.Cause) {
	if p.pinsInLoop() {
		p.unpin(sid, cause)
		return
	}
	go p.unpin(sid, cause)
}

// The answers the loop makes itself, byte for byte those of the fasthttp path.
var (
	answerNotNormal    = newCanned(fasthttp.StatusBadRequest, "sidpin: the request path is not in normal form (dot segments, //, \\ or encoded . / \\)")
	answerNoPool       = newCanned(fasthttp.StatusNotFound, "sidpin: no pool serves this host and path")
	answerBodyTooLarge = newCanned(fasthttp.StatusRequestEntityTooLarge, "sidpin: request body larger than limits.max_body_bytes")
	answerHeadTooLarge = newCanned(fasthttp.StatusRequestHeaderFieldsTooLarge, "sidpin: request headers larger than limits.max_header_bytes")
	answerMalformed    = newCanned(fasthttp.StatusBadRequest, "sidpin: malformed request")
	answerPinTableDown = newCanned(fasthttp.StatusServiceUnavailable, "sidpin: the pin table is unavailable")
	answerUnknownSID   = newCannedBody(engineio.ErrorStatus(engineio.ErrCodeUnknownSID), "application/json",
		engineio.ErrorBody(engineio.ErrCodeUnknownSID))
	answerGatewayTimeout = newCanned(fasthttp.StatusGatewayTimeout, "sidpin: the chat node did not answer in time")
	answerBadGateway     = newCanned(fasthttp.StatusBadGateway, "sidpin: the chat node cannot be reached")
	answerNoFreeConns    = newCanned(fasthttp.StatusServiceUnavailable, "sidpin: no free connection to the chat node")
)

// malformedAnswer answers a request the parser refused, saying which limit it broke.
func malformedAnswer(err error) canned {
	if httpwire.Status(err) == fasthttp.StatusRequestHeaderFieldsTooLarge {
		return answerHeadTooLarge
	}
	return answerMalformed
}
