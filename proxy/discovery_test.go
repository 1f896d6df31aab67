package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidpin/sidpin/backends"
	"github.com/sidpin/sidpin/chatnode"
	"github.com/sidpin/sidpin/configs"
	"github.com/sidpin/sidpin/internal/testdnsmasq"
	"github.com/sidpin/sidpin/proxy"
)

// startChatNodeAt runs a chat node named name on addr until the test ends.
func startChatNodeAt(t *testing.T, name, addr string) {
	t.Helper()
	n, err := chatnode.NewNode(context.Background(), chatnode.NodeConfig{Name: name, Logger: quiet, PingInterval: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go n.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		n.Shutdown(ctx)
	})
}

// chatLoad runs polling chat sessions through base until stopped: short ones (a handshake, CONNECT,
// a few acknowledged echoes, the close packet) one after the other per worker, and long ones that
// echo for the whole run. It counts what went wrong and which node each session reached.
type chatLoad struct {
	base   string
	client *http.Client
	stop   chan struct{}
	halt   sync.Once
	wg     sync.WaitGroup
	errs   atomic.Int64
	mu     sync.Mutex
	last   error
	nodes  map[string]int // sessions opened per node, by the welcome's name
	long   map[string]int // long sessions per node
}

func startChatLoad(base string, short, long int) *chatLoad {
	l := &chatLoad{base: base, client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
		stop: make(chan struct{}), nodes: map[string]int{}, long: map[string]int{}}
	for range short {
		l.wg.Add(1)
		go l.run(false)
	}
	for range long {
		l.wg.Add(1)
		go l.run(true)
	}
	return l
}

