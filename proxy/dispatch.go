package proxy

import (
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/backends"
	"github.com/sidpin/sidpin/metrics"
)

// ServeHTTP is the whole decision for one request, top down. Each kind of request has its file:
//
//	a malformed target or header     refused here (400), before anything else
//	no pool for host and path        404 here
//	a sid that cannot be one         "Session ID unknown", from sidpin (answers.go)
//	a session's WebSocket            its pinned node (websocket.go)
//	a session's polling request      its pinned node (session.go)
//	a WebSocket without a sid        a new session, pinned from the node's first frame (websocket.go)
//	a polling request without a sid  a new session, pinned from the node's answer (handshake.go)
//	anything else under the pool     a usable node (plain.go)
//
// Answers come back through exchange.go: read whole when small, else streamed, watched for the end
// of the session (closewatch.go).
func (p *Proxy) ServeHTTP(ctx *fasthttp.RequestCtx) {
	p.serveHTTP(ctx)
	p.backToLoop(ctx) // a connection the loop front handed over goes back to it
}

func (p *Proxy) serveHTTP(ctx *fasthttp.RequestCtx) {
	if !inNormalForm(ctx.Request.Header.RequestURI()) {
		ctx.Error("sidpin: the request path is not in normal form (dot segments, //, \\ or encoded . / \\)", fasthttp.StatusBadRequest)
		ctx.SetConnectionClose()
		return
	}
	if !validHeaders(&ctx.Request.Header) {
		ctx.Error("sidpin: a header name is not a token, or a header value holds a control character", fasthttp.StatusBadRequest)
		ctx.SetConnectionClose()
		return
	}
	pool := p.nodes.Current().Match(ctx.Host(), ctx.Path())
	if pool == nil {
		ctx.Error("sidpin: no pool serves this host and path", fasthttp.StatusNotFound)
		return
	}
	r := classify(pool.EngineIOPath, ctx.Path(), ctx.QueryArgs(), isUpgrade(&ctx.Request.Header))
	switch {
	case r.kind == kindBadSID:
		p.answerUnknownSID(ctx, pool, r, metrics.CauseBadSID)
	case r.kind == kindSession && r.upgrade:
		p.serveSessionUpgrade(ctx, pool, r)
	case r.kind == kindSession:
		p.servePolling(ctx, pool, r)
	case r.kind == kindHandshake && r.upgrade:
		p.serveWebSocketFirst(ctx, pool, r)
	case r.kind == kindHandshake:
		p.serveHandshake(ctx, pool, r)
	default:
		p.servePlain(ctx, pool)
	}
	if p.draining.Load() {
		ctx.SetConnectionClose() // shutting down: this connection ends after this answer (set last: relaying resets the header)
	}
	p.observe(ctx, pool, r)
}

// observe records an answered request in the pool's metrics.
func (p *Proxy) observe(ctx *fasthttp.RequestCtx, pool *backends.Pool, r request) {
	kind, status := metrics.KindPlain, ctx.Response.StatusCode()
	switch {
	case r.upgrade || ctx.Hijacked():
		kind = metrics.KindUpgrade
		if ctx.Hijacked() {
			status = fasthttp.StatusSwitchingProtocols
		}
	case r.kind == kindHandshake:
		kind = metrics.KindHandshake
	case r.kind == kindSession || r.kind == kindBadSID:
		kind = metrics.KindSession
	}
	// ctx.Time is when fasthttp began reading the request: no clock read of our own.
	p.metrics.Pool(pool.Name).Observe(kind, status, time.Since(ctx.Time()).Seconds())
}
