package backends

import (
	"context"
	"time"

	"github.com/sidpin/sidpin/configs"
)

// Balancer chooses the node of a new session among a pool's usable nodes. Each pool has its own
// Balancer, made by its policy's constructor and used by many goroutines at once.
//
// A pool's nodes are fixed for its life (a reload builds new pools; it keeps the Node objects, not
// the pools), so a Balancer may keep state per node index.
type Balancer interface {
	// Pick returns one of c's usable nodes, or nil when none is usable.
	Pick(c Candidates) *Node
}

// Candidates is what a Balancer chooses among: the pool's nodes, in config order, of which only
// the usable ones may be chosen, and their load. It is passed by value and holds nothing a pick
// must allocate.
type Candidates struct {
	nodes    []*Node
	now      time.Time
	sessions map[string]int // live sessions per node name; nil when unknown
}

// Len is the number of nodes of the pool, usable or not.
func (c Candidates) Len() int { return len(c.nodes) }

// Node returns node i, 0 <= i < Len().
func (c Candidates) Node(i int) *Node { return c.nodes[i] }

// Usable reports whether node i may take a new session: up, not draining, not removed, not avoided
// after a refused connection.
func (c Candidates) Usable(i int) bool { return c.nodes[i].Usable(c.now) }

// Load is node i's live sessions (from the pin table, so it holds across sidpin instances) plus its
// handshakes in flight, per unit of weight.
func (c Candidates) Load(i int) float64 {
	n := c.nodes[i]
	return float64(c.sessions[n.Name]+int(n.handshakes.Load())) / float64(n.Weight())
}

// policy is a balancing policy as registered by name.
type policy struct {
	name string
	new  func() Balancer
	// ignoresLoad says Pick never calls Candidates.Load: Choose then spares the pin table the
	// session count (a Redis round trip per handshake).
	ignoresLoad bool
}

// policies holds every balancing policy by name; each registers itself from its own file. The names
// are configs.BalancePolicies (a test checks both lists agree).
var policies = map[string]policy{}

func registerPolicy(p policy) { policies[p.name] = p }

// policyFor returns the policy of that name; an unknown name (only a Pool built in code can have one,
// the config is validated) gets the default.
func policyFor(name string) policy {
	if p, ok := policies[name]; ok {
		return p
	}
	return policies[configs.BalanceLeastSessions]
}

// poolBalancer is a pool's Balancer with what Choose needs to know of its policy.
type poolBalancer struct {
	Balancer
	readsLoad bool
}

// balancer returns the pool's Balancer, made at its first pick: pools are built in more than one
// place (a reload, Forget), and their nodes are only final once the pool is published.
func (p *Pool) balancer() *poolBalancer {
	if b := p.bal.Load(); b != nil {
		return b
	}
	pol := policyFor(p.Policy)
	p.bal.CompareAndSwap(nil, &poolBalancer{Balancer: pol.new(), readsLoad: !pol.ignoresLoad})
	return p.bal.Load()
}

// SessionCounter tells the live sessions of each node of a pool. sidpin's pin table
// (affinity.Store) is one: in Redis it counts the sessions of every instance.
type SessionCounter interface {
	CountByNode(ctx context.Context, pool string) (map[string]int, error)
}

// Choose picks the node of a new session by the pool's policy, among its usable nodes (up, not
// draining, not removed, not avoided after a refused connection), and counts a handshake in flight
// on it: the caller must call node.EndHandshake once the session's pin is stored or the handshake
// failed.
//
// counts (nil: none) is asked for the pool's session counts, under ctx, when the policy reads loads.
// When it fails, Choose balances on the handshakes in flight alone and returns its error as
// countsErr, for the caller to log: the choice stands. err is ErrNoNode when no node is usable.
func (p *Pool) Choose(ctx context.Context, counts SessionCounter) (node *Node, countsErr, err error) {
	b := p.balancer()
	var sessions map[string]int
	if b.readsLoad && counts != nil {
		sessions, countsErr = counts.CountByNode(ctx, p.Name)
	}
	if node = b.Pick(Candidates{nodes: p.Nodes, now: time.Now(), sessions: sessions}); node == nil {
		return nil, countsErr, ErrNoNode
	}
	node.BeginHandshake()
	return node, countsErr, nil
}

// ChoosePlain picks a node for a request that opens no session (a page, an asset, a health route):
// the pool's policy without session counts, and no handshake counted. ErrNoNode when none is usable.
func (p *Pool) ChoosePlain() (*Node, error) {
	return p.pick(nil, time.Now())
}

func (p *Pool) pick(sessions map[string]int, now time.Time) (*Node, error) {
	if n := p.balancer().Pick(Candidates{nodes: p.Nodes, now: now, sessions: sessions}); n != nil {
		return n, nil
	}
	return nil, ErrNoNode
}
