package backends

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/configs"
)

// Node is one chat node: its state, and the Transport that reaches it. A reload keeps the Node of a
// pool/name whose URL did not change, with its state and counters (and its Transport, unless the
// transport's settings changed).
type Node struct {
	Pool string
	Name string
	URL  string
	Addr string // host:port to dial
	TLS  bool   // an https:// node
	host string // the URL's host name, for the TLS server name

	weight    atomic.Int64
	cfgDrain  atomic.Bool // drain: true in the config
	rtDrain   atomic.Bool // drained at runtime (admin API), shared through the pin store
	selfDrain atomic.Bool // its health check asks to be drained (health.draining_status)
	removed   atomic.Bool // a reload removed it; it serves its last sessions
	retired   atomic.Bool // a reload removed it and ended its sessions (on_node_removed: close)
	down      atomic.Bool // mirrors health.down for the request path
	failing   atomic.Bool // a passive failure since the last success: ObserveSuccess has work to do
	avoidTill atomic.Int64
	// handshakes counts sessions picked for this node whose pin is not stored yet, so a burst of
	// concurrent handshakes spreads instead of piling onto the node that looked emptiest.
	handshakes atomic.Int64
	changes    atomic.Int64 // state changes since the node was created

	health    health
	check     atomic.Pointer[configs.Health]
	transport atomic.Pointer[Transport]
	stateMu   sync.Mutex // one transition at a time, so each change is reported once
	notify    func(Change)
}

// Do sends req to the node and reads the answer into resp until deadline (see Transport.Do).
func (n *Node) Do(req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time) error {
	return n.transport.Load().Do(req, resp, deadline)
}

// DialWebSocket opens a WebSocket tunnel's connection to the node (see Transport.DialWebSocket).
func (n *Node) DialWebSocket() (net.Conn, error) { return n.transport.Load().DialWebSocket() }

// CloseConnections closes the node's open HTTP connections: requests in flight on them fail at once.
func (n *Node) CloseConnections() int { return n.transport.Load().CloseConnections() }

// BeginHandshake counts a new session on its way to the node; EndHandshake must follow once its
// pin is stored (or the handshake failed).
func (n *Node) BeginHandshake() { n.handshakes.Add(1) }

// EndHandshake ends what BeginHandshake started.
func (n *Node) EndHandshake() { n.handshakes.Add(-1) }

// Weight is the node's share of new sessions relative to its pool's other nodes.
func (n *Node) Weight() int { return int(n.weight.Load()) }

// Draining reports whether the node takes no new sessions by an operator's choice (config or runtime).
func (n *Node) Draining() bool { return n.cfgDrain.Load() || n.rtDrain.Load() || n.selfDrain.Load() }

// Down reports whether the node failed its checks: requests of its sessions must not wait on it.
func (n *Node) Down() bool { return n.down.Load() }

// Gone reports whether the node's sessions are over: it is down, or a reload removed it with
// on_node_removed: close. Nothing is sent to it any more.
func (n *Node) Gone() bool { return n.down.Load() || n.retired.Load() }

// State is the node's state as operators see it.
func (n *Node) State() string {
	switch {
	case n.retired.Load():
		return StateRemoved
	case n.down.Load():
		return StateDown
	case n.removed.Load():
		return StateRemoved
	case n.Draining():
		return StateDraining
	}
	return StateUp
}

// StateChanges is how many times the node's state changed.
func (n *Node) StateChanges() int64 { return n.changes.Load() }

// Health returns what the checks last saw.
func (n *Node) Health() HealthDetail { return n.health.detail() }

// Usable reports whether the node may receive a new session now.
func (n *Node) Usable(now time.Time) bool {
	return !n.down.Load() && !n.removed.Load() && !n.Draining() && now.UnixNano() >= n.avoidTill.Load()
}

// SetRuntimeDrain marks the node draining, or not, at runtime.
func (n *Node) SetRuntimeDrain(v bool, reason string) {
	n.transition(reason, func() { n.rtDrain.Store(v) })
}

// ObserveSuccess clears the passive failures counted so far. It costs one atomic load when there
// were none, as it runs on every proxied request.
func (n *Node) ObserveSuccess() {
	if n.failing.Load() && n.failing.Swap(false) {
		n.observe(nil, time.Now())
	}
}

// avoidAfterRefusal keeps new sessions off a node that refused a connection while its failures add up.
const avoidAfterRefusal = time.Second

// observe feeds one check result to the health state machine. A retired node has no health to track:
// its connections fail because sidpin cut them.
func (n *Node) observe(err error, now time.Time) {
	if n.retired.Load() {
		return
	}
	h := n.check.Load()
	reason := "checks passed"
	if err != nil {
		reason = err.Error()
	}
	n.transition(reason, func() {
		if n.health.observe(err, h.Rise, h.Fall, now) {
			n.down.Store(!n.down.Load())
		}
	})
}

// transition applies change and reports the state change it made, if any, exactly once.
func (n *Node) transition(reason string, change func()) {
	n.stateMu.Lock()
	from := n.State()
	change()
	to := n.State()
	n.stateMu.Unlock()
	if from == to {
		return
	}
	n.changes.Add(1)
	if n.notify != nil {
		n.notify(Change{Node: n, From: from, To: to, Reason: reason, EndSessions: to == StateDown})
	}
}

