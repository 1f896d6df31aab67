package proxy

import (
	"bytes"
	"context"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/affinity"
	"github.com/sidpin/sidpin/backends"
	"github.com/sidpin/sidpin/engineio"
	"github.com/sidpin/sidpin/metrics"
	"github.com/sidpin/sidpin/upgrade"
)

// storeTimeout bounds one pin table operation on the request path.
const storeTimeout = 500 * time.Millisecond

func storeCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), storeTimeout)
}

// serveSession routes a request carrying a sid to its pinned node, or answers "Session ID unknown".
func (p *Proxy) serveSession(ctx *fasthttp.RequestCtx, pool *backends.Pool, r request) {
	sctx, cancel := storeCtx()
	pin, ok, err := p.store.Lookup(sctx, r.sid)
	cancel()
	if err != nil {
		p.log.Error("pin lookup failed", "sid", r.sid, "err", err)
		ctx.Error("sidpin: the pin table is unavailable", fasthttp.StatusServiceUnavailable)
		return
	}
	node := pool.Node(pin.Node)
	switch {
	case !ok && pin.SID != "":
		p.answerUnknownSID(ctx, pool, r, metrics.CauseExpired)
		return
	case !ok && p.gone.has(r.sid, time.Now()):
		p.answerUnknownSID(ctx, pool, r, metrics.CauseNodeDown)
		return
	case !ok || pin.Pool != pool.Name:
		p.answerUnknownSID(ctx, pool, r, metrics.CauseUnknown)
		return
	case node == nil:
		p.answerUnknownSID(ctx, pool, r, metrics.CauseNodeGone)
		return
	case node.Down():
		// Never hang a client on a dead node: it reconnects, and lands on a live one.
		p.answerUnknownSID(ctx, pool, r, metrics.CauseNodeDown)
		p.unpin(r.sid, "node down")
		return
	}
	p.store.Touch(r.sid)
	if r.upgrade {
		p.relayUpgrade(ctx, node, p.probeHooks(pool.Name, r.sid))
		return
	}
	closing := ctx.IsPost() && postCloses(ctx.PostBody(), pin.EIO, r.jsonp)
	cleanRequest(&ctx.Request.Header)
	addForwarded(&ctx.Request.Header, clientIP(ctx), p.tls)
	up, err := p.send(ctx, exchange{node: node, deadline: time.Now().Add(pin.TTL)})
	if err != nil {
		if node.Gone() { // the node went down (or was retired) under the request: the session went with it
			ctx.Response.Reset()
			p.answerUnknownSID(ctx, pool, r, metrics.CauseNodeDown)
			p.unpin(r.sid, "node down")
		}
		return
	}
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
			p.unpin(sid, "the node does not know the session")
		}
	case status != fasthttp.StatusOK:
		relayAnswer(ctx, up, relay{})
	case closing:
		relayAnswer(ctx, up, relay{})
		p.unpin(sid, "the client closed the session")
	case ctx.IsGet():
		encoding := contentCoding(up.Header.ContentEncoding())
		w := newCloseWatch(pin.EIO, r.jsonp, encoding)
		relayAnswer(ctx, up, relay{watch: w, done: func(complete bool) {
			if complete && w.closed() {
				p.unpin(sid, "the node closed the session")
			}
		}})
	default:
		relayAnswer(ctx, up, relay{})
	}
}

func (p *Proxy) unpin(sid, why string) {
	sctx, cancel := storeCtx()
	defer cancel()
	if _, err := p.store.Unpin(sctx, sid); err != nil {
		p.log.Warn("unpin failed", "sid", sid, "err", err)
		return
	}
	p.log.Debug("session unpinned", "sid", sid, "why", why)
}

// probeHooks follow a probe WebSocket: "5" moves the session onto it, and its end then ends the
// session; a probe that ends before "5" leaves polling as it was.
func (p *Proxy) probeHooks(pool, sid string) upgrade.Hooks {
	var upgraded atomic.Bool
	return upgrade.Hooks{
		OnUpgrade: func() {
			upgraded.Store(true)
			p.metrics.Upgrade(pool, true)
			sctx, cancel := storeCtx()
			defer cancel()
			_ = p.store.SetTransport(sctx, sid, affinity.TransportUpgraded)
		},
		OnRefused: func(status int, body []byte) {
			p.metrics.Upgrade(pool, false)
			if status == fasthttp.StatusBadRequest && bytes.Contains(body, []byte(engineio.ErrorMessage(engineio.ErrCodeUnknownSID))) {
				p.unpin(sid, "node does not know the sid")
			}
		},
		OnStart: func(end func()) { p.tunnels.add(sid, end) },
		OnClose: func() {
			p.tunnels.remove(sid)
			if upgraded.Load() {
				p.unpin(sid, "websocket closed")
				return
			}
			p.metrics.Upgrade(pool, false)
		},
		Touch: func() { p.store.Touch(sid) },
	}
}
