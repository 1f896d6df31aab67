package proxy

import (
	"bytes"
	"context"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/affinity"
	"github.com/sidpin/sidpin/backends"
	"github.com/sidpin/sidpin/metrics"
	"github.com/sidpin/sidpin/sessionlog"
)

// storeTimeout bounds one pin table operation on the request path.
const storeTimeout = 500 * time.Millisecond

// storeCtx bounds one pin table call. The memory table never waits: it gets no deadline, whose
// timer cost 2.7% of a polling handshake's CPU (perf).
func (p *Proxy) storeCtx() (context.Context, context.CancelFunc) {
	if p.memStore {
		return context.Background(), func() {}
	}
	return context.WithTimeout(context.Background(), storeTimeout)
}

// pinnedNode finds the node of the session a request names and keeps the session alive; else it
// answers the request itself ("Session ID unknown" with its cause, or 503 when the pin table fails)
// and returns nil.
func (p *Proxy) pinnedNode(ctx *fasthttp.RequestCtx, pool *backends.Pool, r request) (affinity.Pin, *backends.Node) {
	sctx, cancel := p.storeCtx()
	pin, ok, err := p.store.Lookup(sctx, r.sid)
	cancel()
	if err != nil {
		p.log.Error("pin lookup failed", "sid", r.sid, "err", err)
		ctx.Error("sidpin: the pin table is unavailable", fasthttp.StatusServiceUnavailable)
		return pin, nil
	}
	if node := routeSession(pool, pin, ok, err); node != nil {
		p.store.Touch(r.sid)
		return pin, node
	}
	cause, unpin := p.sessionRefusal(pool, r, pin, ok, time.Now())
	p.answerUnknownSID(ctx, pool, r, cause)
	if unpin {
		p.unpin(r.sid, sessionlog.EndNodeDown)
	}
	return pin, nil
}

// routeSession decides where a session's request goes, on the fasthttp path and in the loop: the
// session's node, or nil when sidpin answers it itself (sessionRefusal says why).
func routeSession(pool *backends.Pool, pin affinity.Pin, ok bool, err error) *backends.Node {
	if err != nil || !ok || pin.Pool != pool.Name {
		return nil
	}
	node := pool.Node(pin.Node)
	if node == nil || node.Down() {
		return nil
	}
	return node
}

// sessionRefusal is the cause of a refused session request, and whether its pin goes.
func (p *Proxy) sessionRefusal(pool *backends.Pool, r request, pin affinity.Pin, ok bool, now time.Time) (string, bool) {
	node := pool.Node(pin.Node)
	switch {
	case !ok && pin.SID != "":
		return metrics.CauseExpired, false
	case !ok && p.gone.has(r.sid, now):
		return metrics.CauseNodeDown, false
	case !ok || pin.Pool != pool.Name:
		return metrics.CauseUnknown, false
	case node == nil:
		return metrics.CauseNodeGone, false
	}
	return metrics.CauseNodeDown, true // node.Down(): never hang a client on a dead node
}

// servePolling forwards a polling request of an established session to its node and passes the
// answer on, watching it for the end of the session.
func (p *Proxy) servePolling(ctx *fasthttp.RequestCtx, pool *backends.Pool, r request) {
	pin, node := p.pinnedNode(ctx, pool, r)
	if node == nil {
		return
	}
	closing := ctx.IsPost() && postCloses(ctx.PostBody(), pin.EIO, r.jsonp)
	cleanRequest(&ctx.Request.Header)
	p.addForwarded(ctx)
	up, err := p.send(ctx, exchange{node: node, deadline: time.Now().Add(pin.TTL)})
	if err != nil {
		if node.Gone() { // the node went down (or was retired) under the request: the session went with it
			ctx.Response.Reset()
			p.answerUnknownSID(ctx, pool, r, metrics.CauseNodeDown)
			p.unpin(r.sid, sessionlog.EndNodeDown)
		}
		return
	}
	// Counted before the answer's rules, which may end the session (and write its line).
	p.sessionRequest(pin, int64(len(ctx.PostBody())), max(int64(up.Header.ContentLength()), 0))
	p.relaySessionAnswer(ctx, up, pool, pin, r, closing)
}

// relaySessionAnswer passes the node's answer on, watching it for the signs that the session is over:
// the node does not know the sid (400 code 1; code 3, polling after an upgrade, is expected), or a
// close packet went either way. A long answer is watched as it streams, and its end unpins.
func (p *Proxy) relaySessionAnswer(ctx *fasthttp.RequestCtx, up *fasthttp.Response, pool *backends.Pool, pin affinity.Pin, r request, closing bool) {
	sid := r.sid
	switch status := up.StatusCode(); {
	case status == fasthttp.StatusBadRequest:
		relayAnswer(ctx, up, relay{})
		if bytes.Contains(ctx.Response.Body(), []byte(`"code":1,`)) {
			p.metrics.SessionUnknown(pool.Name, metrics.CauseNodeSaid)
			p.unpin(sid, sessionlog.EndUnknownAtNode)
		}
	case status != fasthttp.StatusOK:
		relayAnswer(ctx, up, relay{})
	case closing:
		relayAnswer(ctx, up, relay{})
		p.unpin(sid, sessionlog.EndClientClose)
	case ctx.IsGet():
		encoding := contentCoding(up.Header.ContentEncoding())
		w := newCloseWatch(pin.EIO, r.jsonp, encoding)
		relayAnswer(ctx, up, relay{watch: w, done: func(complete bool) {
			if complete && w.closed() {
				p.unpin(sid, sessionlog.EndNodeClose)
			}
		}})
	default:
		relayAnswer(ctx, up, relay{})
	}
}
