package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strings"
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
	Metrics() *metrics.Metrics
	Tunnels() int
}

// Server is the admin listener.
type Server struct {
	proxy   Proxy
	store   affinity.Store
	token   []byte // empty: no token (loopback only; the config refuses it elsewhere)
	log     *slog.Logger
	server  *fasthttp.Server
	metrics fasthttp.RequestHandler
}

// New returns the admin server; token may be empty.
func New(proxy Proxy, store affinity.Store, token string, log *slog.Logger) *Server {
	s := &Server{proxy: proxy, store: store, token: []byte(token), log: log,
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
	return s
}

// Serve answers on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.server.Serve(ln) }

// Shutdown stops the listener and waits for requests in flight until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error { return s.server.ShutdownWithContext(ctx) }

// apiTimeout bounds the pin store calls of one admin request.
const apiTimeout = 5 * time.Second

func (s *Server) serve(ctx *fasthttp.RequestCtx) {
	path := string(ctx.Path())
	if path == "/healthz" {
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("ok\n")
		return
	}
	if path == "/login" && ctx.IsPost() {
		s.login(ctx)
		return
	}
	if !s.authorized(ctx) {
		if path == "/" {
			s.loginPage(ctx, "")
			return
		}
		ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="sidpin-admin"`)
		writeError(ctx, fasthttp.StatusUnauthorized, "missing or wrong bearer token")
		return
	}
	route(s, ctx, path)
}

// authorized compares the bearer token (or the admin page's sign-in cookie) in constant time.
func (s *Server) authorized(ctx *fasthttp.RequestCtx) bool {
	if len(s.token) == 0 {
		return true
	}
	if s.cookieAuthorized(ctx) {
		return true
	}
	const prefix = "Bearer "
	h := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)
	if len(h) < len(prefix) || !strings.EqualFold(string(h[:len(prefix)]), prefix) { // the scheme is case-insensitive
		return false
	}
	return subtle.ConstantTimeCompare(h[len(prefix):], s.token) == 1
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
