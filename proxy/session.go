package proxy

import (
	"bytes"
	"context"
	"errors"
	"sync"
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

// serveHandshake opens a new session on a picked node and pins the sid from the node's answer before
// the answer is released to the client.
func (p *Proxy) serveHandshake(ctx *fasthttp.RequestCtx, pool *backends.Pool, r request) {
	if r.upgrade {
		p.serveWebSocketFirst(ctx, pool, r)
		return
	}
	cleanRequest(&ctx.Request.Header)
	addForwarded(&ctx.Request.Header, clientIP(ctx), p.tls)
	node, ok := p.pickAndSend(ctx, pool)
	if node != nil {
		defer node.EndHandshake()
	}
	if !ok || !ctx.IsGet() || r.transport != "polling" || ctx.Response.StatusCode() != fasthttp.StatusOK {
		return // refused handshakes, served client files and errors pass through unpinned
	}
	info, found := learnSID(&ctx.Response)
	if !found {
		p.log.Debug("handshake answer without a sid", "pool", pool.Name, "node", node.Name)
		return
	}
	if err := p.pin(pool, node, info, r, ctx.RemoteAddr().String(), affinity.TransportPolling); err != nil {
		p.log.Error("session not pinned; handshake refused", "sid", info.SID, "node", node.Name, "err", err)
		ctx.Response.Reset()
		ctx.Error("sidpin: cannot pin the session", fasthttp.StatusServiceUnavailable)
	}
}

// pickAndSend forwards a sid-less request to a node chosen for a new session. A node that cannot be
// reached never saw the request, so one other node is tried.
func (p *Proxy) pickAndSend(ctx *fasthttp.RequestCtx, pool *backends.Pool) (*backends.Node, bool) {
	deadline := time.Now().Add(p.cfg().Timeouts.UpstreamResponse.D())
	for attempt := 0; attempt < 2; attempt++ {
		node, err := p.pick(pool)
		if err != nil {
			ctx.Error("sidpin: no chat node is available", fasthttp.StatusServiceUnavailable)
			return nil, false
		}
		err = node.Client.DoDeadline(&ctx.Request, &ctx.Response, deadline)
		if err == nil {
			node.ObserveSuccess()
			cleanResponse(&ctx.Response.Header)
			return node, true
		}
		node.EndHandshake()
		p.answerUpstreamError(ctx, node, err)
		if !isDialError(err) {
			return nil, false
		}
	}
	return nil, false
}

func (p *Proxy) pick(pool *backends.Pool) (*backends.Node, error) {
	sctx, cancel := storeCtx()
	defer cancel()
	counts, err := p.store.CountByNode(sctx, pool.Name)
	if err != nil {
		p.log.Warn("session counts unavailable; balancing without them", "pool", pool.Name, "err", err)
	}
	node, err := pool.Pick(counts, time.Now())
	if err == nil {
		node.BeginHandshake() // the caller ends it once the pin is stored or the handshake failed
	}
	return node, err
}

// learnSID reads the open packet from a polling handshake answer in any encoding, decompressing it
// when the node compressed it; the io cookie is the fallback.
func learnSID(resp *fasthttp.Response) (engineio.OpenInfo, bool) {
	body := resp.Body()
	var err error
	switch string(bytes.ToLower(resp.Header.ContentEncoding())) {
	case "gzip":
		body, err = resp.BodyGunzip()
	case "deflate":
		body, err = resp.BodyInflate()
	}
	if err == nil {
		if info, err := engineio.SniffHandshake(body); err == nil {
			return info, true
		}
	}
	var c fasthttp.Cookie
	c.SetKey("io")
	if resp.Header.Cookie(&c) && validSID(c.Value()) {
		return engineio.OpenInfo{SID: string(c.Value())}, true
	}
	return engineio.OpenInfo{}, false
}

// pin stores the session's pin, with a lifetime from the node's own ping values.
func (p *Proxy) pin(pool *backends.Pool, node *backends.Node, info engineio.OpenInfo, r request, client, transport string) error {
	cfg := p.cfg()
	ttl := cfg.Timeouts.UpstreamResponse.D()
	if info.PingInterval > 0 {
		ttl = time.Duration(info.PingInterval+info.PingTimeout) * time.Millisecond
	}
	ttl += cfg.Timeouts.PinSlack.D()
	sctx, cancel := storeCtx()
	defer cancel()
	cur, created, err := p.store.Pin(sctx, affinity.Pin{
		SID: info.SID, Pool: pool.Name, Node: node.Name, Transport: transport, EIO: r.eio, ClientAddr: client, TTL: ttl,
	})
	switch {
	case err != nil:
		return err
	case !created && cur.Node != node.Name:
		return errors.New("the node handed out a sid pinned to another node")
	case created:
		p.metrics.Handshake(pool.Name, node.Name, transport)
	}
	p.log.Debug("session pinned", "sid", info.SID, "pool", pool.Name, "node", node.Name, "transport", transport)
	return nil
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
	closing := ctx.IsPost() && carriesClose(ctx.PostBody(), pin.EIO, r.jsonp)
	if p.forward(ctx, node, time.Now().Add(pin.TTL)) != nil {
		if node.Gone() { // the node went down (or was retired) under the request: the session went with it
			ctx.Response.Reset()
			p.answerUnknownSID(ctx, pool, r, metrics.CauseNodeDown)
			p.unpin(r.sid, "node down")
		}
		return
	}
	if p.sessionEnded(ctx, pin, r, closing) {
		if ctx.Response.StatusCode() == fasthttp.StatusBadRequest {
			p.metrics.SessionUnknown(pool.Name, metrics.CauseNodeSaid)
		}
		p.unpin(r.sid, "session ended")
	}
}

// sessionEnded reads a node's answer for the signs that the session is over: the node does not know
// the sid, or a close packet went either way.
func (p *Proxy) sessionEnded(ctx *fasthttp.RequestCtx, pin affinity.Pin, r request, closing bool) bool {
	status := ctx.Response.StatusCode()
	switch {
	case status == fasthttp.StatusBadRequest:
		// 400 code 3 after an upgrade is expected for polling and must not end the session.
		return bytes.Contains(ctx.Response.Body(), []byte(`"code":1,`))
	case status != fasthttp.StatusOK:
		return false
	case closing:
		return true
	case ctx.IsGet() && len(ctx.Response.Header.ContentEncoding()) == 0:
		return carriesClose(ctx.Response.Body(), pin.EIO, r.jsonp)
	}
	return false
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

// serveWebSocketFirst opens a session whose first request is a WebSocket: the sid is learned from the
// node's first frame and pinned before that frame reaches the client.
func (p *Proxy) serveWebSocketFirst(ctx *fasthttp.RequestCtx, pool *backends.Pool, r request) {
	node, err := p.pick(pool)
	if err != nil {
		ctx.Error("sidpin: no chat node is available", fasthttp.StatusServiceUnavailable)
		return
	}
	client := ctx.RemoteAddr().String()
	var sid atomic.Pointer[string]
	var ended sync.Once
	endHandshake := func() { ended.Do(node.EndHandshake) }
	defer func() {
		if !ctx.Hijacked() {
			endHandshake() // refused or failed before a tunnel existed
		}
	}()
	p.relayUpgrade(ctx, node, upgrade.Hooks{
		OnOpen: func(info engineio.OpenInfo) error {
			defer endHandshake()
			if err := p.pin(pool, node, info, r, client, affinity.TransportWebSocket); err != nil {
				return err
			}
			sid.Store(&info.SID)
			return nil
		},
		OnStart: func(end func()) {
			if s := sid.Load(); s != nil {
				p.tunnels.add(*s, end)
			}
		},
		OnClose: func() {
			endHandshake()
			if s := sid.Load(); s != nil {
				p.tunnels.remove(*s)
				p.unpin(*s, "websocket closed")
			}
		},
		Touch: func() {
			if s := sid.Load(); s != nil {
				p.store.Touch(*s)
			}
		},
	})
}

// carriesClose reports whether a polling payload holds a close packet (v4: a record "1"; v3: a
// packet "1"; JSONP POSTs are form-encoded).
func carriesClose(body []byte, eio int, jsonp bool) bool {
	if jsonp {
		if payload, err := engineio.DecodeJSONPPost(body); err == nil {
			body = payload
		} else if payload, err := engineio.UnwrapJSONP(body); err == nil {
			body = payload
		}
	}
	if eio != 3 {
		for rec := range bytes.SplitSeq(body, []byte{0x1e}) {
			if len(rec) == 1 && rec[0] == '1' {
				return true
			}
		}
		return false
	}
	found := false
	check := func(p engineio.Packet) error {
		found = found || (p.Type == engineio.Close && !p.Binary)
		return nil
	}
	if len(body) > 0 && body[0] <= 1 {
		_ = engineio.DecodePayloadV3Binary(body, check)
	} else {
		_ = engineio.DecodePayloadV3String(body, check)
	}
	return found
}
