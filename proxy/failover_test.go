package proxy_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sidpin/sidpin/affinity"
	"github.com/sidpin/sidpin/backends"
	"github.com/sidpin/sidpin/chatnode"
	"github.com/sidpin/sidpin/configs"
	"github.com/sidpin/sidpin/proxy"
)

// stoppableNode is a real chat node the test can stop.
type stoppableNode struct {
	url  string
	stop func()
}

func startStoppableNode(t *testing.T, name string) stoppableNode {
	t.Helper()
	return startStoppableNodeWith(t, chatnode.NodeConfig{}, name)
}

// startStoppableNodeWith is startStoppableNode with the node's config.
func startStoppableNodeWith(t *testing.T, cfg chatnode.NodeConfig, name string) stoppableNode {
	t.Helper()
	cfg.Name, cfg.Logger = name, quiet
	n, err := chatnode.NewNode(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	go n.Serve(ln)
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		n.Shutdown(ctx)
	}
	t.Cleanup(stop)
	return stoppableNode{url: "http://" + ln.Addr().String(), stop: stop}
}

// startManagedProxy runs a proxy with its health checks and node sync, and returns it with its URL.
func startManagedProxy(t *testing.T, urls []string, tweak func(*configs.Config)) (*proxy.Proxy, string, *affinity.MemoryStore) {
	t.Helper()
	p, base, store, _ := startManagedProxyWith(t, urls, tweak)
	return p, base, store
}

