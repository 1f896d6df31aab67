// Package metrics defines sidpin's Prometheus metrics and the collectors that read the pin table and
// the nodes at scrape time. The request path only touches pre-resolved counters and histograms.
package metrics

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Request kinds, as the proxy classifies them.
const (
	KindHandshake = iota // Engine.IO without a sid (polling; a WebSocket-first one is an upgrade)
	KindSession          // Engine.IO polling request with a sid
	KindUpgrade          // WebSocket upgrade (with a sid, or WebSocket-first)
	KindPlain            // anything else under the pool
	kindCount
)

var kindNames = [kindCount]string{"handshake", "session", "upgrade", "plain"}

// Causes of a "Session ID unknown" answer given by sidpin itself.
const (
	CauseUnknown   = "unknown_sid" // no pin: never pinned, ended, or malformed
	CauseExpired   = "expired"     // the pin outlived its session's lifetime without traffic
	CauseNodeDown  = "node_down"   // the pinned node is down
	CauseNodeGone  = "node_gone"   // the pinned node is not in the config any more
	CauseBadSID    = "malformed"   // the sid cannot be a sid (empty, repeated, too long, control bytes)
	CauseNodeSaid  = "node"        // the node itself answered 400 code 1 (passed through; the pin is removed)
	statusClassLen = 6             // 1xx..5xx and "other"
)

// Metrics is every metric of one sidpin process.
type Metrics struct {
	Registry *prometheus.Registry

	requests     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	handshakes   *prometheus.CounterVec
	upgrades     *prometheus.CounterVec
	unknownSID   *prometheus.CounterVec
	storeErrors  *prometheus.CounterVec
	storeLatency *prometheus.HistogramVec
	stateChanges *prometheus.CounterVec
	discovery    *prometheus.CounterVec
	migrated     *prometheus.CounterVec
	certReloads  *prometheus.CounterVec

	// Totals the admin page's history samples (cheaper than gathering the vectors).
	handshakeTotal, unknownTotal atomic.Uint64

	mu    sync.Mutex                       // serialises additions to pools
	pools atomic.Pointer[map[string]*Pool] // copied on write: a request reads it without a lock
}

// New registers sidpin's metrics (and the Go runtime's and the process's) in a new registry.
func New() *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	m.pools.Store(&map[string]*Pool{})
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sidpin_requests_total",
		Help: "Client requests by pool, kind (handshake, session, upgrade, plain) and status class."}, []string{"pool", "kind", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sidpin_request_duration_seconds",
		Help:    "Time to answer a client request, by pool and kind (held long-polls last up to pingInterval).",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}, []string{"pool", "kind"})
	m.handshakes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sidpin_handshakes_total",
		Help: "Sessions pinned, by pool, node and first transport."}, []string{"pool", "node", "transport"})
	m.upgrades = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sidpin_upgrades_total",
		Help: "Polling sessions moving to WebSocket, by pool and result (succeeded: the client sent 5; failed: the probe ended before)."}, []string{"pool", "result"})
	m.unknownSID = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sidpin_session_unknown_total",
		Help: `"Session ID unknown" answers, by pool and cause.`}, []string{"pool", "cause"})
	m.storeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sidpin_pin_store_errors_total",
		Help: "Pin table operations that failed, by operation."}, []string{"op"})
	m.storeLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sidpin_pin_store_duration_seconds",
		Help:    "Pin table operation time, by operation.",
		Buckets: []float64{.00001, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5}}, []string{"op"})
	m.stateChanges = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sidpin_node_state_changes_total",
		Help: "Node state changes, by pool, node and new state."}, []string{"pool", "node", "to"})
	m.discovery = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sidpin_discovery_resolutions_total",
		Help: "DNS resolutions of pools that discover their nodes, by pool and result (ok, or failed: the pool kept its nodes)."}, []string{"pool", "result"})
	m.migrated = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sidpin_migration_sessions_ended_total",
		Help: "Sessions this instance ended to migrate their node, by pool and node."}, []string{"pool", "node"})
	m.certReloads = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sidpin_tls_certificate_reloads_total",
		Help: "Reloads of the client listener's certificate after its files changed, by result (ok, or refused: the pair in use stays)."}, []string{"result"})
	m.Registry.MustRegister(m.requests, m.latency, m.handshakes, m.upgrades, m.unknownSID, m.storeErrors,
		m.storeLatency, m.stateChanges, m.discovery, m.migrated, m.certReloads,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Pool holds one pool's request metrics, resolved once so that a request costs no label lookup.
type Pool struct {
	requests [kindCount][statusClassLen]prometheus.Counter
	latency  [kindCount]prometheus.Observer
}

// Pool returns the metrics of the named pool.
func (m *Metrics) Pool(name string) *Pool {
	if p := (*m.pools.Load())[name]; p != nil {
		return p
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.pools.Load()
	if p := old[name]; p != nil {
		return p
	}
	p := &Pool{}
	classes := [statusClassLen]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}
	for k := range kindCount {
		for c := range statusClassLen {
			p.requests[k][c] = m.requests.WithLabelValues(name, kindNames[k], classes[c])
		}
		p.latency[k] = m.latency.WithLabelValues(name, kindNames[k])
	}
	pools := make(map[string]*Pool, len(old)+1)
	for k, v := range old {
		pools[k] = v
	}
	pools[name] = p
	m.pools.Store(&pools)
	return p
}

// Observe records one answered request of the pool.
func (p *Pool) Observe(kind, status int, seconds float64) {
	class := status / 100
	if class < 1 || class > 5 {
		class = 0
	}
	p.requests[kind][class].Inc()
	p.latency[kind].Observe(seconds)
}

// Handshake counts a new pinned session.
func (m *Metrics) Handshake(pool, node, transport string) {
	m.handshakes.WithLabelValues(pool, node, transport).Inc()
	m.handshakeTotal.Add(1)
}

// Upgrade counts a probe's outcome.
func (m *Metrics) Upgrade(pool string, succeeded bool) {
	result := "failed"
	if succeeded {
		result = "succeeded"
	}
	m.upgrades.WithLabelValues(pool, result).Inc()
}

// SessionUnknown counts one "Session ID unknown" answer.
func (m *Metrics) SessionUnknown(pool, cause string) {
	m.unknownSID.WithLabelValues(pool, cause).Inc()
	m.unknownTotal.Add(1)
}

// Totals are the sessions pinned and the "Session ID unknown" answers counted so far, all labels.
func (m *Metrics) Totals() (handshakes, unknown uint64) {
	return m.handshakeTotal.Load(), m.unknownTotal.Load()
}

// Discovery counts a pool's DNS resolution: failed when err is not nil.
func (m *Metrics) Discovery(pool string, err error) {
	result := "ok"
	if err != nil {
		result = "failed"
	}
	m.discovery.WithLabelValues(pool, result).Inc()
}

// CertReload counts a reload of the listener's certificate: refused when err is not nil.
func (m *Metrics) CertReload(err error) {
	result := "ok"
	if err != nil {
		result = "refused"
	}
	m.certReloads.WithLabelValues(result).Inc()
}

// MigrationEnded counts a session ended by a migration of its node.
func (m *Metrics) MigrationEnded(pool, node string) { m.migrated.WithLabelValues(pool, node).Inc() }

// NodeStateChanged counts a node state change.
func (m *Metrics) NodeStateChanged(pool, node, to string) {
	m.stateChanges.WithLabelValues(pool, node, to).Inc()
}
