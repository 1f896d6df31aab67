package backends

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/sidpin/sidpin/configs"
)

// probe runs one active check of the node over its transport; nil means healthy.
func (n *Node) probe(h *configs.Health) error { return n.transport.Load().probe(h) }

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
