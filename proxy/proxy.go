package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/affinity"
	"github.com/sidpin/sidpin/backends"
	"github.com/sidpin/sidpin/clientlimits"
	"github.com/sidpin/sidpin/configs"
	"github.com/sidpin/sidpin/engineio"
	"github.com/sidpin/sidpin/internal/eioanswer"
	"github.com/sidpin/sidpin/metrics"
	"github.com/sidpin/sidpin/upgrade"
)

// Proxy is sidpin's client-facing server.
type Proxy struct {
	conf    atomic.Pointer[configs.Config] // swapped by Reload
	nodes   *backends.Manager
	store   affinity.Store
	relay   *upgrade.Relay
	log     *slog.Logger
	server  *fasthttp.Server
	tls     bool
	metrics *metrics.Metrics
	gone    *tombstones // sessions ended with their node, for the metrics' "node_down" cause
	tunnels sessionTunnels
	limits  *clientlimits.Limiter
	// listener is the client listener Serve drains at shutdown; draining makes every answer close
	// its connection.
	listener atomic.Pointer[drainingListener]
	draining atomic.Bool
}

// Option changes how New builds the proxy.
type Option func(*options)

type options struct{ shared *clientlimits.Shared }

// WithSharedLimits counts limits.per_client across every instance that shares the Redis behind s.
func WithSharedLimits(s *clientlimits.Shared) Option { return func(o *options) { o.shared = s } }

// New builds the proxy for cfg over store.
func New(cfg *configs.Config, store affinity.Store, log *slog.Logger, opts ...Option) (*Proxy, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	m := metrics.New()
	// The memory table answers in well under a microsecond: timing it would cost more than it tells.
	timed := cfg.Store.Kind != configs.StoreMemory
	p := &Proxy{store: m.InstrumentStore(store, timed), log: log, tls: cfg.TLS.Enabled(), metrics: m,
		gone: newTombstones(100_000, 5*time.Minute)}
	p.conf.Store(cfg)
	p.limits = clientlimits.New(cfg.Limits, o.shared, log)
	nodes, err := backends.NewManager(cfg, log, p.nodeChanged)
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	p.nodes = nodes
	store.OnEvict(p.evicted)
	m.Collect(metrics.Sources{Nodes: nodes.Nodes, Store: store,
		Tunnels: func() int { return p.relay.Count() }, Relayed: func() (uint64, uint64) { return p.relay.Relayed() },
		Limits: p.limits.Stats})
	p.relay = upgrade.NewRelay(relayOptions(cfg, log))
	p.server = &fasthttp.Server{
		Handler:                      p.ServeHTTP,
		Name:                         "sidpin",
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		DisablePreParseMultipartForm: true,
		ReadBufferSize:               cfg.Limits.MaxHeaderBytes,
		MaxRequestBodySize:           cfg.Limits.MaxBodyBytes,
		Concurrency:                  cfg.Limits.MaxConnections,
		ReadTimeout:                  cfg.Timeouts.ClientRead.D(),
		IdleTimeout:                  cfg.Timeouts.ClientIdle.D(),
		CloseOnShutdown:              true,
		// Idle keep-alive clients (most long-pollers between polls) and hijacked WebSockets give their
		// read buffers back; a hijacked connection is then read directly, not through a buffer.
		ReduceMemoryUsage: true,
		// The relay owns hijacked connections: its upgrade callback returns at once and the request
		// context is freed while the tunnel runs.
		KeepHijackedConns: true,
		ErrorHandler:      answerBadRequest,
		Logger:            slogPrintf{log},
	}
	return p, nil
}

// cfg is the config in force.
func (p *Proxy) cfg() *configs.Config { return p.conf.Load() }

// Config is the config in force (the last one loaded).
func (p *Proxy) Config() *configs.Config { return p.cfg() }

// Metrics is the proxy's Prometheus metrics.
func (p *Proxy) Metrics() *metrics.Metrics { return p.metrics }

// Nodes is the proxy's pools and nodes.
func (p *Proxy) Nodes() *backends.Manager { return p.nodes }

// answerBadRequest answers requests fasthttp could not read, saying which limit they broke.
func answerBadRequest(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		ctx.Error("sidpin: request body larger than limits.max_body_bytes", fasthttp.StatusRequestEntityTooLarge)
	case errors.As(err, &small), errors.Is(err, fasthttp.ErrSmallReadBuffer):
		ctx.Error("sidpin: request headers larger than limits.max_header_bytes", fasthttp.StatusRequestHeaderFieldsTooLarge)
	default:
		ctx.Error("sidpin: malformed request", fasthttp.StatusBadRequest)
	}
}

// relayOptions are the WebSocket relay's settings from cfg (at start and at each reload).
func relayOptions(cfg *configs.Config, log *slog.Logger) upgrade.Options {
	return upgrade.Options{
		HandshakeTimeout: cfg.Timeouts.Handshake.D(),
		ProbeTimeout:     cfg.Timeouts.UpgradeProbe.D(),
		MaxFrame:         cfg.Limits.MaxBodyBytes,
		TouchEvery:       touchEvery(cfg),
		IdleTimeout:      cfg.Timeouts.WebSocketIdle.D(),
		Logger:           log,
	}
}

