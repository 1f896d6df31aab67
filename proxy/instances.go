package proxy

import (
	"context"
	"os"
	"time"

	"github.com/sidpin/sidpin/affinity"
)

// Every instance records itself in the pin store, so that each one's page lists the live ones.

// heartbeatEvery is how often an instance records itself in the pin store; instanceAlive is how
// long a record counts as alive (three heartbeats).
const (
	heartbeatEvery = 5 * time.Second
	instanceAlive  = 3 * heartbeatEvery
)

// heartbeat records this instance (its tunnels and the sessions it knows) until ctx ends, so that
// every instance's page lists the live ones.
func (p *Proxy) heartbeat(ctx context.Context) {
	host, _ := os.Hostname()
	for {
		id := host + " " + p.cfg().Listen
		if a := p.addr.Load(); a != nil {
			id = host + " " + *a
		}
		sessions := p.store.LocalTransportCounts().Total()
		sctx, cancel := context.WithTimeout(ctx, 2*storeTimeout)
		err := p.store.Heartbeat(sctx, affinity.Instance{ID: id, Tunnels: p.relay.Count(), Sessions: sessions, Updated: time.Now()})
		cancel()
		if err != nil {
			p.log.Debug("heartbeat not recorded", "err", err)
		}
		if !sleepCtx(ctx, heartbeatEvery) {
			return
		}
	}
}

// Instances are the sidpin instances alive, as their heartbeats in the pin store say.
func (p *Proxy) Instances(ctx context.Context) ([]affinity.Instance, error) {
	return p.store.Instances(ctx, instanceAlive)
}
