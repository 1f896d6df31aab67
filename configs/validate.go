package configs

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// validator checks a decoded config and records every problem with its field path and line.
type validator struct {
	errs  *Errors
	lines map[string]int
}

// add records a problem at path, using the line of the nearest field that appeared in the file.
func (v *validator) add(path, format string, args ...any) {
	v.errs.add(path, v.lineOf(path), format, args...)
}

func (v *validator) lineOf(path string) int {
	for p := path; p != ""; p = parent(p) {
		if line, ok := v.lines[p]; ok {
			return line
		}
	}
	return 0
}

// parent strips the last segment of a field path: pools[1].nodes[0].url -> pools[1].nodes[0] -> pools[1] -> pools.
func parent(path string) string {
	if i := strings.LastIndexAny(path, ".["); i >= 0 {
		return path[:i]
	}
	return ""
}

var (
	namePattern   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	envVarPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

func validate(c *Config, v *validator) {
	v.listenAddr("listen", c.Listen, true)
	v.tls(c.TLS)
	v.admin(c.Admin)
	v.store(c.Store)
	v.pools(c.Pools)
	v.prefixes("clients.proxy_protocol", c.Clients.ProxyProtocol)
	v.prefixes("clients.trusted_proxies", c.Clients.TrustedProxies)
	v.limits(c.Limits)
	v.timeouts(c.Timeouts)
	v.log(c.Log)
}

// listenAddr checks a host:port the process listens on. Port 0 (pick a free port) is allowed for tests.
func (v *validator) listenAddr(path, addr string, required bool) {
	if addr == "" {
		if required {
			v.add(path, "is required (host:port, e.g. 127.0.0.1:3200)")
		}
		return
	}
	if _, _, err := splitHostPort(addr); err != nil {
		v.add(path, "%q: %v", addr, err)
	}
}

// splitHostPort accepts host:port with a numeric port 0-65535.
func splitHostPort(addr string) (string, int, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("not a host:port address")
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("port %q is not a number from 0 to 65535", portText)
	}
	return host, port, nil
}

func (v *validator) tls(t TLS) {
	if (t.CertFile == "") != (t.KeyFile == "") {
		v.add("tls", "cert_file and key_file must be set together")
		return
	}
	v.readableFile("tls.cert_file", t.CertFile)
	v.readableFile("tls.key_file", t.KeyFile)
}

func (v *validator) readableFile(path, file string) {
	if file == "" {
		return
	}
	f, err := os.Open(file)
	if err != nil {
		v.add(path, "cannot read %q: %v", file, err)
		return
	}
	f.Close()
}

func (v *validator) admin(a Admin) {
	v.listenAddr("admin.listen", a.Listen, false)
	if a.TokenEnv != "" && !envVarPattern.MatchString(a.TokenEnv) {
		v.add("admin.token_env", "%q is not an environment variable name", a.TokenEnv)
	}
	if a.Listen != "" && a.TokenEnv == "" && !isLoopbackAddr(a.Listen) {
		v.add("admin.token_env", "is required when admin.listen (%q) is not a loopback address: the admin API must not be open to the network without a token", a.Listen)
	}
}

