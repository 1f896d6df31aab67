package backends

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/sidpin/sidpin/configs"
)

func testSet(t testing.TB, yaml string) *Set {
	t.Helper()
	cfg, err := configs.Parse("t.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	s, err := build(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMatch(t *testing.T) {
	s := testSet(t, `
pools:
  - {name: any, nodes: [{name: a, url: "http://127.0.0.1:1"}]}
  - {name: chat, match: {path_prefix: /chat/}, engineio_path: /chat/socket.io, nodes: [{name: a, url: "http://127.0.0.1:2"}]}
  - {name: hosted, match: {host: Example.com}, nodes: [{name: a, url: "https://127.0.0.1"}]}
`)
	cases := []struct{ host, path, want string }{
		{"x", "/socket.io/", "any"},
		{"x", "/chat/socket.io/", "chat"},
		{"example.com", "/socket.io/", "hosted"},
		{"EXAMPLE.COM:8080", "/chat/x", "hosted"},
		{"example.org", "/chat/x", "chat"},
	}
	for _, c := range cases {
		if p := s.Match([]byte(c.host), []byte(c.path)); p == nil || p.Name != c.want {
			t.Errorf("Match(%s, %s) = %v, want %s", c.host, c.path, p, c.want)
		}
	}
	chat := s.Match([]byte("x"), []byte("/chat/"))
	if chat.EngineIOPath != "/chat/socket.io/" {
		t.Errorf("engine.io path %q must end with a slash", chat.EngineIOPath)
	}
	if n := s.Match([]byte("example.com"), []byte("/")).Nodes[0]; n.Addr != "127.0.0.1:443" || !n.TLS {
		t.Errorf("https default port: %+v", n)
	}
}

// counter is a SessionCounter over a map, like the pin table's counts; err makes it fail.
type counter struct {
	counts map[string]int
	err    error
	calls  int
}

func (c *counter) CountByNode(_ context.Context, _ string) (map[string]int, error) {
	c.calls++
	if c.err != nil {
		return nil, c.err
	}
	return c.counts, nil
}

// simulate opens n sessions through Choose, counting them like the pin table does.
func simulate(t *testing.T, p *Pool, n int) map[string]int {
	t.Helper()
	c := &counter{counts: map[string]int{}}
	for i := 0; i < n; i++ {
		node, countsErr, err := p.Choose(context.Background(), c)
		if err != nil || countsErr != nil {
			t.Fatal(err, countsErr)
		}
		node.EndHandshake() // the pin is stored
		c.counts[node.Name]++
	}
	return c.counts
}

func TestPickSpreadsByWeight(t *testing.T) {
	for _, policy := range configs.BalancePolicies {
		t.Run(policy, func(t *testing.T) {
			equal := testSet(t, fmt.Sprintf(`pools: [{name: p, balance: %s, nodes: [{name: a, url: "http://h:1"}, {name: b, url: "http://h:2"}, {name: c, url: "http://h:3"}, {name: d, url: "http://h:4"}]}]`, policy))
			counts := simulate(t, equal.Pools[0], 1000)
			for name, got := range counts {
				if got < 240 || got > 260 {
					t.Errorf("node %s got %d of 1000 sessions, want about 250 (%v)", name, got, counts)
				}
			}
			weighted := testSet(t, fmt.Sprintf(`pools: [{name: p, balance: %s, nodes: [{name: a, url: "http://h:1", weight: 1}, {name: b, url: "http://h:2", weight: 3}]}]`, policy))
			counts = simulate(t, weighted.Pools[0], 1000)
			if math.Abs(float64(counts["b"])-750) > 30 {
				t.Errorf("weights 1:3 gave %v", counts)
			}
		})
	}
}

func TestPickSkipsDrainingAndFailedNodes(t *testing.T) {
	for _, policy := range configs.BalancePolicies {
		t.Run(policy, func(t *testing.T) {
			s := testSet(t, fmt.Sprintf(`pools: [{name: p, balance: %s, nodes: [{name: a, url: "http://h:1"}, {name: b, url: "http://h:2", drain: true}, {name: c, url: "http://h:3"}]}]`, policy))
			p := s.Pools[0]
			p.Node("c").ObserveFault(FaultRefused, errors.New("connection refused"))
			for i := 0; i < 10; i++ {
				if n, _ := p.pick(nil, time.Now()); n.Name != "a" {
					t.Fatalf("picked %s", n.Name)
				}
			}
			p.Node("a").SetRuntimeDrain(true, "test")
			if _, err := p.pick(nil, time.Now()); err != ErrNoNode {
				t.Fatalf("want ErrNoNode, got %v", err)
			}
			if n, countsErr, err := p.Choose(context.Background(), nil); n != nil || countsErr != nil || err != ErrNoNode {
				t.Fatalf("Choose: want ErrNoNode, got %v %v %v", n, countsErr, err)
			}
			if n, err := p.pick(nil, time.Now().Add(2*avoidAfterRefusal)); err != nil || n.Name != "c" {
				t.Fatalf("a node that refused a connection is tried again after a moment: %v %v", n, err)
			}
			for i := 0; i < 3; i++ { // fall: 3
				p.Node("c").ObserveFault(FaultRefused, errors.New("connection refused"))
			}
			if _, err := p.pick(nil, time.Now().Add(time.Hour)); err != ErrNoNode {
				t.Fatalf("a node down after fall failures must not be picked: %v", err)
			}
		})
	}
}

// TestPickCountsHandshakesInFlight: a burst of concurrent handshakes, none pinned yet, spreads evenly.
func TestPickCountsHandshakesInFlight(t *testing.T) {
	s := testSet(t, `pools: [{name: p, nodes: [{name: a, url: "http://h:1"}, {name: b, url: "http://h:2"}, {name: c, url: "http://h:3"}]}]`)
	p := s.Pools[0]
	c := &counter{counts: map[string]int{"a": 0, "b": 0, "c": 0}}
	got := map[string]int{}
	for i := 0; i < 90; i++ {
		n, _, err := p.Choose(context.Background(), c) // counts its handshake, which none of them ends
		if err != nil {
			t.Fatal(err)
		}
		got[n.Name]++
	}
	if got["a"] != 30 || got["b"] != 30 || got["c"] != 30 {
		t.Fatalf("90 concurrent handshakes spread as %v", got)
	}
	for _, n := range p.Nodes {
		if h := n.handshakes.Load(); h != 30 {
			t.Errorf("node %s has %d handshakes in flight, want 30", n.Name, h)
		}
	}
}