// startManagedProxyWith is startManagedProxy with proxy options, also returning a function that shuts
// the proxy down (once; the test's end calls it too).
func startManagedProxyWith(t *testing.T, urls []string, tweak func(*configs.Config), opts ...proxy.Option) (*proxy.Proxy, string, *affinity.MemoryStore, func()) {
	t.Helper()
	cfg, err := configs.QuickStart("127.0.0.1:0", urls, "/socket.io/")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Pools[0].Health = configs.Health{Kind: configs.HealthHTTP, Path: "/healthz", ExpectStatus: 200,
		Interval: configs.Duration(30 * time.Millisecond), Timeout: configs.Duration(30 * time.Millisecond), Rise: 1, Fall: 1}
	if tweak != nil {
		tweak(cfg)
	}
	store, err := affinity.NewMemoryStore(affinity.MemoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := proxy.New(cfg, store, quiet, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.Start(ctx)
	ln := listen(t)
	go p.Serve(ln)
	var once sync.Once
	stop := func() {
		once.Do(func() {
			sctx, scancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer scancel()
			p.Shutdown(sctx)
			cancel()
			store.Close()
		})
	}
	t.Cleanup(stop)
	return p, "http://" + ln.Addr().String(), store, stop
}

// TestDeadNodeSessionsFailOver: when a node goes down its pins are purged and its sessions' requests
// get "Session ID unknown" from sidpin at once; new sessions go to the live nodes.
func TestDeadNodeSessionsFailOver(t *testing.T) {
	nodes := []stoppableNode{startStoppableNode(t, "node1"), startStoppableNode(t, "node2")}
	p, base, store := startManagedProxy(t, []string{nodes[0].url, nodes[1].url}, nil)
	onNode := map[string][]string{}
	for i := 0; i < 10; i++ {
		sid, url := openSession(t, base, "4")
		node := connectChat(t, url)
		onNode[node] = append(onNode[node], sid)
	}
	if len(onNode["node1"]) == 0 || len(onNode["node2"]) == 0 {
		t.Fatalf("sessions did not spread: %v", onNode)
	}
	nodes[0].stop()
	dead := p.Nodes().Node("default", "node1")
	waitFor(t, "node1 down", func() bool { return dead.State() == backends.StateDown })
	waitFor(t, "node1's pins purged", func() bool {
		counts, _ := store.CountByNode(context.Background(), "default")
		return counts["node1"] == 0 && counts["node2"] == len(onNode["node2"])
	})
	sid := onNode["node1"][0]
	start := time.Now()
	r := get(t, base+"/socket.io/?EIO=4&transport=polling&sid="+sid)
	if r.status != 400 || !strings.Contains(r.body, `"code":1`) {
		t.Fatalf("request of a dead node's session: %d %q, want 400 code 1", r.status, r.body)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("the answer took %v: it must not wait on the dead node", took)
	}
	for i := 0; i < 5; i++ {
		_, url := openSession(t, base, "4")
		if node := connectChat(t, url); node != "node2" {
			t.Fatalf("new session on %s, want node2 (the live one)", node)
		}
	}
	live := onNode["node2"][0]
	if r := post(t, base+"/socket.io/?EIO=4&transport=polling&sid="+live, "6"); r.status != 200 {
		t.Fatalf("a session of the live node: %d %q", r.status, r.body)
	}
}

// TestDrainSharedThroughStore: a drain mark set through the proxy keeps new sessions off the node
// and leaves its sessions working.
func TestDrainSharedThroughStore(t *testing.T) {
	nodes := []stoppableNode{startStoppableNode(t, "node1"), startStoppableNode(t, "node2")}
	p, base, store := startManagedProxy(t, []string{nodes[0].url, nodes[1].url}, nil)
	var onNode1 string
	for i := 0; onNode1 == ""; i++ {
		if i == 10 {
			t.Fatal("10 sessions, none on node1")
		}
		sid, url := openSession(t, base, "4")
		if connectChat(t, url) == "node1" {
			onNode1 = sid
		}
	}
	if err := p.SetDrain(context.Background(), "default", "node1", true); err != nil {
		t.Fatal(err)
	}
	if drained, _ := store.Drained(context.Background()); len(drained) != 1 || drained[0].Node != "node1" {
		t.Fatalf("drain mark in the store: %v", drained)
	}
	for i := 0; i < 6; i++ {
		_, url := openSession(t, base, "4")
		if node := connectChat(t, url); node != "node2" {
			t.Fatalf("new session on %s while node1 drains", node)
		}
	}
	if r := post(t, base+"/socket.io/?EIO=4&transport=polling&sid="+onNode1, "6"); r.status != 200 {
		t.Fatalf("a draining node's session: %d %q", r.status, r.body)
	}
	// Another instance's mark (written straight to the store) is picked up by the sync.
	if err := store.SetDrain(context.Background(), affinity.NodeRef{Pool: "default", Node: "node1"}, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "node1 undrained by the store's mark", func() bool { return p.Nodes().Node("default", "node1").State() == backends.StateUp })
}

// TestFrozenNodeReleasesHeldRequests: a node that accepts connections but answers nothing (a frozen
// process) fails its checks; the requests held on it end at once with "Session ID unknown".
func TestFrozenNodeReleasesHeldRequests(t *testing.T) {
	frozen := listen(t)
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := frozen.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // read nothing, answer nothing
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		frozen.Close()
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	})
	live := startStoppableNode(t, "node2")
	p, base, store := startManagedProxy(t, []string{"http://" + frozen.Addr().String(), live.url}, func(c *configs.Config) {
		c.Pools[0].Health.Interval = configs.Duration(200 * time.Millisecond)
		c.Pools[0].Health.Timeout = configs.Duration(100 * time.Millisecond)
		c.Pools[0].Health.Fall = 2
	})
	if _, _, err := store.Pin(context.Background(), affinity.Pin{SID: "frozen-session", Pool: "default", Node: "node1",
		Transport: affinity.TransportPolling, EIO: 4, TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := get(t, base+"/socket.io/?EIO=4&transport=polling&sid=frozen-session")
	if r.status != 400 || !strings.Contains(r.body, `"code":1`) {
		t.Fatalf("held request on a frozen node: %d %q, want 400 code 1", r.status, r.body)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("the held request ended after %v; the node was down after about 0.5s", took)
	}
	if p.Nodes().Node("default", "node1").State() != backends.StateDown {
		t.Fatal("the frozen node must be down")
	}
}

// TestReloadKeepsRestartFields: a reload applies live fields at once and keeps restart-only ones at
// their running value (they are reported), so the config in force says what runs.
func TestReloadKeepsRestartFields(t *testing.T) {
	n := startStoppableNode(t, "node1")
	p, _, _ := startManagedProxy(t, []string{n.url}, nil)
	next := *p.Config()
	next.Timeouts.ClientIdle = configs.Duration(time.Second)           // restart: the server took it at start
	next.Timeouts.UpstreamResponse = configs.Duration(7 * time.Minute) // live
	next.Limits.PerClient.HandshakeRate = 1                            // restart
	if _, err := p.Reload(&next); err != nil {
		t.Fatal(err)
	}
	got := p.Config()
	if got.Timeouts.ClientIdle == next.Timeouts.ClientIdle || got.Limits.PerClient.HandshakeRate == 1 {
		t.Fatalf("restart-only fields changed by a reload: %+v %+v", got.Timeouts, got.Limits.PerClient)
	}
	if got.Timeouts.UpstreamResponse != next.Timeouts.UpstreamResponse {
		t.Fatal("a live field was not applied")
	}
}
