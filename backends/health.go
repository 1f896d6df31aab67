package backends

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/configs"
)

// newProber returns the client of a node's active HTTP checks: its own single connection, so a check
// neither waits behind proxied traffic nor fails because the traffic filled the node's pool.
func newProber(addr string, tls bool, dialTimeout time.Duration) *fasthttp.HostClient {
	return &fasthttp.HostClient{
		Addr:                          addr,
		IsTLS:                         tls,
		Dial:                          func(a string) (net.Conn, error) { return fasthttp.DialTimeout(a, dialTimeout) },
		MaxConns:                      1,
		MaxIdleConnDuration:           idleConnTimeout,
		MaxIdemponentCallAttempts:     1,
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: true,
		MaxResponseBodySize:           64 << 10,
	}
}

// probe runs one active check of the node; nil means healthy.
func (n *Node) probe(h *configs.Health) error {
	if h.Kind == configs.HealthTCP {
		c, err := net.DialTimeout("tcp", n.Addr, h.Timeout.D())
		if err != nil {
			return fmt.Errorf("tcp check: %w", err)
		}
		return c.Close()
	}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(h.Path)
	req.SetHost(n.Addr)
	req.Header.Set("User-Agent", "sidpin-health-check")
	resp.SkipBody = true
	if err := n.prober.DoTimeout(req, resp, h.Timeout.D()); err != nil {
		return fmt.Errorf("http check %s: %w", h.Path, err)
	}
	if resp.StatusCode() != h.ExpectStatus {
		return fmt.Errorf("http check %s: status %d, want %d", h.Path, resp.StatusCode(), h.ExpectStatus)
	}
	return nil
}

// runChecks checks the node every interval until ctx ends. The config is re-read each round, so a
// reload changes the checks without restarting them. With kind none only passive checks move the
// node: a node they took down is tried again after the interval.
func (n *Node) runChecks(ctx context.Context) {
	for {
		h := n.check.Load()
		// Up to 10% jitter keeps the checks of many nodes (and instances) from beating in step.
		wait := h.Interval.D() + rand.N(h.Interval.D()/10+1)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if h.Kind == configs.HealthNone {
			n.retryAfterCooldown(h.Interval.D())
			continue
		}
		n.observe(n.probe(h), time.Now())
	}
}

func (n *Node) retryAfterCooldown(cooldown time.Duration) {
	down, since := n.health.downSince()
	if !down || time.Since(since) < cooldown {
		return
	}
	n.transition("no active checks: trying the node again", func() {
		if n.health.force(false, time.Now()) {
			n.down.Store(false)
		}
	})
}