func (l *chatLoad) run(long bool) {
	defer l.wg.Done()
	for {
		select {
		case <-l.stop:
			return
		default:
		}
		if err := l.session(long); err != nil {
			l.errs.Add(1)
			l.mu.Lock()
			l.last = err
			l.mu.Unlock()
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// session runs one session: until stopped when long, else a few echoes.
func (l *chatLoad) session(long bool) error {
	status, body, err := l.do("GET", l.base+"/socket.io/?EIO=4&transport=polling", "")
	i := strings.Index(body, `"sid":"`)
	if err != nil || status != 200 || i < 0 {
		return fmt.Errorf("handshake: %d %q %v", status, body, err)
	}
	sid := body[i+7:]
	url := l.base + "/socket.io/?EIO=4&transport=polling&sid=" + sid[:strings.IndexByte(sid, '"')]
	if status, body, err := l.do("POST", url, "40"); err != nil || body != "ok" {
		return fmt.Errorf("CONNECT: %d %q %v", status, body, err)
	}
	got, err := l.until(url, `"welcome"`)
	if err != nil {
		return err
	}
	node := got[strings.Index(got, `{"node":"`)+9:]
	node = node[:strings.IndexByte(node, '"')]
	l.mu.Lock()
	l.nodes[node]++
	if long {
		l.long[node]++
	}
	l.mu.Unlock()
	for n := 1; ; n++ {
		if !long && n > 3 {
			break
		}
		if long {
			select {
			case <-l.stop:
				_, _, _ = l.do("POST", url, "1")
				return nil
			case <-time.After(20 * time.Millisecond):
			}
		}
		msg := fmt.Sprintf("m%d", n)
		if status, body, err := l.do("POST", url, fmt.Sprintf(`42%d["echo","%s"]`, n, msg)); err != nil || body != "ok" {
			return fmt.Errorf("echo %d on %s: %d %q %v", n, node, status, body, err)
		}
		if _, err := l.until(url, fmt.Sprintf(`43%d["%s"]`, n, msg)); err != nil {
			return fmt.Errorf("on %s: %w", node, err)
		}
	}
	_, _, err = l.do("POST", url, "1")
	return err
}

// until polls url until its answers carry want (at most a few polls).
func (l *chatLoad) until(url, want string) (string, error) {
	var all string
	for range 5 {
		status, body, err := l.do("GET", url, "")
		if err != nil || status != 200 {
			return all, fmt.Errorf("GET waiting for %s: %d %q %v", want, status, body, err)
		}
		all += body
		if strings.Contains(all, want) {
			return all, nil
		}
	}
	return all, fmt.Errorf("no %s in %q", want, all)
}

func (l *chatLoad) do(method, url, body string) (int, string, error) {
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if method == "POST" {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// opened returns the sessions opened per node so far.
func (l *chatLoad) opened() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for k, v := range l.nodes {
		out[k] = v
	}
	return out
}

// stopAll stops the sessions (once) and waits for them.
func (l *chatLoad) stopAll() {
	l.halt.Do(func() { close(l.stop) })
	l.wg.Wait()
}

// end stops the load and fails the test if any session failed.
func (l *chatLoad) end(t *testing.T) {
	l.stopAll()
	if n := l.errs.Load(); n > 0 {
		t.Fatalf("%d chat sessions failed; the last: %v", n, l.last)
	}
}

// startDiscoveredCluster runs chat nodes n11, n12 and n13 on 127.0.0.11-13 with one port (like pod
// IPs), a dnsmasq answering hosts for chat.sidpin.test, and a managed proxy whose pool discovers its
// nodes there (every 200 ms); tweak may change the proxy's config further.
func startDiscoveredCluster(t *testing.T, hosts string, tweak func(*configs.Config)) (*proxy.Proxy, string, *testdnsmasq.Server, int) {
	t.Helper()
	probe, err := net.Listen("tcp", "127.0.0.11:0")
	if err != nil {
		t.Fatal(err)
	}
	port := probe.Addr().(*net.TCPAddr).Port
	probe.Close()
	for _, last := range []string{"11", "12", "13"} {
		startChatNodeAt(t, "n"+last, fmt.Sprintf("127.0.0.%s:%d", last, port))
	}
	dns := testdnsmasq.Start(t, hosts, testdnsmasq.Options{})
	p, base, _ := startManagedProxy(t, []string{"http://127.0.0.1:1"}, func(c *configs.Config) {
		calmHealth(c)
		c.Pools[0].Nodes = nil
		c.Pools[0].Discovery = configs.Discovery{Name: "chat.sidpin.test", Port: port, Scheme: "http", Resolver: dns.Addr,
			Interval: configs.Duration(200 * time.Millisecond), Timeout: configs.Duration(150 * time.Millisecond)}
		if tweak != nil {
			tweak(c)
		}
	})
	return p, base, dns, port
}

// TestDiscoveredNodesUnderChatLoad: a pool takes its nodes from a real dnsmasq (chat nodes on
// 127.0.0.11-13, one port, like pod IPs) while chat sessions run: a node added to the records gets
// new sessions, a node removed takes no new ones while its sessions go on (on_node_removed: drain),
// and a resolver outage keeps the nodes; no chat session fails.
func TestDiscoveredNodesUnderChatLoad(t *testing.T) {
	p, base, dns, port := startDiscoveredCluster(t, "127.0.0.11 chat.sidpin.test\n127.0.0.12 chat.sidpin.test\n", nil)
	load := startChatLoad(base, 6, 6)
	t.Cleanup(load.stopAll)
	eventually := func(what string, cond func(map[string]int) bool) map[string]int {
		t.Helper()
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			if got := load.opened(); cond(got) {
				return got
			}
		}
		t.Fatalf("%s: not within 10 s: sessions per node %v; %d failed, the last: %v", what, load.opened(), load.errs.Load(), load.last)
		return nil
	}
	eventually("sessions on both discovered nodes", func(m map[string]int) bool { return m["n11"] > 3 && m["n12"] > 3 })

	dns.Hosts("127.0.0.11 chat.sidpin.test\n127.0.0.12 chat.sidpin.test\n127.0.0.13 chat.sidpin.test\n")
	dns.Reload()
	eventually("a node added to DNS gets sessions", func(m map[string]int) bool { return m["n13"] > 3 })

	load.mu.Lock()
	longOnRemoved := load.long["n11"]
	load.mu.Unlock()
	if longOnRemoved == 0 {
		t.Fatal("no long session on n11: its removal would test nothing")
	}
	dns.Hosts("127.0.0.12 chat.sidpin.test\n127.0.0.13 chat.sidpin.test\n")
	dns.Reload()
	time.Sleep(time.Second) // resolved, applied: n11 drains
	before := load.opened()
	eventually("sessions go on after the removal", func(m map[string]int) bool {
		return m["n12"]+m["n13"] > before["n12"]+before["n13"]+20
	})
	if got := load.opened()["n11"]; got != before["n11"] {
		t.Fatalf("%d new sessions on the node removed from DNS", got-before["n11"])
	}

	dns.Stop() // a resolver outage: the nodes stay
	before = load.opened()
	eventually("sessions go on during the outage", func(m map[string]int) bool {
		return m["n12"] > before["n12"]+10 && m["n13"] > before["n13"]+10
	})
	time.Sleep(500 * time.Millisecond)
	if counterValue(t, p, "sidpin_discovery_resolutions_total", map[string]string{"pool": "default", "result": "failed"}) == 0 {
		t.Fatal("the outage's failed resolutions were not counted")
	}
	dns.Start()
	time.Sleep(500 * time.Millisecond)
	if names := nodeNames(p); names != "127.0.0.12_"+fmt.Sprint(port)+" 127.0.0.13_"+fmt.Sprint(port) {
		t.Fatalf("nodes after the outage: %s", names)
	}
	load.end(t)
	t.Logf("sessions per node %v (long ones %v); n11's %d long sessions echoed through its removal from DNS", load.opened(), load.long, longOnRemoved)
}

// nodeNames lists the nodes of the proxy that are up, space-separated, sorted.
func nodeNames(p *proxy.Proxy) string {
	var names []string
	for _, n := range p.Nodes().Nodes() {
		if n.State() == backends.StateUp {
			names = append(names, n.Name)
		}
	}
	slices.Sort(names)
	return strings.Join(names, " ")
}

// counterValue reads one sample of a counter from the proxy's registry (0 when absent).
func counterValue(t *testing.T, p *proxy.Proxy, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := p.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}
