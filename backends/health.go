package backends

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/sidpin/sidpin/configs"
)

// probe runs one active check of the node over its transport; nil means healthy, and draining that
// the node asks to be drained (health.draining_status).
func (n *Node) probe(h *configs.Health) (draining bool, err error) {
	return n.transport.Load().probe(h)
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
		draining, err := n.probe(h)
		n.observe(err, time.Now())
		if err == nil {
			n.setSelfDrain(draining)
		}
	}
}

// ReasonSelfDrain is the reason of the change of a node whose health check asks to be drained.
const ReasonSelfDrain = "the node's health check asks to be drained"

// setSelfDrain follows what the node's health check says of its draining.
func (n *Node) setSelfDrain(v bool) {
	if n.selfDrain.Load() == v {
		return
	}
	reason := ReasonSelfDrain
	if !v {
		reason = "the node's health check no longer asks to be drained"
	}
	n.transition(reason, func() { n.selfDrain.Store(v) })
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
