package backends

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/configs"
)

// Node is one chat node and the HTTP client that talks to it.
type Node struct {
	Pool   string
	Name   string
	Addr   string // host:port to dial
	TLS    bool
	Weight int
	// Client sends polling and plain requests to the node. It never retries: a polling GET can take
	// packets off the node, so a request that may have reached it must not be sent twice.
	Client *fasthttp.HostClient

	draining atomic.Bool
	downTill atomic.Int64 // unix nanos; passive health: the node failed a dial or request until then
	// handshakes counts sessions picked for this node whose pin is not stored yet, so a burst of
	// concurrent handshakes spreads instead of piling onto the node that looked emptiest.
	handshakes atomic.Int64
}

// BeginHandshake counts a new session on its way to the node; EndHandshake must follow once its
// pin is stored (or the handshake failed).
func (n *Node) BeginHandshake() { n.handshakes.Add(1) }

// EndHandshake ends what BeginHandshake started.
func (n *Node) EndHandshake() { n.handshakes.Add(-1) }

// Draining reports whether the node takes no new sessions.
func (n *Node) Draining() bool { return n.draining.Load() }

// SetDraining marks the node draining (no new sessions) or not.
func (n *Node) SetDraining(v bool) { n.draining.Store(v) }

// Usable reports whether the node may receive a new session now.
func (n *Node) Usable(now time.Time) bool {
	return !n.draining.Load() && now.UnixNano() >= n.downTill.Load()
}

// MarkFailed takes the node out of the choice of new sessions for d (a passive health check).
func (n *Node) MarkFailed(d time.Duration) { n.downTill.Store(time.Now().Add(d).UnixNano()) }

// Pool is a group of interchangeable nodes serving one host and path prefix.
type Pool struct {
	Name         string
	Host         string // "" matches any host
	PathPrefix   string
	EngineIOPath string // ends with "/"
	Policy       string
	Nodes        []*Node
	byName       map[string]*Node
	next         atomic.Uint64 // rotation for round-robin and for ties
}

// Node returns the pool's node of that name, or nil.
func (p *Pool) Node(name string) *Node { return p.byName[name] }

// ErrNoNode means no node of the pool can take a new session.
var ErrNoNode = errors.New("backends: no usable node in the pool")

// Pick chooses the node of a new session. counts holds the live sessions per node name (from the pin
// table, so the choice holds across sidpin instances). least-sessions picks the lowest
// sessions/weight; round-robin rotates; random-two compares two nodes picked in rotation.
func (p *Pool) Pick(counts map[string]int, now time.Time) (*Node, error) {
	start := int(p.next.Add(1))
	var best *Node
	var bestLoad float64
	candidates := 0
	for i := range p.Nodes {
		n := p.Nodes[(start+i)%len(p.Nodes)]
		if !n.Usable(now) {
			continue
		}
		if p.Policy == configs.BalanceRoundRobin {
			return n, nil
		}
		load := float64(counts[n.Name]+int(n.handshakes.Load())) / float64(n.Weight)
		if best == nil || load < bestLoad {
			best, bestLoad = n, load
		}
		if candidates++; p.Policy == configs.BalanceRandomTwo && candidates == 2 {
			break
		}
	}
	if best == nil {
		return nil, ErrNoNode
	}
	return best, nil
}

// Set is every pool of a config.
type Set struct {
	Pools []*Pool // most specific match first
}

// Options tune the node clients.
type Options struct {
	MaxConnsPerNode int
	DialTimeout     time.Duration
	ResponseTimeout time.Duration // upper bound of one request; held polls need pingInterval+pingTimeout
	MaxBodyBytes    int
	MaxHeaderBytes  int
}

// New builds the pools of cfg.
func New(cfg *configs.Config) (*Set, error) {
	opts := Options{
		MaxConnsPerNode: cfg.Limits.MaxConnections,
		DialTimeout:     cfg.Timeouts.UpstreamDial.D(),
		ResponseTimeout: cfg.Timeouts.UpstreamResponse.D(),
		MaxBodyBytes:    cfg.Limits.MaxBodyBytes,
		MaxHeaderBytes:  cfg.Limits.MaxHeaderBytes,
	}
	s := &Set{}
	for _, pc := range cfg.Pools {
		pool := &Pool{
			Name: pc.Name, Host: strings.ToLower(pc.Match.Host), PathPrefix: pc.Match.PathPrefix,
			EngineIOPath: withSlash(pc.EngineIOPath), Policy: pc.Balance, byName: map[string]*Node{},
		}
		for _, nc := range pc.Nodes {
			n, err := newNode(pc.Name, nc, opts)
			if err != nil {
				return nil, fmt.Errorf("pool %s node %s: %w", pc.Name, nc.Name, err)
			}
			pool.Nodes = append(pool.Nodes, n)
			pool.byName[n.Name] = n
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

func withSlash(p string) string {
	if strings.HasSuffix(p, "/") {
		return p
	}
	return p + "/"
}

func newNode(pool string, nc configs.Node, o Options) (*Node, error) {
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
	n := &Node{Pool: pool, Name: nc.Name, Addr: addr, TLS: tls, Weight: nc.Weight}
	n.SetDraining(nc.Drain)
	dialTimeout := o.DialTimeout
	n.Client = &fasthttp.HostClient{
		Addr:               addr,
		IsTLS:              tls,
		Dial:               func(a string) (net.Conn, error) { return fasthttp.DialTimeout(a, dialTimeout) },
		MaxConns:           o.MaxConnsPerNode,
		MaxConnWaitTimeout: time.Second,
		// Below Node's 5 s keepAliveTimeout, so an idle connection is dropped here before the node
		// closes it under a request.
		MaxIdleConnDuration:           idleConnTimeout,
		ReadTimeout:                   o.ResponseTimeout,
		WriteTimeout:                  10 * time.Second,
		MaxIdemponentCallAttempts:     2,
		RetryIfErr:                    retryUnansweredOnce,
		DisablePathNormalizing:        true,
		DisableHeaderNamesNormalizing: true,
		NoDefaultUserAgentHeader:      true,
		MaxResponseBodySize:           4 * o.MaxBodyBytes,
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
