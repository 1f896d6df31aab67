package backends

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/sidpin/sidpin/configs"
)

// Manager owns the live pools: it runs the nodes' health checks, reports their state changes and
// applies reloaded configs. Readers take the current Set with Set(); a reload swaps it atomically.
type Manager struct {
	log      *slog.Logger
	onChange func(Change)
	cur      atomic.Pointer[Set]

	mu     sync.Mutex // serialises Apply, Forget and Start
	cfg    *configs.Config
	ctx    context.Context // the checks' lifetime, from Start; nil before
	checks map[*Node]context.CancelFunc
}

// NewManager builds the pools of cfg. onChange (may be nil) hears every node state change, after
// the manager logged it.
func NewManager(cfg *configs.Config, log *slog.Logger, onChange func(Change)) (*Manager, error) {
	m := &Manager{log: log, onChange: onChange, cfg: cfg, checks: map[*Node]context.CancelFunc{}}
	set, err := build(cfg, nil)
	if err != nil {
		return nil, err
	}
	for _, n := range set.nodes() {
		n.notify = m.changed
	}
	m.cur.Store(set)
	return m, nil
}

// Current returns the pools in force.
func (m *Manager) Current() *Set { return m.cur.Load() }

// Start runs the health checks of every node until ctx ends.
func (m *Manager) Start(ctx context.Context) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ctx = ctx
	for _, n := range m.cur.Load().nodes() {
		m.startChecks(n)
	}
}

func (m *Manager) startChecks(n *Node) {
	if m.ctx == nil || m.checks[n] != nil {
		return
	}
	ctx, cancel := context.WithCancel(m.ctx)
	m.checks[n] = cancel
	go n.runChecks(ctx)
}

func (m *Manager) stopChecks(n *Node) {
	if cancel := m.checks[n]; cancel != nil {
		cancel()
		delete(m.checks, n)
	}
}

func (m *Manager) changed(c Change) {
	m.log.Info("node state changed", "pool", c.Node.Pool, "node", c.Node.Name, "from", c.From, "to", c.To, "reason", c.Reason)
	if m.onChange != nil {
		m.onChange(c)
	}
}

// Changes summarises what a reload did, by "pool/node".
type Changes struct {
	Added, Updated, Draining, Closed []string
}

// Empty reports whether the reload changed no node.
func (c Changes) Empty() bool {
	return len(c.Added)+len(c.Updated)+len(c.Draining)+len(c.Closed) == 0
}

// Apply switches to cfg. A node is the same across configs when its pool, name and URL are: it keeps
// its health, counters and sessions, and takes the new weight, drain flag and checks, and a new
// Transport when the transport's settings (TLS, dial timeout, limits) changed; requests in flight
// finish on the old one. A node
// missing from cfg follows its pool's on_node_removed: drain keeps it, removed, for its sessions;
// close ends them (a Change with EndSessions). Nodes of a pool that is gone are always closed.
func (m *Manager) Apply(cfg *configs.Config) (Changes, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.cur.Load()
	var ch Changes
	kept := map[*Node]bool{}
	var updates []func() // what kept nodes take from cfg, applied only once the whole set is built
	set, err := build(cfg, func(pc *configs.Pool, nc configs.Node) (*Node, error) {
		n := old.node(pc.Name, nc.Name)
		if n == nil || n.URL != nc.URL {
			return nil, nil
		}
		tr, err := n.transportFor(cfg, pc)
		if err != nil {
			return nil, err
		}
		kept[n] = true
		updates = append(updates, func() {
			updated := n.update(pc, nc)
			if n.useTransport(tr) || updated {
				ch.Updated = append(ch.Updated, n.key())
			}
		})
		return n, nil
	})
	if err != nil {
		return Changes{}, fmt.Errorf("backends: %w", err) // nothing changed
	}
	for _, update := range updates {
		update()
	}
	for _, n := range set.nodes() {
		if !kept[n] {
			n.notify = m.changed
			m.startChecks(n)
			ch.Added = append(ch.Added, n.key())
		}
	}
	var closed []*Node
	for _, n := range old.nodes() {
		if kept[n] {
			continue
		}
		pool := set.Pool(n.Pool)
		// migrate drains it too: the proxy then ends its sessions at the pool's pace.
		if policy := removalPolicy(cfg, n.Pool); pool != nil && pool.byName[n.Name] == nil && policy != configs.RemovedClose {
			pool.add(n)
			n.transition("removed from the config: draining its sessions", func() { n.removed.Store(true) })
			ch.Draining = append(ch.Draining, n.key())
			continue
		}
		m.stopChecks(n)
		closed = append(closed, n)
		ch.Closed = append(ch.Closed, n.key())
	}
	m.cfg = cfg
	m.cur.Store(set)
	for _, n := range closed {
		from := n.State()
		n.retired.Store(true)
		m.changed(Change{Node: n, From: from, To: StateRemoved, Reason: "removed from the config: closing its sessions", EndSessions: true})
	}
	return ch, nil
}

func removalPolicy(cfg *configs.Config, pool string) string {
	for _, p := range cfg.Pools {
		if p.Name == pool {
			return p.OnNodeRemoved
		}
	}
	return configs.RemovedClose
}

// update takes a kept node to its new config and reports whether anything changed.
func (n *Node) update(pc *configs.Pool, nc configs.Node) bool {
	changed := n.Weight() != nc.Weight || *n.check.Load() != pc.Health || n.cfgDrain.Load() != nc.Drain || n.removed.Load()
	n.weight.Store(int64(nc.Weight))
	check := pc.Health
	n.check.Store(&check)
	n.transition("config reloaded", func() {
		n.cfgDrain.Store(nc.Drain)
		n.removed.Store(false)
	})
	return changed
}

// Forget drops a removed node (one whose last session ended) from the pools.
func (m *Manager) Forget(n *Node) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.cur.Load()
	if !n.removed.Load() || old.node(n.Pool, n.Name) != n {
		return
	}
	set := &Set{}
	for _, p := range old.Pools {
		np := &Pool{Name: p.Name, Host: p.Host, PathPrefix: p.PathPrefix, EngineIOPath: p.EngineIOPath,
			Policy: p.Policy, byName: map[string]*Node{}}
		for _, pn := range p.Nodes {
			if pn != n {
				np.add(pn)
			}
		}
		set.Pools = append(set.Pools, np)
	}
	m.stopChecks(n)
	m.cur.Store(set)
	m.log.Info("removed node forgotten: its last session ended", "pool", n.Pool, "node", n.Name)
}

// Node returns the node of that pool and name in force, or nil.
func (m *Manager) Node(pool, name string) *Node { return m.cur.Load().node(pool, name) }

// Nodes returns every node in force, pool by pool.
func (m *Manager) Nodes() []*Node { return m.cur.Load().nodes() }

func (s *Set) node(pool, name string) *Node {
	if p := s.Pool(pool); p != nil {
		return p.byName[name]
	}
	return nil
}

func (s *Set) nodes() []*Node {
	var out []*Node
	for _, p := range s.Pools {
		out = append(out, p.Nodes...)
	}
	return out
}

func (n *Node) key() string { return n.Pool + "/" + n.Name }
