package backends

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/sidpin/sidpin/configs"
)

// sequence is the names of n nodes picked in a row from p.
func sequence(t *testing.T, p *Pool, n int) string {
	t.Helper()
	var b strings.Builder
	for range n {
		node, err := p.pick(nil, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(node.Name)
	}
	return b.String()
}

// picks counts n picks from p by node name.
func picks(t *testing.T, p *Pool, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		node, err := p.pick(nil, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		got[node.Name]++
	}
	return got
}

// near fails unless every node's picks are within slack of want.
func near(t *testing.T, got, want map[string]int, slack int) {
	t.Helper()
	for name, w := range want {
		if got[name] < w-slack || got[name] > w+slack {
			t.Errorf("picks %v, want %v ±%d", got, want, slack)
			return
		}
	}
}

func TestSmoothRoundRobinSequence(t *testing.T) {
	cases := []struct {
		weights []int
		want    string
	}{
		{[]int{5, 1, 1}, "aabacaa" + "aabacaa"}, // nginx's example
		{[]int{1, 1, 1}, "abcabc"},
		{[]int{2, 1}, "aba" + "aba"},
		{[]int{1, 3}, "babb" + "babb"},
		{[]int{4, 2, 1}, "abacaba"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.weights), func(t *testing.T) {
			p := nodePool(t, configs.BalanceRoundRobin, c.weights...)
			if got := sequence(t, p, len(c.want)); got != c.want {
				t.Errorf("picks %s, want %s", got, c.want)
			}
		})
	}
}

// TestSmoothRoundRobinExactShares: any whole number of cycles gives each node exactly its weight's share.
func TestSmoothRoundRobinExactShares(t *testing.T) {
	cases := []struct {
		weights []int
		picks   int
		want    map[string]int
	}{
		{[]int{1, 3}, 4000, map[string]int{"a": 1000, "b": 3000}},
		{[]int{5, 1, 1}, 7000, map[string]int{"a": 5000, "b": 1000, "c": 1000}},
		{[]int{1, 2, 3, 4}, 1000, map[string]int{"a": 100, "b": 200, "c": 300, "d": 400}},
		{[]int{1000, 1}, 3003, map[string]int{"a": 3000, "b": 3}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.weights), func(t *testing.T) {
			near(t, picks(t, nodePool(t, configs.BalanceRoundRobin, c.weights...), c.picks), c.want, 0)
		})
	}
}

func TestSmoothRoundRobinSkipsUnusable(t *testing.T) {
	p := nodePool(t, configs.BalanceRoundRobin, 5, 1, 1)
	p.Node("b").SetRuntimeDrain(true, "test")
	if got := sequence(t, p, 12); got != "aaacaa"+"aaacaa" {
		t.Errorf("with b draining, 5:1:1 picks %s", got)
	}
	p.Node("b").SetRuntimeDrain(false, "test")
	near(t, picks(t, p, 7000), map[string]int{"a": 5000, "b": 1000, "c": 1000}, 2)

	now := time.Now()
	p.Node("a").avoidTill.Store(now.Add(time.Second).UnixNano()) // refused a connection
	for range 10 {
		if n, _ := p.pick(nil, now); n.Name == "a" {
			t.Fatal("a node avoided after a refused connection was picked")
		}
	}
}

// swrrState is the current weights of a round-robin pool.
func swrrState(p *Pool) []int64 { return p.balancer().Balancer.(*smoothRoundRobin).current }

// TestSmoothRoundRobinNoDrift: nodes that come and go and weights that change (up to 1000) never make
// the current weights drift: they sum to zero and stay within the sum of the largest weights after
// every pick, and once things settle every share is exact again to within two picks.
func TestSmoothRoundRobinNoDrift(t *testing.T) {
	p := nodePool(t, configs.BalanceRoundRobin, 5, 1, 1, 3)
	r := rand.New(rand.NewPCG(7, 7))
	bound := int64(len(p.Nodes) * 1000)
	for step := range 100000 {
		if r.IntN(10) == 0 {
			n := p.Nodes[r.IntN(len(p.Nodes))]
			n.rtDrain.Store(!n.rtDrain.Load())
		}
		if r.IntN(20) == 0 {
			p.Nodes[r.IntN(len(p.Nodes))].weight.Store(1 + r.Int64N(1000))
		}
		if _, err := p.pick(nil, time.Now()); err != nil && err != ErrNoNode {
			t.Fatal(err)
		}
		var sum int64
		for i, c := range swrrState(p) {
			sum += c
			if c > bound || c < -bound {
				t.Fatalf("step %d: node %d's current weight %d is past ±%d: %v", step, i, c, bound, swrrState(p))
			}
		}
		if sum != 0 {
			t.Fatalf("step %d: the current weights sum to %d: %v", step, sum, swrrState(p))
		}
	}
	for i, w := range []int64{5, 1, 1, 3} {
		p.Nodes[i].weight.Store(w)
		p.Nodes[i].rtDrain.Store(false)
	}
	picks(t, p, 10000) // what the weights of up to 1000 left behind passes
	near(t, picks(t, p, 10000), map[string]int{"a": 5000, "b": 1000, "c": 1000, "d": 3000}, 2)
}

// TestSmoothRoundRobinReload: a reload's new pool starts its sequence afresh with the new weights;
// the old one, which requests in flight may still pick from, follows the new weights too.
func TestSmoothRoundRobinReload(t *testing.T) {
	m, _ := newTestManager(t, `pools: [{name: p, balance: round-robin, nodes: [{name: a, url: "http://127.0.0.1:1"}, {name: b, url: "http://127.0.0.1:2"}]}]`)
	old := m.Current().Pool("p")
	if got := sequence(t, old, 3); got != "aba" {
		t.Fatalf("1:1 picks %s", got)
	}
	if _, err := m.Apply(parse(t, `pools: [{name: p, balance: round-robin, nodes: [{name: a, url: "http://127.0.0.1:1"}, {name: b, url: "http://127.0.0.1:2", weight: 3}]}]`)); err != nil {
		t.Fatal(err)
	}
	cur := m.Current().Pool("p")
	if cur.Node("b") != old.Node("b") {
		t.Fatal("the reload must keep the node")
	}
	near(t, picks(t, cur, 4000), map[string]int{"a": 1000, "b": 3000}, 0)
	near(t, picks(t, old, 4000), map[string]int{"a": 1000, "b": 3000}, 2)
}
