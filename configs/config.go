package configs

import (
	"net/netip"
	"time"
)

// Config is the whole sidpin configuration: one file, loaded by Load.
// Every field a user may omit has a default (see defaults.go); the YAML keys are the `yaml` tags.
// Every field is classed for reloads by a `reload` tag: "live" (a reload applies it) or "restart"
// (read at start only; a reload reports the change), on the field or on each field of its struct
// (TestEveryFieldIsClassedForReload fails on a field without one).
type Config struct {
	Listen   string   `yaml:"listen" reload:"restart"`
	TLS      TLS      `yaml:"tls" reload:"restart"`
	Clients  Clients  `yaml:"clients" reload:"restart"`
	Admin    Admin    `yaml:"admin" reload:"restart"`
	Store    Store    `yaml:"store" reload:"restart"`
	Pools    []Pool   `yaml:"pools" reload:"live"`
	Limits   Limits   `yaml:"limits" reload:"restart"`
	Timeouts Timeouts `yaml:"timeouts"`
	Log      Log      `yaml:"log" reload:"restart"`

	// File is the path the config was loaded from ("" when built in code). Not read from YAML.
	File string `yaml:"-"`
}

// TLS turns the client-facing listener into HTTPS when both files are set.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Enabled reports whether TLS is configured.
func (t TLS) Enabled() bool { return t.CertFile != "" }

