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
	"github.com/sidpin/sidpin/internal/certfile"
	"github.com/sidpin/sidpin/internal/proxyproto"
	"github.com/sidpin/sidpin/metrics"
	"github.com/sidpin/sidpin/sessionlog"
	"github.com/sidpin/sidpin/upgrade"
)

// Proxy is sidpin's client-facing server.
type Proxy struct {
	conf     atomic.Pointer[configs.Config] // swapped by Reload
	nodes    *backends.Manager
	store    affinity.Store
	relay    *upgrade.Relay
	log      *slog.Logger
	server   *fasthttp.Server
	tls      bool
	metrics  *metrics.Metrics
	gone     *tombstones // sessions ended with their node, for the metrics' "node_down" cause
	memStore bool        // the pin table is the memory one: its calls never wait
	// sessions records the sessions relayed here and writes a line as each ends; nil: log.sessions off.
	sessions *sessionlog.Log
	tunnels  sessionTunnels
	limits   *clientlimits.Limiter
	// listener is the client listener Serve drains at shutdown; draining makes every answer close
	// its connection.
	listener atomic.Pointer[drainingListener]
	draining atomic.Bool
	// front serves plain-TCP clients in the event loops (Linux); nil: fasthttp serves them all.
	front atomic.Pointer[front]
	disc  discovering            // pools whose nodes come from DNS
	migr  migrations             // paced migrations this instance runs
	peers peers                  // the listener's peers that speak for clients (configs.Clients)
	addr  atomic.Pointer[string] // the client listener's address, once Serve has it (heartbeats name the instance by it)
	// certs is the client listener's certificate (tls), loaded again when its files change, until
	// life ends (Shutdown).
	certs *certfile.Reloader
	life  context.Context
	stop  context.CancelFunc
}

// Option changes how New builds the proxy.
type Option func(*options)

type options struct {
	shared   *clientlimits.Shared
	sessions *slog.Logger
}

// WithSessionLog writes one line per ended session to out (log.sessions).
func WithSessionLog(out *slog.Logger) Option { return func(o *options) { o.sessions = out } }

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
	memStore := cfg.Store.Kind == configs.StoreMemory // store.kind takes a restart: fixed for the process
	p := &Proxy{store: m.InstrumentStore(store, !memStore), log: log, tls: cfg.TLS.Enabled(), metrics: m,
		gone: newTombstones(100_000, 5*time.Minute), memStore: memStore}
	p.conf.Store(cfg)
	if o.sessions != nil {
		p.sessions = sessionlog.New(o.sessions)
	}
	p.peers = newPeers(cfg.Clients)
	p.life, p.stop = context.WithCancel(context.Background())
	if p.tls {
		certs, err := certfile.New(cfg.TLS.CertFile, cfg.TLS.KeyFile, log, m.CertReload)
		if err != nil {
			return nil, fmt.Errorf("proxy: tls: %w", err)
		}
		p.certs = certs
	}
	p.newDiscovering(cfg)
	p.limits = clientlimits.New(cfg.Limits, o.shared, log)
	nodes, err := backends.NewManager(cfg, log, p.nodeChanged)
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	p.nodes = nodes
	store.OnEvict(p.evicted)
	m.Collect(metrics.Sources{Nodes: nodes.Nodes, Store: store,
		Tunnels: func() int { return p.relay.Count() }, Relayed: func() (uint64, uint64) { return p.relay.Relayed() },
		Limits: p.limits.Stats, Migrations: store.Migrations})
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

// Serve accepts client connections on ln until Shutdown. An address over its connection cap
// (limits.per_client) gets a 429, or a reset under TLS, before anything of it is read.
//
// On Linux, plain-TCP clients are served by the loop front (loop_front_linux.go): established
// sessions' polling requests in the event loops, everything else by the fasthttp server, to which
// the loop hands the connection.
func (p *Proxy) Serve(ln net.Listener) error {
	addr := ln.Addr().String()
	p.addr.Store(&addr)
	if !p.tls {
		f, err := newFront(p, ln)
		if err != nil {
			return err
		}
		if f != nil {
			p.front.Store(f)
			// fasthttp serves the connections handed to it; it listens on nothing, but Serve makes
			// its Shutdown wait for them.
			go func() { _ = p.server.Serve(newParkedListener(ln.Addr())) }()
			return f.serve()
		}
	}
	refuse := clientlimits.Refuse429
	if p.tls {
		refuse = clientlimits.RefuseClose
	}
	if len(p.peers.proxyProtocol) > 0 { // the client's address is read first: limits count clients, not the balancer
		ln = proxyproto.NewListener(ln, p.peers.proxyProtocol.Contains, p.cfg().Timeouts.ClientRead.D())
	}
	dl := newDrainingListener(ln)
	p.listener.Store(dl)
	ln = p.limits.Listener(dl, refuse)
	if p.tls {
		// New handshakes get the pair in use; a renewal replaces it without touching open connections.
		ln = tls.NewListener(ln, &tls.Config{GetCertificate: p.certs.GetCertificate, MinVersion: tls.VersionTLS12})
		go p.certs.Run(p.life)
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
	p.stopMigrations()
	p.stop()
	select { // still serving, while /readyz tells the balancer to send new connections elsewhere
	case <-time.After(p.cfg().Timeouts.ShutdownDelay.D()):
	case <-ctx.Done():
	}
	frontDone := make(chan error, 1)
	if f := p.front.Load(); f != nil {
		go func() { frontDone <- f.shutdown(ctx) }()
	} else {
		frontDone <- nil
		if dl := p.listener.Load(); dl != nil {
			dl.drain()
		}
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
	err := errors.Join(p.server.ShutdownWithContext(ctx), <-frontDone)
	<-closed
	p.limits.Close()
	p.sessions.EndAll(sessionlog.EndShutdown) // what this instance still relayed ends with it
	return err
}

// Pins is the pin table as the proxy uses it: timed and counted in the metrics, for the admin API too.
func (p *Proxy) Pins() affinity.PinTable { return p.store }

// Draining reports whether the proxy is shutting down.
func (p *Proxy) Draining() bool { return p.draining.Load() }

// Tunnels is the number of open WebSocket tunnels.
func (p *Proxy) Tunnels() int { return p.relay.Count() }

// slogPrintf adapts slog to fasthttp's Printf logger.
type slogPrintf struct{ log *slog.Logger }

func (l slogPrintf) Printf(format string, args ...any) {
	l.log.Warn(fmt.Sprintf(format, args...), "component", "fasthttp")
}
