package proxy

import (
	"context"
	"time"

	"github.com/sidpin/sidpin/affinity"
	"github.com/sidpin/sidpin/backends"
	"github.com/sidpin/sidpin/configs"
	"github.com/sidpin/sidpin/sessionlog"
)

// syncEvery is how often runtime drain marks are read from the pin store (shared by every instance)
// and removed nodes are checked for sessions left.
const syncEvery = time.Second

// Start runs the nodes' health checks and the node sync until ctx ends.
func (p *Proxy) Start(ctx context.Context) {
	p.nodes.Start(ctx)
	p.startDiscovery(ctx)
	go p.heartbeat(ctx)
	if p.sessions != nil {
		go every(ctx, sessionSweepEvery, p.sweepSessions)
	}
	go every(ctx, syncEvery, func() { p.syncNodes(ctx) })
}

// nodeChanged ends the sessions of a node that went down or was removed with on_node_removed: close:
// its pins are purged (its clients get "Session ID unknown" and reconnect to live nodes) and its
// WebSockets are closed.
func (p *Proxy) nodeChanged(c backends.Change) {
	p.metrics.NodeStateChanged(c.Node.Pool, c.Node.Name, c.To)
	if c.To == backends.StateDraining && c.Reason == backends.ReasonSelfDrain {
		go p.migrateSelfDrained(c.Node.Pool, c.Node.Name) // not under the node's lock: it reads the pin store
	}
	if c.EndSessions {
		// The change may come from a request's failure: the purge (seconds for a big node in Redis)
		// must not hold that request. Its sessions already get "Session ID unknown" from Node.Gone.
		go p.endSessions(c)
	}
}

func (p *Proxy) endSessions(c backends.Change) {
	p.sessions.EndNode(c.Node.Pool, c.Node.Name, sessionlog.EndNodeDown) // before their tunnels' ends
	closed := p.relay.CloseTarget(c.Node.Addr)
	cut := c.Node.CloseConnections() // requests held on it end now, answered "Session ID unknown"
	if f := p.front.Load(); f != nil {
		cut += f.cutNode(c.Node)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*storeTimeout)
	defer cancel()
	now := time.Now()
	n, err := p.store.UnpinNode(ctx, c.Node.Pool, c.Node.Name, func(sid string) { p.gone.add(sid, now) })
	if err != nil {
		p.log.Error("sessions of the node not all unpinned", "pool", c.Node.Pool, "node", c.Node.Name, "unpinned", n, "err", err)
	}
	p.log.Info("sessions of the node ended", "pool", c.Node.Pool, "node", c.Node.Name, "unpinned", n, "websockets_closed", closed, "requests_cut", cut)
}

// syncNodes applies the drain marks of the pin store and forgets removed nodes without sessions.
func (p *Proxy) syncNodes(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, 2*storeTimeout)
	defer cancel()
	drained, err := p.store.Drained(sctx)
	if err != nil {
		p.log.Warn("drain marks unavailable", "err", err)
	} else {
		p.applyDrains(drained)
	}
	counts := map[string]map[string]int{}
	for _, n := range p.nodes.Nodes() {
		if n.State() != backends.StateRemoved {
			continue
		}
		if counts[n.Pool] == nil {
			if counts[n.Pool], err = p.store.CountByNode(sctx, n.Pool); err != nil {
				return
			}
		}
		if counts[n.Pool][n.Name] == 0 {
			p.nodes.Forget(n)
		}
	}
}

func (p *Proxy) applyDrains(drained []affinity.NodeRef) {
	marked := make(map[affinity.NodeRef]bool, len(drained))
	for _, r := range drained {
		marked[r] = true
	}
	for _, n := range p.nodes.Nodes() {
		n.SetRuntimeDrain(marked[affinity.NodeRef{Pool: n.Pool, Node: n.Name}], "drain mark in the pin store")
	}
}

// SetDrain drains a node, or stops draining it, on every instance sharing the pin store.
func (p *Proxy) SetDrain(ctx context.Context, pool, node string, draining bool) error {
	if err := p.store.SetDrain(ctx, affinity.NodeRef{Pool: pool, Node: node}, draining); err != nil {
		return err
	}
	if !draining { // taking a node back stops its migration
		if err := p.StopMigration(ctx, pool, node); err != nil {
			return err
		}
	}
	if n := p.nodes.Node(pool, node); n != nil {
		reason := "undrained by an operator"
		if draining {
			reason = "drained by an operator"
		}
		n.SetRuntimeDrain(draining, reason)
	}
	return nil
}

// Reload applies a new config: pools and nodes change at once (see backends.Manager.Apply), kept
// nodes get a new transport when its settings changed, the WebSocket relay takes the new timeouts,
// and new requests follow the new values. Restart-only fields (configs' reload tags) keep their
// running value and are reported.
func (p *Proxy) Reload(cfg *configs.Config) (backends.Changes, error) {
	p.disc.mu.Lock()
	defer p.disc.mu.Unlock()
	old := p.cfg()
	next := *p.discovered(cfg)
	configs.KeepRestartFields(old, &next)
	ch, err := p.nodes.Apply(&next)
	if err != nil {
		return ch, err
	}
	for _, field := range configs.RestartFieldsChanged(old, cfg) {
		p.log.Warn("config change needs a restart to take effect", "field", field)
	}
	p.relay.Reconfigure(relayOptions(&next, p.log))
	p.conf.Store(&next)
	p.migrateRemoved(&next, ch.Draining)
	return ch, nil
}
