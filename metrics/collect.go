package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sidpin/sidpin/affinity"
	"github.com/sidpin/sidpin/backends"
	"github.com/sidpin/sidpin/clientlimits"
)

// Sources are what the scrape-time collector reads.
type Sources struct {
	Nodes   func() []*backends.Node
	Store   affinity.PinTable
	Tunnels func() int                       // open WebSocket tunnels
	Relayed func() (toNode, toClient uint64) // bytes relayed on WebSocket tunnels
	Limits  func() clientlimits.Stats        // limits.per_client counters; nil when off
	// Migrations are the paced migrations recorded in the pin store (every instance's); nil: none.
	Migrations func(context.Context) ([]affinity.Migration, error)
}

var (
	descSessions = prometheus.NewDesc("sidpin_sessions",
		"Live sessions per node in the pin table (every instance's, with the redis store).", []string{"pool", "node"}, nil)
	descLocal = prometheus.NewDesc("sidpin_local_sessions",
		"Live sessions per node and transport as this instance knows them (all of them with the memory store; those it routed recently with redis).",
		[]string{"pool", "node", "transport"}, nil)
	descState = prometheus.NewDesc("sidpin_node_state",
		"1 for the node's current state (up, draining, down, removed), 0 for the others.", []string{"pool", "node", "state"}, nil)
	descHealthy = prometheus.NewDesc("sidpin_node_healthy", "1 when the node passes its health checks.", []string{"pool", "node"}, nil)
	descTunnels = prometheus.NewDesc("sidpin_websocket_tunnels", "Open WebSocket tunnels on this instance.", nil, nil)
	descRelayed = prometheus.NewDesc("sidpin_relayed_bytes_total",
		"Bytes relayed on WebSocket tunnels, by direction (to_node, to_client).", []string{"direction"}, nil)
	descRefused = prometheus.NewDesc("sidpin_client_limit_refusals_total",
		"Refused by limits.per_client: kind connection (over an address's connection cap) or handshake (over its handshake rate).",
		[]string{"kind"}, nil)
	descLimitFallbacks = prometheus.NewDesc("sidpin_client_limit_redis_fallbacks_total",
		"Handshakes whose per-client rate was decided by this instance alone because Redis failed or was slow.", nil, nil)
	descLimitAddrs = prometheus.NewDesc("sidpin_client_limit_addresses",
		"Client addresses tracked by limits.per_client, by table (connections, handshakes).", []string{"table"}, nil)
	descPerNode = prometheus.NewDesc("sidpin_pool_sessions_per_node",
		"Live sessions of the pool divided by its nodes taking new sessions (up): the autoscaling signal of a pool's nodes.",
		[]string{"pool"}, nil)
	descInstance = prometheus.NewDesc("sidpin_instance_sessions",
		"Sessions this instance knows (memory table: all; Redis: those it routed lately): the autoscaling signal of sidpin itself.",
		nil, nil)
	descMigLeft = prometheus.NewDesc("sidpin_migration_sessions_left",
		"Sessions a node being migrated still has, as its migration last recorded.", []string{"pool", "node"}, nil)
	descMigRate = prometheus.NewDesc("sidpin_migration_rate",
		"The pace of a node's migration, sessions ended per second.", []string{"pool", "node"}, nil)
	descMigETA = prometheus.NewDesc("sidpin_migration_eta_seconds",
		"Seconds a node's migration still needs at its pace (0 once done).", []string{"pool", "node"}, nil)
	descScrapeErr = prometheus.NewDesc("sidpin_scrape_pin_store_errors",
		"1 when the pin table did not answer the session counts of this scrape.", nil, nil)
)

type collector struct{ src Sources }

// Collect registers the scrape-time collector over src.
func (m *Metrics) Collect(src Sources) {
	m.Registry.MustRegister(collector{src})
}

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSessions, descLocal, descState, descHealthy, descTunnels, descRelayed, descScrapeErr,
		descRefused, descLimitFallbacks, descLimitAddrs, descMigLeft, descMigRate, descMigETA, descPerNode, descInstance} {
		ch <- d
	}
}

