package proxy

import (
	"bytes"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/affinity"
	"github.com/sidpin/sidpin/backends"
	"github.com/sidpin/sidpin/configs"
	"github.com/sidpin/sidpin/engineio"
	"github.com/sidpin/sidpin/sessionlog"
	"github.com/sidpin/sidpin/upgrade"
)

// relayOptions are the WebSocket relay's settings from cfg (at start and at each reload).
func relayOptions(cfg *configs.Config, log *slog.Logger) upgrade.Options {
	return upgrade.Options{
		HandshakeTimeout: cfg.Timeouts.Handshake.D(),
		ProbeTimeout:     cfg.Timeouts.UpgradeProbe.D(),
		MaxFrame:         cfg.Limits.MaxBodyBytes,
		TouchEvery:       touchEvery(cfg),
		IdleTimeout:      cfg.Timeouts.WebSocketIdle.D(),
		// The memory pin table answers without waiting: a tunnel's end (its unpin) runs in the loop.
		CloseInLoop: cfg.Store.Kind == configs.StoreMemory,
		Logger:      log,
	}
}

// touchEvery keeps an open WebSocket's pin alive well within the shortest pin lifetime.
func touchEvery(cfg *configs.Config) time.Duration {
	return max(time.Second, cfg.Timeouts.PinSlack.D()/2)
}

// relayUpgrade hands a WebSocket upgrade to the relay, counting what the node did wrong against it.
func (p *Proxy) relayUpgrade(ctx *fasthttp.RequestCtx, node *backends.Node, hooks upgrade.Hooks) {
	cleanUpgradeRequest(&ctx.Request.Header)
	p.addForwarded(ctx)
	hooks.OnNodeFailed = func(err error) { node.ObserveFault(upgradeFault(err), err) }
	err := p.relay.Serve(ctx, upgrade.Target{Addr: node.Addr, Dial: node.DialWebSocket}, hooks)
	if err != nil {
		fault := upgradeFault(err)
		node.ObserveFault(fault, err)
		p.log.Warn("websocket upgrade failed", "pool", node.Pool, "node", node.Name, "fault", fault, "err", err)
	}
}

// upgradeFault reads an error of the WebSocket relay: the node is to blame when it could not be
// reached, gave no answer (a WebSocket's 101 and open frame are bounded by the handshake timeout), or
// answered something that is not HTTP.
func upgradeFault(err error) backends.Fault {
	switch {
	case errors.Is(err, upgrade.ErrNotHTTP):
		return backends.FaultNotHTTP
	case errors.Is(err, upgrade.ErrDial), errors.Is(err, upgrade.ErrNoAnswer):
		return backends.ClassifyHTTP(err, true)
	}
	return backends.NoFault
}

// serveSessionUpgrade relays an established session's WebSocket (a probe, then the upgraded
// session) to its node.
func (p *Proxy) serveSessionUpgrade(ctx *fasthttp.RequestCtx, pool *backends.Pool, r request) {
	if pin, node := p.pinnedNode(ctx, pool, r); node != nil {
		p.sessionRecord(pin) // an instance that relays only the WebSocket of a session has its part too
		p.relayUpgrade(ctx, node, p.probeHooks(pool.Name, r.sid))
	}
}

// serveWebSocketFirst opens a session whose first request is a WebSocket: the sid is learned from the
// node's first frame and pinned before that frame reaches the client.
func (p *Proxy) serveWebSocketFirst(ctx *fasthttp.RequestCtx, pool *backends.Pool, r request) {
	if r.isEngineHandshake() {
		if !p.admitHandshake(ctx, r) {
			return
		}
		defer p.store.ReleasePin()
	}
	node, err := p.pick(pool)
	if err != nil {
		ctx.Error("sidpin: no chat node is available", fasthttp.StatusServiceUnavailable)
		return
	}
	client := clientString(p.clientOfCtx(ctx))
	var sid atomic.Pointer[string]
	var ended sync.Once
	endHandshake := func() { ended.Do(node.EndHandshake) }
	defer func() {
		if !ctx.Hijacked() {
			endHandshake() // refused or failed before a tunnel existed
		}
	}()
	p.relayUpgrade(ctx, node, p.openHooks(pool, node, r, client, &sid, endHandshake))
}

// openHooks follow a WebSocket-first tunnel: its open frame is pinned before the client sees it, and
// its end ends the session.
func (p *Proxy) openHooks(pool *backends.Pool, node *backends.Node, r request, client string, sid *atomic.Pointer[string], endHandshake func()) upgrade.Hooks {
	return upgrade.Hooks{
		OnOpen: func(info engineio.OpenInfo) error {
			defer endHandshake()
			if err := p.pin(pool, node, info, r, client, affinity.TransportWebSocket); err != nil {
				p.log.Error("websocket session not pinned; closing it", "pool", pool.Name, "node", node.Name, "err", err)
				return err
			}
			sid.Store(&info.SID)
			return nil
		},
		OnStart: func(end func()) {
			if s := sid.Load(); s != nil {
				p.tunnels.add(*s, end)
				p.sessions.Get(*s).TunnelOpen()
			}
		},
		OnClose: func(e upgrade.Ended) {
			endHandshake()
			if s := sid.Load(); s != nil {
				p.tunnels.remove(*s)
				p.tunnelEnded(*s, e)
			}
		},
		Touch: func() {
			if s := sid.Load(); s != nil {
				p.store.Touch(*s)
			}
		},
	}
}

// probeHooks follow a probe WebSocket: "5" moves the session onto it, and its end then ends the
// session; a probe that ends before "5" leaves polling as it was.
func (p *Proxy) probeHooks(pool, sid string) upgrade.Hooks {
	var upgraded atomic.Bool
	return upgrade.Hooks{
		OnUpgrade: func() {
			upgraded.Store(true)
			p.metrics.Upgrade(pool, true)
			p.sessions.Get(sid).Upgraded()
			sctx, cancel := p.storeCtx()
			defer cancel()
			_ = p.store.SetTransport(sctx, sid, affinity.TransportUpgraded)
		},
		OnRefused: func(status int, body []byte) {
			p.metrics.Upgrade(pool, false)
			if status == fasthttp.StatusBadRequest && bytes.Contains(body, []byte(engineio.ErrorMessage(engineio.ErrCodeUnknownSID))) {
				p.unpin(sid, sessionlog.EndUnknownAtNode)
			}
		},
		OnStart: func(end func()) { p.tunnels.add(sid, end) },
		OnClose: func(e upgrade.Ended) {
			p.tunnels.remove(sid)
			if upgraded.Load() {
				p.tunnelEnded(sid, e)
				return
			}
			p.metrics.Upgrade(pool, false)
		},
		Touch: func() { p.store.Touch(sid) },
	}
}