// Clients says which peers of the client listener speak for clients behind them: load balancers that
// tell the client's address. That address is the one pins (client_addr), logs and limits.per_client use.
type Clients struct {
	// ProxyProtocol lists the peers (IP or CIDR) that open every connection with a PROXY protocol v1 or
	// v2 header (HAProxy send-proxy-v2, an AWS NLB): required from them, refused from any other peer.
	ProxyProtocol []string `yaml:"proxy_protocol"`
	// TrustedProxies lists the peers (IP or CIDR; after the PROXY header, the address it gave) whose
	// X-Forwarded-For and X-Forwarded-Proto are believed: the client is the last address of
	// X-Forwarded-For that is not itself trusted. Other peers' headers are ignored and replaced.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// AdminCookie is the admin page's sign-in cookie. Browsers also send it to the client listener when both
// share a host name, so the proxy strips it from every request it forwards to a node.
const AdminCookie = "sidpin_admin"

// Admin is the operator listener (pins, nodes, metrics). Empty Listen disables it.
type Admin struct {
	Listen string `yaml:"listen"`
	// TokenEnv names the environment variable that holds the bearer token; the token itself never lives in the file.
	TokenEnv string `yaml:"token_env"`
}

// Store kinds.
const (
	StoreMemory = "memory"
	StoreRedis  = "redis"
)

// Store selects where pins live: in this process (memory) or shared by every instance (redis).
type Store struct {
	Kind   string      `yaml:"kind"`
	Memory MemoryStore `yaml:"memory"`
	Redis  RedisStore  `yaml:"redis"`
}

// MemoryStore configures the embedded go-memdb pin table.
type MemoryStore struct {
	MaxPins int `yaml:"max_pins"`
}

// RedisStore configures the shared pin table. Single, Sentinel (MasterName) and Cluster all go through
// go-redis's UniversalClient.
type RedisStore struct {
	Addrs        []string `yaml:"addrs"`
	MasterName   string   `yaml:"master_name"`
	Cluster      bool     `yaml:"cluster"`
	Username     string   `yaml:"username"`
	PasswordEnv  string   `yaml:"password_env"`
	DB           int      `yaml:"db"`
	KeyPrefix    string   `yaml:"key_prefix"`
	DialTimeout  Duration `yaml:"dial_timeout"`
	ReadTimeout  Duration `yaml:"read_timeout"`
	WriteTimeout Duration `yaml:"write_timeout"`
	PoolSize     int      `yaml:"pool_size"`
}

// Balancing policies for new sessions (pools[].balance).
const (
	BalanceLeastSessions = "least-sessions" // fewest sessions + handshakes in flight per weight (default)
	BalanceRoundRobin    = "round-robin"    // smooth weighted round-robin, as nginx does
	BalanceRandomTwo     = "random-two"     // power of two choices: the less loaded of two random nodes
)

// BalancePolicies lists the names pools[].balance accepts, the default first. Package backends has one
// balancer per name, each in a file of its own: adding a policy is that file and its name here.
var BalancePolicies = []string{BalanceLeastSessions, BalanceRoundRobin, BalanceRandomTwo}

// Pool is a group of interchangeable chat nodes serving one site (host + path prefix).
type Pool struct {
	Name         string `yaml:"name"`
	Match        Match  `yaml:"match"`
	EngineIOPath string `yaml:"engineio_path"`
	Balance      string `yaml:"balance"`
	Health       Health `yaml:"health"`
	// TLS configures the connections to the pool's https:// nodes.
	TLS UpstreamTLS `yaml:"tls"`
	// OnNodeRemoved says what happens to the sessions of a node a reload (or discovery) removes: drain
	// (they stay until they end), close (their pins are purged and their WebSockets closed at once) or
	// migrate (they are ended MigrateRate per second, so that their clients reconnect in a stream).
	OnNodeRemoved string `yaml:"on_node_removed"`
	// MigrateRate is the pace of on_node_removed: migrate, sessions per second.
	MigrateRate float64 `yaml:"migrate_rate"`
	Nodes       []Node  `yaml:"nodes"`
	// Discovery takes the nodes from DNS instead of Nodes (one or the other).
	Discovery Discovery `yaml:"discovery"`
}

// Discovery takes a pool's nodes from DNS: the A/AAAA records of Name with Port (a Kubernetes
// headless Service), or the SRV records of SRV (each target's addresses, with the record's port).
// The name is resolved again every Interval, or the records' TTL when it is longer. A resolution that
// fails, or finds no record, keeps the nodes found before: DNS never empties a pool.
type Discovery struct {
	Name     string   `yaml:"name"`
	Port     int      `yaml:"port"`
	SRV      string   `yaml:"srv"`
	Scheme   string   `yaml:"scheme"`   // http (default) or https: how the nodes are spoken to
	Resolver string   `yaml:"resolver"` // the DNS server, ip:port; default the first nameserver of /etc/resolv.conf
	Interval Duration `yaml:"interval"`
	Timeout  Duration `yaml:"timeout"` // one resolution, every name searched included
}

// Pool returns the pool named name, or nil.
func (c *Config) Pool(name string) *Pool {
	for i := range c.Pools {
		if c.Pools[i].Name == name {
			return &c.Pools[i]
		}
	}
	return nil
}

// Enabled reports whether the pool's nodes come from DNS.
func (d Discovery) Enabled() bool { return d.Name != "" || d.SRV != "" }

// MaxMigrateRate bounds a migration's pace (sessions ended per second), from the config or the API.
const MaxMigrateRate = 10000

// What a reload does with the sessions of a removed node.
const (
	RemovedDrain   = "drain"
	RemovedClose   = "close"
	RemovedMigrate = "migrate"
)

// Match selects the requests a pool serves. Host "" matches any host.
type Match struct {
	Host       string `yaml:"host"`
	PathPrefix string `yaml:"path_prefix"`
}

// Health check kinds.
const (
	HealthHTTP = "http"
	HealthTCP  = "tcp"
	HealthNone = "none"
)

// Health configures the active checks of a pool's nodes.
type Health struct {
	Kind         string   `yaml:"kind"`
	Path         string   `yaml:"path"`
	ExpectStatus int      `yaml:"expect_status"`
	Interval     Duration `yaml:"interval"`
	Timeout      Duration `yaml:"timeout"`
	Rise         int      `yaml:"rise"`
	Fall         int      `yaml:"fall"`
	// DrainingStatus (http checks; 0: off) is the status a node answers when it asks to be drained:
	// it stays up for its sessions and gets no new ones; with on_node_removed: migrate they are
	// migrated, as for a node that is removed.
	DrainingStatus int `yaml:"draining_status"`
}

// Node is one chat node.
type Node struct {
	Name   string `yaml:"name"`
	URL    string `yaml:"url"`
	Weight int    `yaml:"weight"`
	Drain  bool   `yaml:"drain"`
}

// Limits bound what one client can make sidpin hold.
type Limits struct {
	MaxHeaderBytes int       `yaml:"max_header_bytes"`
	MaxBodyBytes   int       `yaml:"max_body_bytes"`
	MaxConnections int       `yaml:"max_connections"`
	PerClient      PerClient `yaml:"per_client"`
}

// PerClient bounds what one client address may hold or start, counted across every sidpin instance
// when the store is Redis. Zero turns a bound off. Established sessions are never refused by them.
type PerClient struct {
	// MaxConnections caps the concurrent client connections of one address.
	MaxConnections int `yaml:"max_connections"`
	// HandshakeRate is how many new sessions per second one address may open, sustained (a token
	// bucket refilled at this rate); HandshakeBurst is the bucket's size.
	HandshakeRate  float64 `yaml:"handshake_rate"`
	HandshakeBurst int     `yaml:"handshake_burst"`
	// IPv6Prefix is the length of the IPv6 prefix counted as one address (a host usually holds a /64).
	IPv6Prefix int `yaml:"ipv6_prefix"`
}

// Timeouts of the client side, the upstream side and the process.
type Timeouts struct {
	ClientRead   Duration `yaml:"client_read" reload:"restart"`
	ClientIdle   Duration `yaml:"client_idle" reload:"restart"`
	UpstreamDial Duration `yaml:"upstream_dial" reload:"live"`
	// UpstreamResponse bounds one polling request to a node. It must exceed the nodes'
	// pingInterval + pingTimeout, or held long-polls are cut and Engine.IO closes the session.
	UpstreamResponse Duration `yaml:"upstream_response" reload:"live"`
	WebSocketIdle    Duration `yaml:"websocket_idle" reload:"live"`
	// PinSlack is added to pingInterval + pingTimeout to decide that a silent session is dead.
	PinSlack Duration `yaml:"pin_slack" reload:"live"`
	// MaxPinLifetime caps a pin's lifetime without traffic, whatever ping values the node announced.
	MaxPinLifetime Duration `yaml:"max_pin_lifetime" reload:"live"`
	// Handshake bounds a node's answer to a handshake: the response head of a polling handshake, the
	// 101 and the open frame of a WebSocket. A node that misses it counts a failed check.
	Handshake Duration `yaml:"handshake" reload:"live"`
	// UpgradeProbe bounds a probe WebSocket's wait for the client's upgrade packet ("5") after the 101.
	UpgradeProbe Duration `yaml:"upgrade_probe" reload:"live"`
	// ShutdownDelay is how long a stopping sidpin keeps serving while /readyz says it is draining, so
	// that an L4 balancer checking it stops sending new connections before the listener closes.
	ShutdownDelay Duration `yaml:"shutdown_delay" reload:"live"`
	ShutdownGrace Duration `yaml:"shutdown_grace" reload:"live"`
}

// Log configures log/slog output.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
	// Sessions writes one line per ended session (message "session ended"), in Format, whatever Level.
	Sessions bool `yaml:"sessions"`
}

// Duration is a time.Duration written in YAML as a Go duration string ("250ms", "1m30s").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// ParsePrefix reads an IP address (a prefix of its full length) or a CIDR, masked.
func ParsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// Prefixes is a list of address prefixes, for membership tests.
type Prefixes []netip.Prefix

// ParsePrefixes reads a validated list (entries that do not parse are skipped).
func ParsePrefixes(list []string) Prefixes {
	var out Prefixes
	for _, s := range list {
		if p, err := ParsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// Contains reports whether a is in one of the prefixes.
func (ps Prefixes) Contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
