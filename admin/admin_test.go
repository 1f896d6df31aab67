package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sidpin/sidpin/admin"
	"github.com/sidpin/sidpin/affinity"
	"github.com/sidpin/sidpin/configs"
	"github.com/sidpin/sidpin/proxy"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type fixture struct {
	base   string
	store  *affinity.MemoryStore
	proxy  *proxy.Proxy
	server *admin.Server
}

// startAdmin runs an admin listener over a proxy of two nodes (nothing listens at their
// addresses: these tests read and drive the proxy's state, not traffic).
func startAdmin(t *testing.T, token string) fixture {
	t.Helper()
	return startAdminOn(t, token, "http", listenT(t))
}

// startAdminOn is startAdmin on a listener of the caller's (a TLS one, say) with the base URL's scheme.
func startAdminOn(t *testing.T, token, scheme string, ln net.Listener) fixture {
	t.Helper()
	cfg, err := configs.QuickStart("127.0.0.1:0", []string{"http://127.0.0.1:1", "http://127.0.0.1:2"}, "/socket.io/")
	if err != nil {
		t.Fatal(err)
	}
	store, err := affinity.NewMemoryStore(affinity.MemoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := proxy.New(cfg, store, quiet)
	if err != nil {
		t.Fatal(err)
	}
	s := admin.New(p, store, token, quiet)
	go s.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s.Shutdown(ctx)
		store.Close()
	})
	return fixture{base: scheme + "://" + ln.Addr().String(), store: store, proxy: p, server: s}
}

