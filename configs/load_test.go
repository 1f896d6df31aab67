package configs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// minimal is the smallest valid config; cases below add or replace parts of it.
const minimal = `
pools:
  - name: chat
    nodes:
      - {name: n1, url: "http://127.0.0.1:3101"}
`

func TestExamplesLoad(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) < 3 {
		t.Fatalf("expected at least demo, redis and reference examples, got %v (%v)", files, err)
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			cfg, err := Load(f)
			if err != nil {
				t.Fatalf("example does not load:\n%v", err)
			}
			if len(cfg.Pools) == 0 {
				t.Fatal("example has no pools")
			}
		})
	}
}

func TestDefaultsApply(t *testing.T) {
	cfg, err := Parse("min.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Pools[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", cfg.Listen, "127.0.0.1:3200"},
		{"store", cfg.Store.Kind, StoreMemory},
		{"path_prefix", p.Match.PathPrefix, "/"},
		{"engineio_path", p.EngineIOPath, "/socket.io/"},
		{"balance", p.Balance, BalanceLeastSessions},
		{"on_node_removed", p.OnNodeRemoved, RemovedDrain},
		{"health.kind", p.Health.Kind, HealthTCP},
		{"health.interval", p.Health.Interval.D(), 2 * time.Second},
		{"weight", p.Nodes[0].Weight, 1},
		{"upstream_response", cfg.Timeouts.UpstreamResponse.D(), 60 * time.Second},
		{"max_body", cfg.Limits.MaxBodyBytes, 2 << 20},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestExplicitValuesOverrideDefaults(t *testing.T) {
	cfg, err := Parse("x.yaml", []byte(`
listen: 0.0.0.0:80
timeouts: {upstream_response: 90s}
pools:
  - name: chat
    balance: round-robin
    health: {kind: tcp, interval: 5s}
    nodes:
      - {name: n1, url: "http://10.0.0.1:3101", weight: 7, drain: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	n := cfg.Pools[0].Nodes[0]
	if cfg.Listen != "0.0.0.0:80" || n.Weight != 7 || !n.Drain || cfg.Pools[0].Balance != BalanceRoundRobin ||
		cfg.Pools[0].Health.Interval.D() != 5*time.Second || cfg.Pools[0].Health.Rise != 2 ||
		cfg.Timeouts.UpstreamResponse.D() != 90*time.Second || cfg.Timeouts.ClientIdle.D() != 90*time.Second {
		t.Fatalf("unexpected config: %+v", cfg)
	}
}

// TestValidationRules has one case per rule: the YAML, and the path and words its error must carry.
func TestValidationRules(t *testing.T) {
	node := `{name: n1, url: "http://127.0.0.1:3101"}`
	pool := func(extra string) string {
		return "pools:\n  - name: chat\n" + extra + "    nodes:\n      - " + node + "\n"
	}
	cases := []struct {
		name, yaml, path, words string
	}{
		{"empty file", ``, "", "empty"},
		{"yaml syntax", "pools: [\n", "", "yaml"},
		{"two documents", minimal + "---\nlisten: x\n", "", "more than one YAML document"},
		{"unknown top field", minimal + "listn: 1\n", "listn", "unknown field"},
		{"unknown nested field", pool("    balanc: x\n"), "pools[0].balanc", "unknown field"},
		{"unknown node field", "pools:\n  - name: chat\n    nodes:\n      - {name: n1, url: \"http://a:1\", wieght: 2}\n", "pools[0].nodes[0].wieght", "unknown field"},
		{"duplicate key", minimal + "listen: a:1\nlisten: b:2\n", "listen", "already defined at line"},
		{"wrong shape", "pools: chat\n", "pools", "must be a list"},
		{"scalar for mapping", minimal + "admin: 3\n", "admin", "must be a mapping"},
		{"list for scalar", minimal + "listen: [a]\n", "listen", "single value"},
		{"bad int", pool("") + "limits: {max_body_bytes: lots}\n", "limits.max_body_bytes", "not a whole number"},
		{"bad bool", "pools:\n  - name: chat\n    nodes:\n      - {name: n1, url: \"http://a:1\", drain: maybe}\n", "pools[0].nodes[0].drain", "not a boolean"},
		{"bad duration", minimal + "timeouts: {client_read: 10}\n", "timeouts.client_read", "not a duration"},
		{"negative duration", minimal + "timeouts: {client_idle: -1s}\n", "timeouts.client_idle", "positive"},
		{"listen not host:port", minimal + "listen: localhost\n", "listen", "host:port"},
		{"listen bad port", minimal + "listen: 127.0.0.1:99999\n", "listen", "port"},
		{"listen empty", minimal + "listen: \"\"\n", "listen", "required"},
		{"tls half", minimal + "tls: {cert_file: a.pem}\n", "tls", "together"},
		{"tls missing file", minimal + "tls: {cert_file: /nonexistent.pem, key_file: /nonexistent.key}\n", "tls.cert_file", "cannot read"},
		{"admin bad addr", minimal + "admin: {listen: nope}\n", "admin.listen", "host:port"},
		{"admin token env name", minimal + "admin: {listen: 127.0.0.1:1, token_env: 'A-B'}\n", "admin.token_env", "environment variable name"},
		{"admin open without token", minimal + "admin: {listen: 0.0.0.0:3201}\n", "admin.token_env", "required"},
		{"store kind", minimal + "store: {kind: etcd}\n", "store.kind", "not a store kind"},
		{"max pins", minimal + "store: {memory: {max_pins: 0}}\n", "store.memory.max_pins", "at least 1"},
		{"redis no addrs", minimal + "store: {kind: redis}\n", "store.redis.addrs", "at least one"},
		{"redis bad addr", minimal + "store: {kind: redis, redis: {addrs: [x]}}\n", "store.redis.addrs[0]", "host:port"},
		{"redis cluster+sentinel", minimal + "store: {kind: redis, redis: {addrs: [a:1], cluster: true, master_name: m}}\n", "store.redis.cluster", "Sentinel"},
		{"redis db range", minimal + "store: {kind: redis, redis: {addrs: [a:1], db: 16}}\n", "store.redis.db", "0 to 15"},
		{"redis cluster db", minimal + "store: {kind: redis, redis: {addrs: [a:1], cluster: true, db: 2}}\n", "store.redis.db", "Cluster"},
		{"redis password env", minimal + "store: {kind: redis, redis: {addrs: [a:1], password_env: '1X'}}\n", "store.redis.password_env", "environment variable"},
		{"redis prefix braces", minimal + "store: {kind: redis, redis: {addrs: [a:1], key_prefix: '{x}'}}\n", "store.redis.key_prefix", "braces"},
		{"redis timeout", minimal + "store: {kind: redis, redis: {addrs: [a:1], read_timeout: 0s}}\n", "store.redis.read_timeout", "positive"},
		{"redis pool size", minimal + "store: {kind: redis, redis: {addrs: [a:1], pool_size: -1}}\n", "store.redis.pool_size", "negative"},
		{"no pools", "listen: 127.0.0.1:1\n", "pools", "at least one pool"},
		{"pool name", "pools:\n  - name: 'a b'\n    nodes:\n      - " + node + "\n", "pools[0].name", "letters"},
		{"pool name missing", "pools:\n  - nodes:\n      - " + node + "\n", "pools[0].name", "letters"},
		{"duplicate pool name", pool("") + "  - name: chat\n    match: {path_prefix: /other/}\n    engineio_path: /other/socket.io/\n    nodes:\n      - " + node + "\n", "pools[1].name", "already the name of pools[0]"},
		{"path claimed twice", pool("") + "  - name: chat2\n    nodes:\n      - " + node + "\n", "pools[1].match", "already claimed by pools[0]"},
		{"path prefix slash", pool("    match: {path_prefix: chat}\n"), "pools[0].match.path_prefix", "start with /"},
		{"host with scheme", pool("    match: {host: 'http://x'}\n"), "pools[0].match.host", "bare host"},
		{"engineio path slash", pool("    engineio_path: socket.io\n"), "pools[0].engineio_path", "start with /"},
		{"engineio path outside prefix", pool("    match: {path_prefix: /chat/}\n"), "pools[0].engineio_path", "outside"},
		{"balance", pool("    balance: fastest\n"), "pools[0].balance", "not a policy"},
		{"on_node_removed", pool("    on_node_removed: kill\n"), "pools[0].on_node_removed", "not a choice"},
		{"migrate_rate", pool("    migrate_rate: 0\n"), "pools[0].migrate_rate", "above 0"},
		{"health kind", pool("    health: {kind: grpc}\n"), "pools[0].health.kind", "not a health check kind"},
		{"health path", pool("    health: {kind: http, path: healthz}\n"), "pools[0].health.path", "start with /"},
		{"health status", pool("    health: {kind: http, expect_status: 700}\n"), "pools[0].health.expect_status", "100 to 599"},
		{"health draining status", pool("    health: {kind: http, expect_status: 200, draining_status: 200}\n"), "pools[0].health.draining_status", "other than expect_status"},
		{"health interval", pool("    health: {interval: 0s}\n"), "pools[0].health.interval", "positive"},
		{"health timeout over interval", pool("    health: {interval: 1s, timeout: 2s}\n"), "pools[0].health.timeout", "must not exceed"},
		{"health rise", pool("    health: {rise: 0}\n"), "pools[0].health.rise", "1 to 100"},
		{"health fall", pool("    health: {fall: 101}\n"), "pools[0].health.fall", "1 to 100"},
		{"no nodes", "pools:\n  - name: chat\n    nodes: []\n", "pools[0].nodes", "at least one node"},
		{"node name", "pools:\n  - name: chat\n    nodes:\n      - {name: '', url: 'http://a:1'}\n", "pools[0].nodes[0].name", "letters"},
		{"duplicate node name", "pools:\n  - name: chat\n    nodes:\n      - {name: a, url: 'http://a:1'}\n      - {name: a, url: 'http://a:2'}\n", "pools[0].nodes[1].name", "already the name"},
		{"duplicate node url", "pools:\n  - name: chat\n    nodes:\n      - {name: a, url: 'http://a:1'}\n      - {name: b, url: 'http://a:1'}\n", "pools[0].nodes[1].url", "already the url"},
		{"url missing", "pools:\n  - name: chat\n    nodes:\n      - {name: a}\n", "pools[0].nodes[0].url", "required"},
		{"url scheme", "pools:\n  - name: chat\n    nodes:\n      - {name: a, url: 'htp://a:1'}\n", "pools[0].nodes[0].url", "http or https"},
		{"url no host", "pools:\n  - name: chat\n    nodes:\n      - {name: a, url: 'http:///x'}\n", "pools[0].nodes[0].url", "no host"},
		{"url path", "pools:\n  - name: chat\n    nodes:\n      - {name: a, url: 'http://a:1/socket.io/'}\n", "pools[0].nodes[0].url", "path"},
		{"url user", "pools:\n  - name: chat\n    nodes:\n      - {name: a, url: 'http://u:p@a:1'}\n", "pools[0].nodes[0].url", "user info"},
		{"url port", "pools:\n  - name: chat\n    nodes:\n      - {name: a, url: 'http://a:0'}\n", "pools[0].nodes[0].url", "port"},
		{"url unparsable", "pools:\n  - name: chat\n    nodes:\n      - {name: a, url: 'http://a b:1'}\n", "pools[0].nodes[0].url", "not a URL"},
		{"weight zero", "pools:\n  - name: chat\n    nodes:\n      - {name: a, url: 'http://a:1', weight: 0}\n", "pools[0].nodes[0].weight", "1 to 1000"},
		{"header limit", minimal + "limits: {max_header_bytes: 10}\n", "limits.max_header_bytes", "1024"},
		{"body limit", minimal + "limits: {max_body_bytes: 10}\n", "limits.max_body_bytes", "1024"},
		{"connections", minimal + "limits: {max_connections: 0}\n", "limits.max_connections", "at least 1"},
		{"per-client connections", minimal + "limits: {per_client: {max_connections: -1}}\n", "limits.per_client.max_connections", "negative"},
		{"per-client rate", minimal + "limits: {per_client: {handshake_rate: -0.5}}\n", "limits.per_client.handshake_rate", "from 0"},
		{"per-client rate not a number", minimal + "limits: {per_client: {handshake_rate: fast}}\n", "limits.per_client.handshake_rate", "not a number"},
		{"per-client burst", minimal + "limits: {per_client: {handshake_burst: 0}}\n", "limits.per_client.handshake_burst", "from 1"},
		{"per-client ipv6 prefix", minimal + "limits: {per_client: {ipv6_prefix: 129}}\n", "limits.per_client.ipv6_prefix", "1 to 128"},
		{"handshake timeout", minimal + "timeouts: {handshake: 0s}\n", "timeouts.handshake", "positive"},
		{"probe timeout", minimal + "timeouts: {upgrade_probe: -1s}\n", "timeouts.upgrade_probe", "positive"},
		{"pin lifetime under slack", minimal + "timeouts: {max_pin_lifetime: 10s, pin_slack: 15s}\n", "timeouts.max_pin_lifetime", "longer than"},
		{"shutdown delay over grace", minimal + "timeouts: {shutdown_delay: 40s}\n", "timeouts.shutdown_delay", "less than"},
		{"upstream tls without an https node", "pools:\n  - name: chat\n    tls: {server_name: x}\n    nodes:\n      - {name: a, url: 'http://a:1'}\n", "pools[0].tls", "no node"},
		{"upstream tls cert without key", "pools:\n  - name: chat\n    tls: {cert_file: /etc/hostname}\n    nodes:\n      - {name: a, url: 'https://a:1'}\n", "pools[0].tls", "together"},
		{"upstream tls missing CA", "pools:\n  - name: chat\n    tls: {ca_file: /no/such/ca.pem}\n    nodes:\n      - {name: a, url: 'https://a:1'}\n", "pools[0].tls", "ca_file"},
		{"upstream tls CA not PEM", "pools:\n  - name: chat\n    tls: {ca_file: /etc/hostname}\n    nodes:\n      - {name: a, url: 'https://a:1'}\n", "pools[0].tls", "no PEM"},
		{"discovery and nodes", "pools:\n  - name: chat\n    discovery: {name: chat.default.svc, port: 3000}\n    nodes:\n      - " + node + "\n", "pools[0].nodes", "must be empty"},
		{"discovery name and srv", "pools:\n  - name: chat\n    discovery: {name: a.b, port: 1, srv: _c._tcp.b}\n", "pools[0].discovery", "not both"},
		{"discovery bad name", "pools:\n  - name: chat\n    discovery: {name: 'a..b', port: 1}\n", "pools[0].discovery.name", "not a DNS name"},
		{"discovery port missing", "pools:\n  - name: chat\n    discovery: {name: chat.default.svc}\n", "pools[0].discovery.port", "1-65535"},
		{"discovery srv with port", "pools:\n  - name: chat\n    discovery: {srv: _chat._tcp.x, port: 80}\n", "pools[0].discovery.port", "must not be set"},
		{"discovery scheme", "pools:\n  - name: chat\n    discovery: {name: a.b, port: 1, scheme: ws}\n", "pools[0].discovery.scheme", "not http or https"},
		{"discovery resolver", "pools:\n  - name: chat\n    discovery: {name: a.b, port: 1, resolver: kube-dns}\n", "pools[0].discovery.resolver", "ip:port"},
		{"discovery interval", "pools:\n  - name: chat\n    discovery: {name: a.b, port: 1, interval: 100ms}\n", "pools[0].discovery.interval", "at least 1s"},
		{"discovery timeout", "pools:\n  - name: chat\n    discovery: {name: a.b, port: 1, interval: 2s, timeout: 3s}\n", "pools[0].discovery.timeout", "at most the interval"},
		{"proxy protocol peer", minimal + "clients: {proxy_protocol: [10.0.0.0/8, nlb]}\n", "clients.proxy_protocol[1]", "not an IP address or a CIDR"},
		{"trusted proxy", minimal + "clients: {trusted_proxies: ['10.0.0.0/33']}\n", "clients.trusted_proxies[0]", "not an IP address or a CIDR"},
		{"log level", minimal + "log: {level: loud}\n", "log.level", "not a level"},
		{"log format", minimal + "log: {format: xml}\n", "log.format", "not a format"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("case.yaml", []byte(c.yaml))
			var errs *Errors
			if !errors.As(err, &errs) {
				t.Fatalf("want *Errors, got %v", err)
			}
			for _, fe := range errs.List {
				if fe.Path == c.path && strings.Contains(fe.Msg, c.words) {
					if !strings.Contains(errs.Error(), "case.yaml") {
						t.Fatalf("message does not name the file: %s", errs.Error())
					}
					return
				}
			}
			t.Fatalf("no error at %q containing %q; got:\n%v", c.path, c.words, err)
		})
	}
}

func TestAllErrorsReportedAtOnce(t *testing.T) {
	_, err := Parse("bad.yaml", []byte(`
listen: nope
log: {level: loud}
pools:
  - name: chat
    balance: fastest
    nodes:
      - {name: a, url: "ftp://x"}
      - {name: a, url: "http://y:1", weight: 0}
`))
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("want *Errors, got %v", err)
	}
	want := []string{"listen", "log.level", "pools[0].balance", "pools[0].nodes[0].url", "pools[0].nodes[1].name", "pools[0].nodes[1].weight"} // file order
	if len(errs.List) != len(want) {
		t.Fatalf("want %d errors, got %d:\n%v", len(want), len(errs.List), err)
	}
	for i, path := range want {
		if errs.List[i].Path != path {
			t.Errorf("error %d at %q, want %q", i, errs.List[i].Path, path)
		}
	}
	// Lines point into the file: nodes[1].weight is on line 9.
	if got := errs.List[5].Line; got != 9 {
		t.Errorf("weight error on line %d, want 9\n%v", got, err)
	}
	if !strings.Contains(err.Error(), "bad.yaml:9: pools[0].nodes[1].weight: must be from 1 to 1000, got 0") {
		t.Errorf("unexpected rendering:\n%v", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none.yaml"))
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "none.yaml") {
		t.Fatalf("want a not-exist error naming the file, got %v", err)
	}
}

func TestAliasesAndNulls(t *testing.T) {
	cfg, err := Parse("a.yaml", []byte(`
x-node: &n {name: n1, url: "http://127.0.0.1:1"}
pools:
  - name: chat
    health: ~
    nodes: [*n]
`))
	if err == nil {
		t.Fatalf("unknown x-node key must be refused, got %+v", cfg)
	}
	cfg, err = Parse("a.yaml", []byte("pools:\n  - name: chat\n    health: ~\n    nodes: [&n {name: n1, url: \"http://127.0.0.1:1\"}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Pools[0].Health.Kind != HealthTCP {
		t.Fatalf("null must keep defaults, got %+v", cfg.Pools[0].Health)
	}
}

func FuzzParse(f *testing.F) {
	examples, _ := filepath.Glob("*.yaml")
	for _, name := range examples {
		data, _ := os.ReadFile(name)
		f.Add(data)
	}
	f.Add([]byte(minimal))
	f.Add([]byte("pools: [{name: a, nodes: [{name: b, url: 'http://c:1', weight: -1}]}]\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("pools:\n  - &p {name: x}\n  - *p\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		if err == nil && (cfg == nil || len(cfg.Pools) == 0) {
			t.Fatalf("accepted a config without pools")
		}
		if err != nil && err.Error() == "" {
			t.Fatalf("empty error message")
		}
	})
}