var states = []string{backends.StateUp, backends.StateDraining, backends.StateDown, backends.StateRemoved}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	counts := map[string]map[string]int{}
	failed := 0.0
	nodes := c.src.Nodes()
	for _, n := range nodes {
		if _, ok := counts[n.Pool]; !ok {
			cnt, err := c.src.Store.CountByNode(ctx, n.Pool)
			if err != nil {
				failed = 1
			}
			counts[n.Pool] = cnt
		}
		ch <- prometheus.MustNewConstMetric(descSessions, prometheus.GaugeValue, float64(counts[n.Pool][n.Name]), n.Pool, n.Name)
		state := n.State()
		for _, s := range states {
			ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, boolValue(s == state), n.Pool, n.Name, s)
		}
		ch <- prometheus.MustNewConstMetric(descHealthy, prometheus.GaugeValue, boolValue(n.Health().Healthy), n.Pool, n.Name)
	}
	ch <- prometheus.MustNewConstMetric(descScrapeErr, prometheus.GaugeValue, failed)
	collectPerNode(ch, nodes, counts)
	local := c.src.Store.LocalTransportCounts()
	for ref, byTransport := range local {
		for transport, n := range byTransport {
			ch <- prometheus.MustNewConstMetric(descLocal, prometheus.GaugeValue, float64(n), ref.Pool, ref.Node, transport)
		}
	}
	ch <- prometheus.MustNewConstMetric(descInstance, prometheus.GaugeValue, float64(local.Total()))
	if c.src.Tunnels != nil {
		ch <- prometheus.MustNewConstMetric(descTunnels, prometheus.GaugeValue, float64(c.src.Tunnels()))
	}
	if c.src.Relayed != nil {
		toNode, toClient := c.src.Relayed()
		ch <- prometheus.MustNewConstMetric(descRelayed, prometheus.CounterValue, float64(toNode), "to_node")
		ch <- prometheus.MustNewConstMetric(descRelayed, prometheus.CounterValue, float64(toClient), "to_client")
	}
	c.collectLimits(ch)
	c.collectMigrations(ctx, ch)
}

// collectMigrations reports the recorded migrations' progress.
func (c collector) collectMigrations(ctx context.Context, ch chan<- prometheus.Metric) {
	if c.src.Migrations == nil {
		return
	}
	ms, err := c.src.Migrations(ctx)
	if err != nil {
		return
	}
	for _, m := range ms {
		ch <- prometheus.MustNewConstMetric(descMigLeft, prometheus.GaugeValue, float64(m.Left), m.Ref.Pool, m.Ref.Node)
		ch <- prometheus.MustNewConstMetric(descMigRate, prometheus.GaugeValue, m.Rate, m.Ref.Pool, m.Ref.Node)
		ch <- prometheus.MustNewConstMetric(descMigETA, prometheus.GaugeValue, m.ETA().Seconds(), m.Ref.Pool, m.Ref.Node)
	}
}

// collectPerNode reports each pool's sessions per node taking new sessions (all its sessions over at
// least one node: a pool without an up node shows its whole load).
func collectPerNode(ch chan<- prometheus.Metric, nodes []*backends.Node, counts map[string]map[string]int) {
	up := map[string]int{}
	for _, n := range nodes {
		if n.State() == backends.StateUp {
			up[n.Pool]++
		}
	}
	for pool, byNode := range counts {
		total := 0
		for _, c := range byNode {
			total += c
		}
		ch <- prometheus.MustNewConstMetric(descPerNode, prometheus.GaugeValue, float64(total)/float64(max(up[pool], 1)), pool)
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// collectLimits reports the per-client limits' counters.
func (c collector) collectLimits(ch chan<- prometheus.Metric) {
	if c.src.Limits == nil {
		return
	}
	st := c.src.Limits()
	ch <- prometheus.MustNewConstMetric(descRefused, prometheus.CounterValue, float64(st.ConnsRefused), "connection")
	ch <- prometheus.MustNewConstMetric(descRefused, prometheus.CounterValue, float64(st.HandshakesRefused), "handshake")
	ch <- prometheus.MustNewConstMetric(descLimitFallbacks, prometheus.CounterValue, float64(st.RedisFallbacks))
	ch <- prometheus.MustNewConstMetric(descLimitAddrs, prometheus.GaugeValue, float64(st.ConnAddrs), "connections")
	ch <- prometheus.MustNewConstMetric(descLimitAddrs, prometheus.GaugeValue, float64(st.BucketAddrs), "handshakes")
}