// Pool is a group of interchangeable nodes serving one host and path prefix.
type Pool struct {
	Name         string
	Host         string // "" matches any host
	PathPrefix   string
	EngineIOPath string // ends with "/"
	Policy       string // the balancing policy's name (configs.BalancePolicies); see Choose
	Nodes        []*Node
	byName       map[string]*Node
	bal          atomic.Pointer[poolBalancer] // made at the first pick (balancer.go)
}

// Node returns the pool's node of that name, or nil.
func (p *Pool) Node(name string) *Node { return p.byName[name] }

// ErrNodeDown means the node failed its checks; no connection is made to it.
var ErrNodeDown = errors.New("backends: the node is down")

// ErrNoNode means no node of the pool can take a new session.
var ErrNoNode = errors.New("backends: no usable node in the pool")

// Set is every pool of a config.
type Set struct {
	Pools []*Pool // most specific match first
}

// build makes the pools of cfg. reuse, when set, returns the existing node to keep for a configured
// one (already updated to the new config), or nil for a new node.
func build(cfg *configs.Config, reuse func(pc *configs.Pool, nc configs.Node) (*Node, error)) (*Set, error) {
	s := &Set{}
	for i := range cfg.Pools {
		pc := &cfg.Pools[i]
		pool := &Pool{
			Name: pc.Name, Host: strings.ToLower(pc.Match.Host), PathPrefix: pc.Match.PathPrefix,
			EngineIOPath: withSlash(pc.EngineIOPath), Policy: pc.Balance, byName: map[string]*Node{},
		}
		for _, nc := range pc.Nodes {
			var n *Node
			var err error
			if reuse != nil {
				if n, err = reuse(pc, nc); err != nil {
					return nil, fmt.Errorf("pool %s node %s: %w", pc.Name, nc.Name, err)
				}
			}
			if n == nil {
				if n, err = newNode(cfg, pc, nc); err != nil {
					return nil, fmt.Errorf("pool %s node %s: %w", pc.Name, nc.Name, err)
				}
			}
			pool.add(n)
		}
		s.Pools = append(s.Pools, pool)
	}
	// Hosted pools before host-less ones, longer prefixes first: the first match is the most specific.
	sort.SliceStable(s.Pools, func(i, j int) bool {
		a, b := s.Pools[i], s.Pools[j]
		if (a.Host != "") != (b.Host != "") {
			return a.Host != ""
		}
		return len(a.PathPrefix) > len(b.PathPrefix)
	})
	return s, nil
}

func (p *Pool) add(n *Node) {
	p.Nodes = append(p.Nodes, n)
	p.byName[n.Name] = n
}

// Pool returns the pool of that name, or nil.
func (s *Set) Pool(name string) *Pool {
	for _, p := range s.Pools {
		if p.Name == name {
			return p
		}
	}
	return nil
}

func withSlash(p string) string {
	if strings.HasSuffix(p, "/") {
		return p
	}
	return p + "/"
}

func newNode(cfg *configs.Config, pc *configs.Pool, nc configs.Node) (*Node, error) {
	u, err := url.Parse(nc.URL)
	if err != nil {
		return nil, err
	}
	https := u.Scheme == "https"
	addr := u.Host
	if u.Port() == "" {
		port := "80"
		if https {
			port = "443"
		}
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	n := &Node{Pool: pc.Name, Name: nc.Name, URL: nc.URL, Addr: addr, TLS: https, host: u.Hostname()}
	n.weight.Store(int64(nc.Weight))
	n.cfgDrain.Store(nc.Drain)
	check := pc.Health
	n.check.Store(&check)
	tr, err := n.transportFor(cfg, pc)
	if err != nil {
		return nil, err
	}
	n.useTransport(tr)
	return n, nil
}

// transportFor builds the node's transport for cfg, or returns nil when the one it has was built
// from the same settings. It changes nothing: a reload builds every node's first, then applies them.
func (n *Node) transportFor(cfg *configs.Config, pc *configs.Pool) (*Transport, error) {
	o, err := transportOptions(cfg, pc, n.TLS, n.host)
	if err != nil {
		return nil, err
	}
	if cur := n.transport.Load(); cur != nil && o.same(cur.opts) {
		return nil, nil
	}
	return newTransport(n.Addr, o, n.Gone), nil
}

// useTransport switches the node to tr (nil: keep the one it has); requests in flight finish on the
// old one. It reports whether it switched.
func (n *Node) useTransport(tr *Transport) bool {
	if tr == nil {
		return false
	}
	n.transport.Store(tr)
	return true
}

// Match returns the pool serving host and path, or nil. host is compared without case and port-aware:
// a pool host without a port matches any port.
func (s *Set) Match(host, path []byte) *Pool {
	for _, p := range s.Pools {
		if p.Host != "" && !hostMatches(p.Host, host) {
			continue
		}
		if strings.HasPrefix(string(path), p.PathPrefix) {
			return p
		}
	}
	return nil
}

func hostMatches(want string, host []byte) bool {
	h := strings.ToLower(string(host))
	if h == want {
		return true
	}
	if strings.Contains(want, ":") {
		return false
	}
	if name, _, err := net.SplitHostPort(h); err == nil {
		return name == want
	}
	return false
}