// isLoopbackAddr reports whether addr listens only on the loopback interface.
func isLoopbackAddr(addr string) bool {
	host, _, err := splitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (v *validator) store(s Store) {
	switch s.Kind {
	case StoreMemory:
	case StoreRedis:
		v.redis(s.Redis)
	default:
		v.add("store.kind", "%q is not a store kind (use %q or %q)", s.Kind, StoreMemory, StoreRedis)
	}
	if s.Memory.MaxPins < 1 {
		v.add("store.memory.max_pins", "must be at least 1, got %d", s.Memory.MaxPins)
	}
}

func (v *validator) redis(r RedisStore) {
	if len(r.Addrs) == 0 {
		v.add("store.redis.addrs", "needs at least one host:port when store.kind is redis")
	}
	for i, addr := range r.Addrs {
		if _, _, err := splitHostPort(addr); err != nil {
			v.add(fmt.Sprintf("store.redis.addrs[%d]", i), "%q: %v", addr, err)
		}
	}
	if r.Cluster && r.MasterName != "" {
		v.add("store.redis.cluster", "cannot be combined with master_name: choose Redis Cluster or Sentinel")
	}
	if r.DB < 0 || r.DB > 15 {
		v.add("store.redis.db", "must be from 0 to 15, got %d", r.DB)
	} else if r.Cluster && r.DB != 0 {
		v.add("store.redis.db", "must be 0 with Redis Cluster, got %d", r.DB)
	}
	if r.PasswordEnv != "" && !envVarPattern.MatchString(r.PasswordEnv) {
		v.add("store.redis.password_env", "%q is not an environment variable name", r.PasswordEnv)
	}
	if r.KeyPrefix == "" || strings.ContainsAny(r.KeyPrefix, "{} \t\r\n") {
		v.add("store.redis.key_prefix", "%q must be non-empty, without spaces or braces (sidpin adds its own hash tags)", r.KeyPrefix)
	}
	v.positive("store.redis.dial_timeout", r.DialTimeout)
	v.positive("store.redis.read_timeout", r.ReadTimeout)
	v.positive("store.redis.write_timeout", r.WriteTimeout)
	if r.PoolSize < 0 {
		v.add("store.redis.pool_size", "must not be negative (0 picks go-redis's default), got %d", r.PoolSize)
	}
}

func (v *validator) positive(path string, d Duration) {
	if d <= 0 {
		v.add(path, "must be a positive duration, got %s", d)
	}
}

func (v *validator) pools(pools []Pool) {
	if len(pools) == 0 {
		v.add("pools", "at least one pool is required")
	}
	names := map[string]int{}
	routes := map[string]int{}
	for i := range pools {
		p := &pools[i]
		path := fmt.Sprintf("pools[%d]", i)
		v.pool(path, p)
		if j, dup := names[p.Name]; dup && p.Name != "" {
			v.add(path+".name", "%q is already the name of pools[%d]", p.Name, j)
		} else {
			names[p.Name] = i
		}
		route := strings.ToLower(p.Match.Host) + " " + p.Match.PathPrefix
		if j, dup := routes[route]; dup {
			v.add(path+".match", "host %q with path_prefix %q is already claimed by pools[%d]", p.Match.Host, p.Match.PathPrefix, j)
		} else {
			routes[route] = i
		}
	}
}

// prefixes checks a list of IPs or CIDRs.
func (v *validator) prefixes(path string, list []string) {
	for i, s := range list {
		if _, err := ParsePrefix(s); err != nil {
			v.add(fmt.Sprintf("%s[%d]", path, i), "%q is not an IP address or a CIDR (10.0.0.0/8, fd00::/8)", s)
		}
	}
}

func (v *validator) pool(path string, p *Pool) {
	v.name(path+".name", p.Name)
	if !strings.HasPrefix(p.Match.PathPrefix, "/") {
		v.add(path+".match.path_prefix", "%q must start with /", p.Match.PathPrefix)
	}
	if h := p.Match.Host; h != "" && (strings.ContainsAny(h, "/ \t@?#") || strings.Contains(h, "://")) {
		v.add(path+".match.host", "%q must be a bare host name (optionally host:port), without scheme or path", h)
	}
	switch {
	case !strings.HasPrefix(p.EngineIOPath, "/"):
		v.add(path+".engineio_path", "%q must start with /", p.EngineIOPath)
	case !strings.HasPrefix(p.EngineIOPath, p.Match.PathPrefix):
		v.add(path+".engineio_path", "%q is outside the pool's path_prefix %q", p.EngineIOPath, p.Match.PathPrefix)
	}
	if !slices.Contains(BalancePolicies, p.Balance) {
		v.add(path+".balance", "%q is not a policy (use %s)", p.Balance, orList(BalancePolicies))
	}
	if !slices.Contains([]string{RemovedDrain, RemovedClose, RemovedMigrate}, p.OnNodeRemoved) {
		v.add(path+".on_node_removed", "%q is not a choice (use %s, %s or %s)", p.OnNodeRemoved, RemovedDrain, RemovedClose, RemovedMigrate)
	}
	if p.MigrateRate <= 0 || p.MigrateRate > MaxMigrateRate {
		v.add(path+".migrate_rate", "must be above 0 and at most %d sessions per second, got %g", MaxMigrateRate, p.MigrateRate)
	}
	v.health(path+".health", p.Health)
	if p.Discovery.Enabled() {
		v.discovery(path, p)
	} else {
		v.nodes(path+".nodes", p.Nodes)
	}
	v.upstreamTLS(path, p)
}

// discovery checks a pool whose nodes come from DNS.
func (v *validator) discovery(path string, p *Pool) {
	d, dp := p.Discovery, path+".discovery"
	if len(p.Nodes) > 0 {
		v.add(path+".nodes", "must be empty when discovery is set: the nodes come from DNS")
	}
	switch {
	case d.Name != "" && d.SRV != "":
		v.add(dp, "set name (A/AAAA records, with port) or srv (SRV records), not both")
	case d.Name != "":
		v.dnsName(dp+".name", d.Name)
		if d.Port < 1 || d.Port > 65535 {
			v.add(dp+".port", "must be the nodes' port, 1-65535, with name; got %d", d.Port)
		}
	default:
		v.dnsName(dp+".srv", d.SRV)
		if d.Port != 0 {
			v.add(dp+".port", "must not be set with srv: the SRV records give the port")
		}
	}
	if d.Scheme != "http" && d.Scheme != "https" {
		v.add(dp+".scheme", "%q is not http or https", d.Scheme)
	}
	if d.Resolver != "" {
		if _, err := netip.ParseAddrPort(d.Resolver); err != nil {
			v.add(dp+".resolver", "%q is not ip:port (e.g. 10.96.0.10:53)", d.Resolver)
		}
	}
	if d.Interval.D() < time.Second {
		v.add(dp+".interval", "must be at least 1s, got %s", d.Interval.D())
	}
	if d.Timeout.D() <= 0 || d.Timeout.D() > d.Interval.D() {
		v.add(dp+".timeout", "must be above 0 and at most the interval, got %s", d.Timeout.D())
	}
}

// dnsName accepts a DNS name: labels of 1-63 letters, digits, '-' or '_', 253 bytes at most, an
// optional final dot.
func (v *validator) dnsName(path, name string) {
	n := strings.TrimSuffix(name, ".")
	ok := n != "" && len(n) <= 253
	for _, label := range strings.Split(n, ".") {
		ok = ok && label != "" && len(label) <= 63 && strings.Trim(label, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == ""
	}
	if !ok {
		v.add(path, "%q is not a DNS name", name)
	}
}

// upstreamTLS checks a pool's TLS options by building the client config the nodes will use.
func (v *validator) upstreamTLS(path string, p *Pool) {
	if !p.TLS.Enabled() {
		return
	}
	https := p.Discovery.Enabled() && p.Discovery.Scheme == "https"
	for _, n := range p.Nodes {
		https = https || strings.HasPrefix(n.URL, "https://")
	}
	if !https {
		v.add(path+".tls", "is set, but no node of the pool has an https:// URL")
		return
	}
	if _, err := p.TLS.ClientConfig("node"); err != nil {
		v.add(path+".tls", "%v", err)
	}
}

// orList writes names as "a, b or c".
func orList(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

func (v *validator) name(path, name string) {
	if !namePattern.MatchString(name) {
		v.add(path, "%q must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
}

func (v *validator) health(path string, h Health) {
	switch h.Kind {
	case HealthNone:
		return
	case HealthHTTP:
		if !strings.HasPrefix(h.Path, "/") {
			v.add(path+".path", "%q must start with /", h.Path)
		}
		if h.DrainingStatus != 0 && (h.DrainingStatus < 100 || h.DrainingStatus > 599 || h.DrainingStatus == h.ExpectStatus) {
			v.add(path+".draining_status", "must be an HTTP status from 100 to 599 other than expect_status, or 0 (off), got %d", h.DrainingStatus)
		}
		if h.ExpectStatus < 100 || h.ExpectStatus > 599 {
			v.add(path+".expect_status", "must be an HTTP status from 100 to 599, got %d", h.ExpectStatus)
		}
	case HealthTCP:
	default:
		v.add(path+".kind", "%q is not a health check kind (use %s, %s or %s)", h.Kind, HealthHTTP, HealthTCP, HealthNone)
		return
	}
	v.positive(path+".interval", h.Interval)
	v.positive(path+".timeout", h.Timeout)
	if h.Timeout > h.Interval && h.Interval > 0 {
		v.add(path+".timeout", "(%s) must not exceed interval (%s)", h.Timeout, h.Interval)
	}
	if h.Rise < 1 || h.Rise > 100 {
		v.add(path+".rise", "must be from 1 to 100, got %d", h.Rise)
	}
	if h.Fall < 1 || h.Fall > 100 {
		v.add(path+".fall", "must be from 1 to 100, got %d", h.Fall)
	}
}

func (v *validator) nodes(path string, nodes []Node) {
	if len(nodes) == 0 {
		v.add(path, "a pool needs at least one node")
	}
	names := map[string]int{}
	urls := map[string]int{}
	for i, n := range nodes {
		np := fmt.Sprintf("%s[%d]", path, i)
		v.name(np+".name", n.Name)
		if j, dup := names[n.Name]; dup && n.Name != "" {
			v.add(np+".name", "%q is already the name of %s[%d]", n.Name, path, j)
		} else {
			names[n.Name] = i
		}
		if err := checkNodeURL(n.URL); err != nil {
			v.add(np+".url", "%q: %v", n.URL, err)
		} else if j, dup := urls[n.URL]; dup {
			v.add(np+".url", "%q is already the url of %s[%d]", n.URL, path, j)
		} else {
			urls[n.URL] = i
		}
		if n.Weight < 1 || n.Weight > 1000 {
			v.add(np+".weight", "must be from 1 to 1000, got %d", n.Weight)
		}
	}
}

// checkNodeURL accepts http(s)://host[:port] with nothing after it: sidpin forwards the client's path unchanged.
func checkNodeURL(raw string) error {
	if raw == "" {
		return fmt.Errorf("is required (e.g. http://127.0.0.1:3101)")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("scheme must be http or https")
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("has no host")
	case u.User != nil:
		return fmt.Errorf("must not carry user info")
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
		return fmt.Errorf("must not have a path, query or fragment: sidpin forwards the request path unchanged")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q is not a number from 1 to 65535", p)
		}
	}
	return nil
}

func (v *validator) limits(l Limits) {
	if l.MaxHeaderBytes < 1<<10 || l.MaxHeaderBytes > 1<<20 {
		v.add("limits.max_header_bytes", "must be from 1024 to 1048576, got %d", l.MaxHeaderBytes)
	}
	if l.MaxBodyBytes < 1<<10 || l.MaxBodyBytes > 1<<30 {
		v.add("limits.max_body_bytes", "must be from 1024 to 1073741824, got %d", l.MaxBodyBytes)
	}
	if l.MaxConnections < 1 {
		v.add("limits.max_connections", "must be at least 1, got %d", l.MaxConnections)
	}
	v.perClient(l.PerClient)
}

func (v *validator) perClient(p PerClient) {
	if p.MaxConnections < 0 {
		v.add("limits.per_client.max_connections", "must not be negative (0 turns the cap off), got %d", p.MaxConnections)
	}
	if p.HandshakeRate < 0 || p.HandshakeRate > 1e6 {
		v.add("limits.per_client.handshake_rate", "must be from 0 (off) to 1000000 per second, got %v", p.HandshakeRate)
	}
	if p.HandshakeRate > 0 && (p.HandshakeBurst < 1 || p.HandshakeBurst > 1_000_000) {
		v.add("limits.per_client.handshake_burst", "must be from 1 to 1000000 with a handshake_rate, got %d", p.HandshakeBurst)
	}
	if p.IPv6Prefix < 1 || p.IPv6Prefix > 128 {
		v.add("limits.per_client.ipv6_prefix", "must be from 1 to 128, got %d", p.IPv6Prefix)
	}
}

func (v *validator) timeouts(t Timeouts) {
	v.positive("timeouts.client_read", t.ClientRead)
	v.positive("timeouts.client_idle", t.ClientIdle)
	v.positive("timeouts.upstream_dial", t.UpstreamDial)
	v.positive("timeouts.upstream_response", t.UpstreamResponse)
	v.positive("timeouts.websocket_idle", t.WebSocketIdle)
	v.positive("timeouts.pin_slack", t.PinSlack)
	v.positive("timeouts.shutdown_grace", t.ShutdownGrace)
	v.positive("timeouts.handshake", t.Handshake)
	v.positive("timeouts.upgrade_probe", t.UpgradeProbe)
	v.positive("timeouts.max_pin_lifetime", t.MaxPinLifetime)
	if t.ShutdownDelay < 0 || (t.ShutdownGrace > 0 && t.ShutdownDelay >= t.ShutdownGrace) {
		v.add("timeouts.shutdown_delay", "must be from 0 to less than timeouts.shutdown_grace (%s), got %s", t.ShutdownGrace, t.ShutdownDelay)
	}
	if t.MaxPinLifetime > 0 && t.MaxPinLifetime <= t.PinSlack {
		v.add("timeouts.max_pin_lifetime", "must be longer than timeouts.pin_slack (%s), got %s", t.PinSlack, t.MaxPinLifetime)
	}
}

func (v *validator) log(l Log) {
	switch l.Level {
	case "debug", "info", "warn", "error":
	default:
		v.add("log.level", "%q is not a level (use debug, info, warn or error)", l.Level)
	}
	switch l.Format {
	case "text", "json":
	default:
		v.add("log.format", "%q is not a format (use text or json)", l.Format)
	}
}
