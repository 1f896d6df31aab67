package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/sidpin/sidpin/affinity"
	"github.com/sidpin/sidpin/backends"
	"github.com/sidpin/sidpin/configs"
	"github.com/sidpin/sidpin/metrics"
)

// Proxy is what the admin API reads and drives of the running proxy.
type Proxy interface {
	Config() *configs.Config
	Nodes() *backends.Manager
	SetDrain(ctx context.Context, pool, node string, draining bool) error
	Kick(ctx context.Context, sid string) (affinity.Pin, bool, error)
	Migrate(ctx context.Context, pool, node string, rate float64) (affinity.Migration, error)
	Migrations(ctx context.Context) ([]affinity.Migration, error)
	Instances(ctx context.Context) ([]affinity.Instance, error)
	Metrics() *metrics.Metrics
	Tunnels() int
	Draining() bool
}

// Server is the admin listener.
type Server struct {
	proxy    Proxy
	store    affinity.PinTable
	token    []byte // empty: no token (loopback only; the config refuses it elsewhere)
	sessions *sessions
	life     context.Context // the parent of every request's store calls; Shutdown ends it
	stop     context.CancelFunc
	log      *slog.Logger
	history  history // what the page draws
	server   *fasthttp.Server
	metrics  fasthttp.RequestHandler
}

// New returns the admin server; token may be empty.
func New(proxy Proxy, store affinity.PinTable, token string, log *slog.Logger) *Server {
	life, stop := context.WithCancel(context.Background())
	s := &Server{proxy: proxy, store: store, token: []byte(token), log: log, sessions: newSessions(), life: life, stop: stop,
		metrics: fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(proxy.Metrics().Registry, promhttp.HandlerOpts{}))}
	s.server = &fasthttp.Server{
		Handler:               s.serve,
		Name:                  "sidpin-admin",
		NoDefaultServerHeader: true,
		ReadTimeout:           10 * time.Second,
		WriteTimeout:          30 * time.Second,
		IdleTimeout:           60 * time.Second,
		MaxRequestBodySize:    64 << 10,
	}
	go s.runHistory()
	return s
}

// Serve answers on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.server.Serve(ln) }

// Shutdown stops the listener, cancels the store calls in flight and waits for their requests until
// ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stop()
	return s.server.ShutdownWithContext(ctx)
}

// apiTimeout bounds the pin store calls of one admin request.
const apiTimeout = 5 * time.Second

// requestContext bounds the store calls of one request: d, or until Shutdown. That is what the
// fasthttp RequestCtx as a context means (its Done closes at shutdown only), but it cannot be the
// parent: the context package reads the parent from its own goroutine, after the handler returned and
// fasthttp reused the RequestCtx for the next request (a data race).
func (s *Server) requestContext(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.life, d)
}

func (s *Server) serve(ctx *fasthttp.RequestCtx) {
	path := rawPath(ctx)
	switch path { // probes of supervisors and balancers: no token, no Host rule, nothing private
	case "/healthz":
		healthz(ctx)
		return
	case "/readyz":
		s.ready(ctx)
		return
	}
	c := s.identify(ctx)
	if c.open && !loopbackHost(ctx.Host()) {
		s.refuse(ctx, "without admin.token_env this listener answers only requests addressed to a loopback IP or localhost")
		return
	}
	if !s.admit(ctx, c) {
		return
	}
	if path == "/login" && ctx.IsPost() {
		s.login(ctx, c)
		return
	}
	if !c.authorized() {
		s.unauthorized(ctx, path)
		return
	}
	if changesState(ctx) && c.needsCSRF(path) && !c.csrfOK(ctx) {
		s.refuse(ctx, "missing or wrong CSRF token: reload the admin page and try again")
		return
	}
	route(s, ctx, path, c)
}

// admit refuses (403) a state-changing request that a browser says comes from another origin, before
// anything else is looked at: this holds without a token too, and for the sign-in form (login CSRF).
// A valid bearer token is exempt: no other page can make a browser send it.
func (s *Server) admit(ctx *fasthttp.RequestCtx, c caller) bool {
	if !changesState(ctx) || c.bearer {
		return true
	}
	if why := crossOrigin(ctx); why != "" {
		s.refuse(ctx, "cross-origin request refused: "+why)
		return false
	}
	return true
}

func (s *Server) unauthorized(ctx *fasthttp.RequestCtx, path string) {
	if path == "/" {
		s.loginPage(ctx, "")
		return
	}
	ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="sidpin-admin"`)
	writeError(ctx, fasthttp.StatusUnauthorized, "missing or wrong bearer token")
}

// rawPath is the request's path as sent, still escaped: routes split it into segments before
// unescaping, so an escaped "/" stays inside its segment (fasthttp's Path() is already decoded).
func rawPath(ctx *fasthttp.RequestCtx) string {
	if p := ctx.Request.URI().PathOriginal(); len(p) > 0 {
		return string(p)
	}
	return "/"
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	enc := json.NewEncoder(ctx)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		ctx.ResetBody()
		ctx.SetStatusCode(fasthttp.StatusInternalServerError)
		fmt.Fprintf(ctx, `{"error":%q}`, err.Error())
	}
}

func writeError(ctx *fasthttp.RequestCtx, status int, msg string) {
	writeJSON(ctx, status, map[string]string{"error": msg})
}