// touchEvery keeps an open WebSocket's pin alive well within the shortest pin lifetime.
func touchEvery(cfg *configs.Config) time.Duration {
	return max(time.Second, cfg.Timeouts.PinSlack.D()/2)
}

// Serve accepts client connections on ln until Shutdown. An address over its connection cap
// (limits.per_client) gets a 429, or a reset under TLS, before anything of it is read.
func (p *Proxy) Serve(ln net.Listener) error {
	refuse := clientlimits.Refuse429
	if p.tls {
		refuse = clientlimits.RefuseClose
	}
	dl := newDrainingListener(ln)
	p.listener.Store(dl)
	ln = p.limits.Listener(dl, refuse)
	if p.tls {
		cert, err := tls.LoadX509KeyPair(p.cfg().TLS.CertFile, p.cfg().TLS.KeyFile)
		if err != nil {
			return fmt.Errorf("proxy: tls: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	return p.server.Serve(ln)
}

// Shutdown drains the proxy: first, for timeouts.shutdown_delay, it serves as usual while Draining
// (and so /readyz) says it is going away and every answer closes its connection, so that a balancer
// stops sending new ones; then it stops accepting (taking what the kernel queued first), closes the
// WebSocket tunnels with 1001 (going away), and answers every request begun (held polls included)
// until ctx ends. Each keep-alive connection is closed only between requests: its next answer
// carries Connection: close, and idle ones are closed once connections accepted during the drain
// have had their first request read.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.draining.Store(true)
	select { // still serving, while /readyz tells the balancer to send new connections elsewhere
	case <-time.After(p.cfg().Timeouts.ShutdownDelay.D()):
	case <-ctx.Done():
	}
	if dl := p.listener.Load(); dl != nil {
		dl.drain()
	}
	closed := make(chan struct{})
	go func() {
		p.relay.Shutdown()
		close(closed)
	}()
	select {
	case <-time.After(firstRequestWait):
	case <-ctx.Done():
	}
	err := p.server.ShutdownWithContext(ctx)
	<-closed
	p.limits.Close()
	return err
}

// Pins is the pin table as the proxy uses it: timed and counted in the metrics, for the admin API too.
func (p *Proxy) Pins() affinity.PinTable { return p.store }

// Draining reports whether the proxy is shutting down.
func (p *Proxy) Draining() bool { return p.draining.Load() }

// Tunnels is the number of open WebSocket tunnels.
func (p *Proxy) Tunnels() int { return p.relay.Count() }

// ServeHTTP handles one request: find the pool, classify, route.
func (p *Proxy) ServeHTTP(ctx *fasthttp.RequestCtx) {
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
	pool := p.nodes.Set().Match(ctx.Host(), ctx.Path())
	if pool == nil {
		ctx.Error("sidpin: no pool serves this host and path", fasthttp.StatusNotFound)
		return
	}
	r := classify(pool.EngineIOPath, ctx.Path(), ctx.QueryArgs(), &ctx.Request.Header)
	switch r.kind {
	case kindSession:
		p.serveSession(ctx, pool, r)
	case kindHandshake:
		p.serveHandshake(ctx, pool, r)
	case kindBadSID:
		p.answerUnknownSID(ctx, pool, r, metrics.CauseBadSID)
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

// answerUnknownSID answers "Session ID unknown" and counts why.
func (p *Proxy) answerUnknownSID(ctx *fasthttp.RequestCtx, pool *backends.Pool, r request, cause string) {
	p.metrics.SessionUnknown(pool.Name, cause)
	writeUnknownSID(ctx, r)
}

// writeUnknownSID answers exactly like an Engine.IO server that does not know the sid: JSON 400 code 1
// (JSONP requests too, as Node does), or a plain-text 400 that closes a WebSocket upgrade.
func writeUnknownSID(ctx *fasthttp.RequestCtx, r request) {
	eioanswer.Write(ctx, engineio.ErrCodeUnknownSID, r.upgrade)
}

// servePlain proxies a request that is not Engine.IO (a page, an asset, a health check) to a node.
func (p *Proxy) servePlain(ctx *fasthttp.RequestCtx, pool *backends.Pool) {
	node, err := pool.ChoosePlain()
	if err != nil {
		ctx.Error("sidpin: no chat node is available", fasthttp.StatusServiceUnavailable)
		return
	}
	if isUpgrade(&ctx.Request.Header) {
		p.relayUpgrade(ctx, node, upgrade.Hooks{})
		return
	}
	_ = p.forward(ctx, exchange{node: node, deadline: time.Now().Add(p.cfg().Timeouts.UpstreamResponse.D())})
}

func clientIP(ctx *fasthttp.RequestCtx) []byte {
	return []byte(ctx.RemoteIP().String())
}

// relayUpgrade hands a WebSocket upgrade to the relay, counting what the node did wrong against it.
func (p *Proxy) relayUpgrade(ctx *fasthttp.RequestCtx, node *backends.Node, hooks upgrade.Hooks) {
	cleanUpgradeRequest(&ctx.Request.Header)
	addForwarded(&ctx.Request.Header, clientIP(ctx), p.tls)
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

// slogPrintf adapts slog to fasthttp's Printf logger.
type slogPrintf struct{ log *slog.Logger }

func (l slogPrintf) Printf(format string, args ...any) {
	l.log.Warn(fmt.Sprintf(format, args...), "component", "fasthttp")
}
