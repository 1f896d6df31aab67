package admin

import (
	"time"

	"github.com/valyala/fasthttp"
)

// The probes of supervisors and balancers: they need no token, follow no Host rule, and say nothing
// private.

// healthz answers 200 while the process runs.
func healthz(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString("ok\n")
}

// ready answers 503 "draining" once sidpin is shutting down, else 200 "ready": the one thing a
// balancer must act on. The pin table's health is reported beside it but never makes it 503: sidpin
// keeps serving through a Redis outage (its cache, the write-behind), and a check that failed with
// Redis would take every instance out of the balancer at once during a Sentinel failover.
func (s *Server) ready(ctx *fasthttp.RequestCtx) {
	if s.proxy.Draining() {
		writeJSON(ctx, fasthttp.StatusServiceUnavailable, map[string]string{"status": "draining"})
		return
	}
	sctx, cancel := s.requestContext(time.Second)
	defer cancel()
	table := "ok"
	if err := s.store.Ping(sctx); err != nil {
		table = "unavailable"
	}
	writeJSON(ctx, fasthttp.StatusOK, map[string]string{"status": "ready", "pin_table": table})
}
