package backends

import (
	"errors"
	"fmt"
	"io"
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

// Node is one chat node and the HTTP client that talks to it. A reload keeps the Node of a pool/name
// whose URL did not change, with its connections, state and counters.
type Node struct {
	Pool string
	Name string
	URL  string
	Addr string // host:port to dial
	TLS  bool
	// Client sends polling and plain requests to the node. It never retries: a polling GET can take
	// packets off the node, so a request that may have reached it must not be sent twice.
	Client *fasthttp.HostClient

	weight    atomic.Int64
	cfgDrain  atomic.Bool // drain: true in the config
	rtDrain   atomic.Bool // drained at runtime (admin API), shared through the pin store
	removed   atomic.Bool // a reload removed it; it serves its last sessions
	retired   atomic.Bool // a reload removed it and ended its sessions (on_node_removed: close)
	down      atomic.Bool // mirrors health.down for the request path
	failing   atomic.Bool // a passive failure since the last success: ObserveSuccess has work to do
	avoidTill atomic.Int64
	// handshakes counts sessions picked for this node whose pin is not stored yet, so a burst of
	// concurrent handshakes spreads instead of piling onto the node that looked emptiest.
	handshakes atomic.Int64
	changes    atomic.Int64 // state changes since the node was created

	health  health
	conns   connSet // the traffic's open connections
	check   atomic.Pointer[configs.Health]
	prober  *fasthttp.HostClient // active HTTP checks, apart from the traffic's connections
	stateMu sync.Mutex           // one transition at a time, so each change is reported once
	notify  func(Change)
}

// BeginHandshake counts a new session on its way to the node; EndHandshake must follow once its
// pin is stored (or the handshake failed).
func (n *Node) BeginHandshake() { n.handshakes.Add(1) }

// EndHandshake ends what BeginHandshake started.
func (n *Node) EndHandshake() { n.handshakes.Add(-1) }

// Weight is the node's share of new sessions relative to its pool's other nodes.
func (n *Node) Weight() int { return int(n.weight.Load()) }

// Draining reports whether the node takes no new sessions by an operator's choice (config or runtime).
func (n *Node) Draining() bool { return n.cfgDrain.Load() || n.rtDrain.Load() }

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

// Options tune the node clients.
type Options struct {
	MaxConnsPerNode int
	DialTimeout     time.Duration
	ResponseTimeout time.Duration // upper bound of one request; held polls need pingInterval+pingTimeout
	MaxHeaderBytes  int
}

// New builds the pools of cfg with new nodes (a Manager reuses nodes across reloads).
func New(cfg *configs.Config) (*Set, error) {
	return build(cfg, nil)
}

func clientOptions(cfg *configs.Config) Options {
	return Options{
		MaxConnsPerNode: cfg.Limits.MaxConnections,
		DialTimeout:     cfg.Timeouts.UpstreamDial.D(),
		ResponseTimeout: cfg.Timeouts.UpstreamResponse.D(),
		MaxHeaderBytes:  cfg.Limits.MaxHeaderBytes,
	}
}

// build makes the pools of cfg. reuse, when set, returns the existing node to keep for a configured
// one (already updated to the new config), or nil for a new node.
func build(cfg *configs.Config, reuse func(pc *configs.Pool, nc configs.Node) *Node) (*Set, error) {
	opts := clientOptions(cfg)
	s := &Set{}
	for i := range cfg.Pools {
		pc := &cfg.Pools[i]
		pool := &Pool{
			Name: pc.Name, Host: strings.ToLower(pc.Match.Host), PathPrefix: pc.Match.PathPrefix,
			EngineIOPath: withSlash(pc.EngineIOPath), Policy: pc.Balance, byName: map[string]*Node{},
		}
		for _, nc := range pc.Nodes {
			var n *Node
			if reuse != nil {
				n = reuse(pc, nc)
			}
			if n == nil {
				var err error
				if n, err = newNode(pc, nc, opts); err != nil {
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

func newNode(pc *configs.Pool, nc configs.Node, o Options) (*Node, error) {
	u, err := url.Parse(nc.URL)
	if err != nil {
		return nil, err
	}
	tls := u.Scheme == "https"
	addr := u.Host
	if u.Port() == "" {
		port := "80"
		if tls {
			port = "443"
		}
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	n := &Node{Pool: pc.Name, Name: nc.Name, URL: nc.URL, Addr: addr, TLS: tls}
	n.weight.Store(int64(nc.Weight))
	n.cfgDrain.Store(nc.Drain)
	check := pc.Health
	n.check.Store(&check)
	n.prober = newProber(addr, tls, o.DialTimeout)
	dialTimeout := o.DialTimeout
	n.Client = &fasthttp.HostClient{
		Addr:  addr,
		IsTLS: tls,
		Dial: func(a string) (net.Conn, error) {
			if n.Gone() {
				return nil, ErrNodeDown // a retry of a request cut by CloseConnections ends here
			}
			c, err := fasthttp.DialTimeout(a, dialTimeout)
			if err != nil {
				return nil, err
			}
			return n.conns.track(c), nil
		},
		MaxConns:           o.MaxConnsPerNode,
		MaxConnWaitTimeout: time.Second,
		// Below Node's 5 s keepAliveTimeout, so an idle connection is dropped here before the node
		// closes it under a request.
		MaxIdleConnDuration:       idleConnTimeout,
		ReadTimeout:               o.ResponseTimeout,
		WriteTimeout:              10 * time.Second,
		MaxIdemponentCallAttempts: 2,
		RetryIfErr: func(req *fasthttp.Request, attempts int, err error) (bool, bool) {
			if n.Gone() {
				// sidpin cut the connection itself (the node went down or was retired): the node did
				// get the request, and a second copy of a held poll would be an overlapping GET.
				return false, false
			}
			return retryUnansweredOnce(req, attempts, err)
		},
		DisablePathNormalizing:        true,
		DisableHeaderNamesNormalizing: true,
		NoDefaultUserAgentHeader:      true,
		ReadBufferSize:                o.MaxHeaderBytes,
	}
	return n, nil
}

// idleConnTimeout is how long a kept-alive connection to a node may sit unused.
const idleConnTimeout = 4 * time.Second

// retryUnansweredOnce sends a request again, once, only when the node closed the connection before
// answering a single byte: a kept-alive connection it was closing as the request went out, so the
// request was never processed. Anything that got part of an answer, or timed out, is never sent
// twice: a polling GET can take packets off the node.
func retryUnansweredOnce(_ *fasthttp.Request, attempts int, err error) (resetTimeout, retry bool) {
	return false, attempts == 1 && errors.Is(err, io.EOF)
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
