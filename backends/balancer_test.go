package backends

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sidpin/sidpin/configs"
)

// choose is Choose that fails the test on any error.
func choose(t testing.TB, p *Pool, c SessionCounter) *Node {
	t.Helper()
	n, countsErr, err := p.Choose(context.Background(), c)
	if err != nil || countsErr != nil {
		t.Fatal(err, countsErr)
	}
	return n
}

// TestPoliciesMatchConfigs: every name the config accepts has a balancer, and every balancer a name.
func TestPoliciesMatchConfigs(t *testing.T) {
	var names []string
	for name := range policies {
		names = append(names, name)
		if policies[name].new() == nil {
			t.Errorf("policy %s makes no balancer", name)
		}
	}
	if !slices.Equal(slices.Sorted(slices.Values(names)), slices.Sorted(slices.Values(configs.BalancePolicies))) {
		t.Errorf("backends has policies %v, configs accepts %v", names, configs.BalancePolicies)
	}
	p := &Pool{Name: "p", Policy: "no-such-policy", Nodes: []*Node{{Name: "a"}}}
	if _, ok := p.balancer().Balancer.(*leastSessions); !ok {
		t.Errorf("an unknown policy gets %T, want the default", p.balancer().Balancer)
	}
}

// TestChoose: the session counts are asked for only when the policy reads loads; when they fail,
// the choice stands on the handshakes in flight and the error comes back for the caller to log.
func TestChoose(t *testing.T) {
	unavailable := errors.New("redis: connection refused")
	cases := []struct {
		policy    string
		err       error
		wantCalls int
		want      string // the node picked first, loads a: 5, b: 0
	}{
		{configs.BalanceLeastSessions, nil, 1, "b"},
		{configs.BalanceLeastSessions, unavailable, 1, ""},
		{configs.BalanceRandomTwo, nil, 1, "b"},
		{configs.BalanceRandomTwo, unavailable, 1, ""},
		{configs.BalanceRoundRobin, nil, 0, "a"},
		{configs.BalanceRoundRobin, unavailable, 0, "a"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.policy, " ", c.err), func(t *testing.T) {
			p := nodePool(t, c.policy, 1, 1)
			cnt := &counter{counts: map[string]int{"a": 5}, err: c.err}
			n, countsErr, err := p.Choose(context.Background(), cnt)
			if err != nil || n == nil {
				t.Fatalf("Choose: %v %v", n, err)
			}
			wantErr := c.err
			if c.wantCalls == 0 {
				wantErr = nil // not asked, so not failed
			}
			if !errors.Is(countsErr, wantErr) || (wantErr == nil) != (countsErr == nil) {
				t.Errorf("countsErr %v, want %v", countsErr, wantErr)
			}
			if cnt.calls != c.wantCalls {
				t.Errorf("session counts asked %d times, want %d", cnt.calls, c.wantCalls)
			}
			if c.want != "" && n.Name != c.want {
				t.Errorf("picked %s, want %s", n.Name, c.want)
			}
			if h := n.handshakes.Load(); h != 1 {
				t.Errorf("the chosen node has %d handshakes in flight, want 1", h)
			}
			if n2, _, _ := p.Choose(context.Background(), nil); n2 == n {
				t.Errorf("the next session goes to the other node (by its turn, or the handshake in flight): %s again", n2.Name)
			}
			plain, err := p.ChoosePlain()
			if err != nil || plain == nil {
				t.Fatalf("ChoosePlain: %v %v", plain, err)
			}
			var inFlight int64
			for _, nd := range p.Nodes {
				inFlight += nd.handshakes.Load()
			}
			if inFlight != 2 {
				t.Errorf("%d handshakes in flight after two Choose and one ChoosePlain, want 2", inFlight)
			}
		})
	}
}

// TestChooseConcurrent: goroutines opening sessions at once all get a node, and every policy keeps
// its shares (run with -race).
func TestChooseConcurrent(t *testing.T) {
	for _, policy := range configs.BalancePolicies {
		t.Run(policy, func(t *testing.T) {
			p := nodePool(t, policy, 1, 3)
			const workers, each = 8, 500
			var mu sync.Mutex
			got := map[string]int{}
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					for range each {
						n, _, err := p.Choose(context.Background(), nil)
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						got[n.Name]++
						mu.Unlock()
						// n.EndHandshake() never comes: handshakes in flight are the load
					}
				})
			}
			wg.Wait()
			if got["a"]+got["b"] != workers*each || got["a"] < 950 || got["a"] > 1050 {
				t.Errorf("weights 1:3 over %d concurrent sessions gave %v", workers*each, got)
			}
		})
	}
}

// fixedCounts answers the same counts without allocating, as a benchmark's pin table.
type fixedCounts map[string]int

func (f fixedCounts) CountByNode(context.Context, string) (map[string]int, error) { return f, nil }

// BenchmarkChoose: one new session's choice (session counts, pick, handshake begun and ended) over
// four nodes, one goroutine and then all of them.
func BenchmarkChoose(b *testing.B) {
	counts := fixedCounts{"a": 10, "b": 20, "c": 30, "d": 40}
	for _, policy := range configs.BalancePolicies {
		p := nodePool(b, policy, 1, 2, 3, 4)
		b.Run(policy, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				n, _, _ := p.Choose(context.Background(), counts)
				n.EndHandshake()
			}
		})
		b.Run(policy+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					n, _, _ := p.Choose(context.Background(), counts)
					n.EndHandshake()
				}
			})
		})
	}
}

// BenchmarkPick is the policy alone (Candidates built, no clock read) over 4 and 64 nodes.
func BenchmarkPick(b *testing.B) {
	for _, size := range []int{4, 64} {
		weights := make([]int, size)
		counts := map[string]int{}
		for i := range weights {
			weights[i] = 1 + i%4
		}
		for _, policy := range configs.BalancePolicies {
			p := nodePool(b, policy, weights...)
			for _, n := range p.Nodes {
				counts[n.Name] = 10 * n.Weight()
			}
			in := Candidates{nodes: p.Nodes, now: time.Now(), sessions: counts}
			bal := p.balancer()
			b.Run(fmt.Sprintf("%s/%d", policy, size), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					bal.Pick(in)
				}
			})
		}
	}
}