func call(t *testing.T, method, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestTokenGuardsEverythingButTheProbes(t *testing.T) {
	f := startAdmin(t, "s3cret")
	cases := []struct {
		method, path, token string
		want                int
	}{
		{"GET", "/healthz", "", 200},
		{"GET", "/api/nodes", "", 401},
		{"GET", "/api/nodes", "wrong", 401},
		{"GET", "/api/nodes", "s3cre", 401},
		{"POST", "/api/nodes/default/node1/drain", "", 401},
		{"GET", "/api/nodes", "s3cret", 200},
		{"GET", "/api/nodes", "s3cret1", 401},
		{"GET", "/api/nodes", "s3creT", 401}, // same length, last byte wrong
		{"GET", "/api/nope", "s3cret", 404},
		{"GET", "/metrics", "", 401},
		{"GET", "/metrics", "s3cret", 200},
		{"GET", "/readyz", "", 200}, // a balancer's check: it says ready or draining, nothing more
		{"GET", "/api/pins", "", 401},
		{"DELETE", "/api/pins/x", "", 401},
	}
	for _, c := range cases {
		status, body := call(t, c.method, f.base+c.path, c.token)
		if status != c.want {
			t.Errorf("%s %s token %q: %d %q, want %d", c.method, c.path, c.token, status, body, c.want)
		}
		if status == 401 && (strings.Contains(body, "node1") || strings.Contains(body, "sidpin_")) {
			t.Errorf("a refused request leaked data: %q", body)
		}
		if c.path == "/metrics" && status == 200 && !strings.Contains(body, "sidpin_node_state{") {
			t.Errorf("/metrics lacks sidpin's metrics: %.300q", body)
		}
	}
}

// TestReadyzSaysDraining: once the proxy shuts down, /readyz answers 503 "draining", so a balancer
// checking it sends new connections elsewhere while sidpin still serves (timeouts.shutdown_delay).
func TestReadyzSaysDraining(t *testing.T) {
	f := startAdmin(t, "s3cret")
	if status, body := call(t, "GET", f.base+"/readyz", ""); status != 200 || !strings.Contains(body, `"ready"`) {
		t.Fatalf("before shutdown: %d %q", status, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go f.proxy.Shutdown(ctx)
	deadline := time.Now().Add(3 * time.Second)
	for {
		status, body := call(t, "GET", f.base+"/readyz", "")
		if status == 503 && strings.Contains(body, `"draining"`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("during shutdown: %d %q", status, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type nodesReply struct {
	Nodes []struct {
		Pool, Name, State string
		Draining          bool
		Sessions          int
	}
}

func TestNodesAndDrain(t *testing.T) {
	f := startAdmin(t, "")
	for i, node := range []string{"node1", "node1", "node2"} {
		if _, _, err := f.store.Pin(context.Background(), affinity.Pin{SID: "sid" + string(rune('a'+i)), Pool: "default", Node: node,
			Transport: affinity.TransportPolling, EIO: 4, TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	nodes := func() nodesReply {
		status, body := call(t, "GET", f.base+"/api/nodes", "")
		var r nodesReply
		if status != 200 || json.Unmarshal([]byte(body), &r) != nil || len(r.Nodes) != 2 {
			t.Fatalf("GET /api/nodes: %d %q", status, body)
		}
		return r
	}
	r := nodes()
	if r.Nodes[0].Name != "node1" || r.Nodes[0].Sessions != 2 || r.Nodes[1].Sessions != 1 || r.Nodes[0].State != "up" {
		t.Fatalf("nodes %+v", r.Nodes)
	}
	if _, metrics := call(t, "GET", f.base+"/metrics", ""); !strings.Contains(metrics, `sidpin_pool_sessions_per_node{pool="default"} 1.5`) ||
		!strings.Contains(metrics, "sidpin_instance_sessions 3") {
		t.Fatalf("the scaling gauges (3 sessions on 2 up nodes): %s", metrics)
	}
	if status, body := call(t, "POST", f.base+"/api/nodes/default/node1/drain", ""); status != 200 || !strings.Contains(body, `"state": "draining"`) {
		t.Fatalf("drain: %d %q", status, body)
	}
	if r = nodes(); r.Nodes[0].State != "draining" || !r.Nodes[0].Draining {
		t.Fatalf("after drain: %+v", r.Nodes[0])
	}
	if drained, _ := f.store.Drained(context.Background()); len(drained) != 1 {
		t.Fatalf("the drain mark must be in the pin store for the other instances: %v", drained)
	}
	if status, _ := call(t, "POST", f.base+"/api/nodes/default/node1/undrain", ""); status != 200 {
		t.Fatalf("undrain: %d", status)
	}
	if r = nodes(); r.Nodes[0].State != "up" {
		t.Fatalf("after undrain: %+v", r.Nodes[0])
	}
	if status, _ := call(t, "POST", f.base+"/api/nodes/default/nodeX/drain", ""); status != 404 {
		t.Fatalf("drain of an unknown node: %d", status)
	}
}

// TestReadyzIgnoresThePinTable: with Redis unreachable sidpin still serves (its cache, the
// write-behind), so /readyz stays 200 and says so in pin_table: a check that failed with Redis would
// take every instance out of a balancer at once during a Sentinel failover.
func TestReadyzIgnoresThePinTable(t *testing.T) {
	dead := listenT(t)
	addr := dead.Addr().String()
	dead.Close()
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialerRetries: 1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	store := affinity.NewRedisStore(rdb, affinity.RedisOptions{Prefix: "readyz:", OpTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { store.Close() })
	cfg, err := configs.QuickStart("127.0.0.1:0", []string{"http://127.0.0.1:1"}, "/socket.io/")
	if err != nil {
		t.Fatal(err)
	}
	p, err := proxy.New(cfg, store, quiet)
	if err != nil {
		t.Fatal(err)
	}
	s := admin.New(p, store, "tok", quiet)
	ln := listenT(t)
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	status, body := call(t, "GET", "http://"+ln.Addr().String()+"/readyz", "")
	if status != 200 || !strings.Contains(body, `"pin_table": "unavailable"`) {
		t.Fatalf("/readyz with Redis down: %d %q", status, body)
	}
}

// TestMigrateThroughTheAPI: POST .../migrate drains the node and ends its sessions at the rate (here
// faster than the test can watch: the node's two sessions end, the migration shows done in
// /api/nodes and on every instance's view of the pin store); bad rates and unknown nodes are refused.
func TestMigrateThroughTheAPI(t *testing.T) {
	f := startAdmin(t, "")
	for _, sid := range []string{"m1", "m2"} {
		if _, _, err := f.store.Pin(context.Background(), affinity.Pin{SID: sid, Pool: "default", Node: "node1",
			Transport: affinity.TransportWebSocket, EIO: 4, TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/api/nodes/default/node1/migrate", 400},
		{"/api/nodes/default/node1/migrate?rate=0", 400},
		{"/api/nodes/default/node1/migrate?rate=fast", 400},
		{"/api/nodes/default/node1/migrate?rate=1e9", 400},
		{"/api/nodes/default/nodeX/migrate?rate=10", 404},
	} {
		if status, body := call(t, "POST", f.base+tc.path, ""); status != tc.status {
			t.Fatalf("POST %s: %d %q, want %d", tc.path, status, body, tc.status)
		}
	}
	status, body := call(t, "POST", f.base+"/api/nodes/default/node1/migrate?rate=1000", "")
	if status != 202 || !strings.Contains(body, `"total": 2`) || !strings.Contains(body, `"rate": 1000`) {
		t.Fatalf("migrate: %d %q", status, body)
	}
	for end := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, body := call(t, "GET", f.base+"/api/nodes", "")
		if strings.Contains(body, `"done": true`) && strings.Contains(body, `"ended": 2`) && strings.Contains(body, `"state": "draining"`) {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("the migration did not show done: %s", body)
		}
	}
	if counts, _ := f.store.CountByNode(context.Background(), "default"); counts["node1"] != 0 {
		t.Fatalf("%d sessions left on the migrated node", counts["node1"])
	}
	if _, body := call(t, "GET", f.base+"/api/nodes", ""); strings.Count(body, `"safe_to_remove": true`) != 1 {
		t.Fatalf("only the migrated node (draining, no session) is safe to remove: %s", body)
	}
	if status, _ := call(t, "POST", f.base+"/api/nodes/default/node1/undrain", ""); status != 200 {
		t.Fatalf("undrain: %d", status)
	}
	if ms, _ := f.store.Migrations(context.Background()); len(ms) != 0 {
		t.Fatalf("undrain left the migration recorded: %+v", ms)
	}
}

// TestPagePictures: the page refreshes itself unless paused (the link toggles), draws each node's
// share of its pool as a bar, the history as charts whose lines have a point per sample, and the
// instances alive (heartbeat within 15 s) with their tunnels.
func TestPagePictures(t *testing.T) {
	f := startAdmin(t, "")
	for i, node := range []string{"node1", "node1", "node1", "node2"} {
		if _, _, err := f.store.Pin(context.Background(), affinity.Pin{SID: fmt.Sprintf("pic%d", i), Pool: "default", Node: node,
			Transport: affinity.TransportPolling, EIO: 4, TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	// Instances as their heartbeats in the shared table show them: two alive, one silent for an hour.
	for _, in := range []affinity.Instance{
		{ID: "host-a 127.0.0.1:3000", Tunnels: 7, Sessions: 4, Updated: time.Now()},
		{ID: "host-b 127.0.0.1:3000", Tunnels: 2, Sessions: 1, Updated: time.Now()},
		{ID: "host-gone 127.0.0.1:3000", Tunnels: 9, Updated: time.Now().Add(-time.Hour)},
	} {
		if err := f.store.Heartbeat(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond) // the memory table applies its queue
	admin.TakeSample(f.server)
	admin.TakeSample(f.server)
	status, page := call(t, "GET", f.base+"/", "")
	if status != 200 {
		t.Fatalf("page: %d", status)
	}
	for _, want := range []string{
		`<meta http-equiv="refresh" content="5">`, `href="/?pause=1">pause</a>`,
		`class="share-bar" width="75.0"`, `class="share-bar" width="25.0"`,
		`id="chart-sessions" data-samples="`, `data-series="default/node1"`, `id="chart-handshakes"`, `id="chart-unknown"`,
		`<tr data-instance="host-a 127.0.0.1:3000"><td><code>host-a 127.0.0.1:3000</code></td><td class="num">7</td><td class="num">4</td>`,
		`<tr data-instance="host-b 127.0.0.1:3000"><td><code>host-b 127.0.0.1:3000</code></td><td class="num">2</td><td class="num">1</td>`,
	} {
		if !strings.Contains(page, want) {
			t.Fatalf("the page lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, "host-gone") {
		t.Fatalf("the page lists an instance silent for an hour:\n%s", page)
	}
	// The sessions line of node1 ends at the right edge at 3 sessions, the chart's top.
	if !regexp.MustCompile(`points="[0-9., ]*720\.0,0\.0" data-series="default/node1"`).MatchString(page) {
		t.Fatalf("node1's line does not end at its 3 sessions:\n%s", page)
	}
	_, paused := call(t, "GET", f.base+"/?pause=1", "")
	if strings.Contains(paused, `http-equiv="refresh"`) || !strings.Contains(paused, `href="/">resume refreshing</a>`) {
		t.Fatalf("the paused page:\n%s", paused)
	}
}
