package backends

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidpin/sidpin/configs"
)

// chi2Critical holds the chi-square values a correct random draw exceeds with probability 1e-6, by
// degrees of freedom: the tests below fail a correct implementation about once in a million runs.
var chi2Critical = map[int]float64{1: 23.93, 2: 27.63, 3: 30.66, 4: 33.38, 5: 35.89, 6: 38.26, 7: 40.52}

// chi2 is Pearson's statistic of observed counts against expected ones.
func chi2(observed, expected []float64) float64 {
	var x float64
	for i := range observed {
		d := observed[i] - expected[i]
		x += d * d / expected[i]
	}
	return x
}

// nodePool is a pool of the given policy with one node per weight, named a, b, c... (n26, n27...
// past z).
func nodePool(t testing.TB, policy string, weights ...int) *Pool {
	t.Helper()
	var nodes []string
	for i, w := range weights {
		name := string(rune('a' + i))
		if i >= 26 {
			name = fmt.Sprint("n", i)
		}
		nodes = append(nodes, fmt.Sprintf(`{name: %s, url: "http://h:%d", weight: %d}`, name, i+1, w))
	}
	return testSet(t, fmt.Sprintf(`pools: [{name: p, balance: %s, nodes: [%s]}]`, policy, strings.Join(nodes, ", "))).Pools[0]
}

// seededRandomTwo is a random-two pool whose draws come from a fixed seed, so its statistics are
// the same at every run.
func seededRandomTwo(t testing.TB, seed uint64, nodes int) *Pool {
	t.Helper()
	p := nodePool(t, configs.BalanceRandomTwo, ones(nodes)...)
	p.balancer().Balancer.(*randomTwo).intN = rand.New(rand.NewPCG(seed, seed)).IntN
	return p
}

// share picks n times from b over fixed loads (sessions by node index, no handshake counted) and
// returns the picks by node index, in order.
func share(t testing.TB, p *Pool, b Balancer, sessions []int, n int) []int {
	t.Helper()
	counts := map[string]int{}
	for i, s := range sessions {
		counts[p.Nodes[i].Name] = s
	}
	in := Candidates{nodes: p.Nodes, now: time.Now(), sessions: counts}
	picks := make([]int, n)
	for k := range picks {
		node := b.Pick(in)
		if node == nil {
			t.Fatal("no node picked")
		}
		picks[k] = slices.Index(p.Nodes, node)
	}
	return picks
}

// ones is n weights of 1.
func ones(n int) []int {
	w := make([]int, n)
	for i := range w {
		w[i] = 1
	}
	return w
}

func tally(picks []int, nodes int) []float64 {
	got := make([]float64, nodes)
	for _, i := range picks {
		got[i]++
	}
	return got
}

// TestRandomTwoEqualLoads: with equal loads every node gets 1/n of 10,000 picks, within 5%.
func TestRandomTwoEqualLoads(t *testing.T) {
	for _, n := range []int{2, 3, 4} {
		t.Run(fmt.Sprint(n, " nodes"), func(t *testing.T) {
			p := seededRandomTwo(t, uint64(n), n)
			got := tally(share(t, p, p.balancer(), make([]int, n), 10000), n)
			want := 10000 / float64(n)
			for i, g := range got {
				if math.Abs(g-want) > 0.05*want {
					t.Errorf("node %c got %.0f of 10000 picks, want %.0f ±5%% (%v)", 'a'+i, g, want, got)
				}
			}
		})
	}
}

// rankChi2 picks 20,000 times from b over n nodes of loads 1 < 2 < ... < n and returns the
// chi-square of the wins by rank against P2C's: the node of rank r (0 the least loaded) wins exactly
// the pairs with a more loaded node, 2(n-1-r) of the n(n-1) ordered pairs; the most loaded never wins.
func rankChi2(t *testing.T, p *Pool, b Balancer) (x float64, wins []float64) {
	n := len(p.Nodes)
	loads := make([]int, n)
	for i := range loads {
		loads[i] = i + 1
	}
	const picks = 20000
	wins = tally(share(t, p, b, loads, picks), n)
	if wins[n-1] != 0 {
		t.Fatalf("the most loaded node won %.0f picks", wins[n-1])
	}
	want := make([]float64, n-1)
	for r := range want {
		want[r] = picks * float64(2*(n-1-r)) / float64(n*(n-1))
	}
	return chi2(wins[:n-1], want), wins
}

// TestRandomTwoDrawsPairs checks the draws themselves, unseeded (the source sidpin runs with). The
// old random-two (two nodes in rotation) gives 1/2, 1/4, 1/4, 0 to four nodes instead of 1/2, 1/3,
// 1/6, 0, and fails.
func TestRandomTwoDrawsPairs(t *testing.T) {
	for _, n := range []int{3, 4, 8} {
		t.Run(fmt.Sprint(n, " nodes"), func(t *testing.T) {
			p := nodePool(t, configs.BalanceRandomTwo, ones(n)...)
			x, wins := rankChi2(t, p, p.balancer())
			t.Logf("wins by rank %v: chi-square %.1f, %d degrees of freedom", wins, x, n-2)
			if x > chi2Critical[n-2] {
				t.Errorf("wins by rank %v are not P2C's: chi-square %.1f > %.1f", wins, x, chi2Critical[n-2])
			}
			if n < 4 {
				return // over three nodes the rotation's shares are P2C's: TestRandomTwoIsRandom tells them apart
			}
			if x, wins := rankChi2(t, p, new(rotationTwo)); x <= chi2Critical[n-2] {
				t.Errorf("the old rotation passed for P2C: wins %v, chi-square %.1f", wins, x)
			} else {
				t.Logf("old rotation: wins by rank %v: chi-square %.0f", wins, x)
			}
		})
	}
}

// TestRandomTwoLoadedNode: a node with 10 times the sessions of the others is never picked while it
// stays the most loaded, and the others share its part: 0 of 10,000 picks instead of 2,500. When its
// sessions count as they land, it takes new ones only once the others have caught up with it.
func TestRandomTwoLoadedNode(t *testing.T) {
	p := seededRandomTwo(t, 10, 4)
	got := tally(share(t, p, p.balancer(), []int{10, 10, 10, 100}, 10000), 4)
	if got[3] != 0 {
		t.Errorf("the node loaded 10x got %.0f of 10000 picks", got[3])
	}
	for i := range 3 {
		if math.Abs(got[i]-10000.0/3) > 0.05*10000/3 {
			t.Errorf("node %c got %.0f of 10000 picks, want 3333 ±5%% (%v)", 'a'+i, got[i], got)
		}
	}

	c := &counter{counts: map[string]int{"a": 100, "b": 100, "c": 100, "d": 1000}}
	first := map[string]int{}
	for range 2600 { // the others reach about 967 each
		n := choose(t, p, c)
		n.EndHandshake()
		c.counts[n.Name]++
		first[n.Name]++
	}
	if first["d"] != 0 {
		t.Errorf("2600 new sessions over loads 100, 100, 100, 1000 gave the loaded node %d (%v)", first["d"], first)
	}
	for range 1400 {
		n := choose(t, p, c)
		n.EndHandshake()
		c.counts[n.Name]++
	}
	for name, s := range c.counts { // 5300 sessions: 1325 each, give or take P2C's small gap
		if s < 1315 || s > 1335 {
			t.Errorf("node %s ends with %d sessions, want about 1325 (%v)", name, s, c.counts)
		}
	}
}

// rotationTwo is the random-two sidpin had before: the lower of two nodes taken in rotation. It is
// not random, and TestRandomTwoIsRandom must say so.
type rotationTwo struct{ next atomic.Uint64 }

func (r *rotationTwo) Pick(c Candidates) *Node {
	start := int(r.next.Add(1))
	best, bestLoad, seen := -1, 0.0, 0
	for k := range c.Len() {
		i := (start + k) % c.Len()
		if !c.Usable(i) {
			continue
		}
		if load := c.Load(i); best < 0 || load < bestLoad {
			best, bestLoad = i, load
		}
		if seen++; seen == 2 {
			break
		}
	}
	return c.Node(best)
}

// followers is the chi-square of which node follows which in a run of picks over loads 0, 0, 100:
// a and b each win half the picks, independently of the pick before, so the four pairs aa, ab, ba
// and bb each come a quarter of the time. c must never be picked.
func followers(t *testing.T, p *Pool, b Balancer) float64 {
	picks := share(t, p, b, []int{0, 0, 100}, 10000)
	var pairs [4]float64
	for k := 1; k < len(picks); k++ {
		if picks[k] == 2 || picks[k-1] == 2 {
			t.Fatalf("the loaded node was picked (pick %d)", k)
		}
		pairs[2*picks[k-1]+picks[k]]++
	}
	q := float64(len(picks)-1) / 4
	return chi2(pairs[:], []float64{q, q, q, q})
}

// TestRandomTwoIsRandom: the picks of random-two are independent draws; the old rotation's are a
// pattern (b a a b a a ..., bb never) that the same test rejects.
func TestRandomTwoIsRandom(t *testing.T) {
	p := nodePool(t, configs.BalanceRandomTwo, 1, 1, 1)
	x := followers(t, p, p.balancer())
	t.Logf("random-two: chi-square of successive pairs %.1f (3 degrees of freedom)", x)
	if x > chi2Critical[3] {
		t.Errorf("random-two's successive picks are not independent: chi-square %.1f > %.1f", x, chi2Critical[3])
	}
	x = followers(t, p, new(rotationTwo))
	t.Logf("old rotation: chi-square of successive pairs %.0f", x)
	if x <= chi2Critical[3] {
		t.Errorf("the old rotation passed for random: chi-square %.1f", x)
	}
}

func TestRandomTwoOneUsableNode(t *testing.T) {
	p := nodePool(t, configs.BalanceRandomTwo, 1, 1, 1)
	p.Node("a").SetRuntimeDrain(true, "test")
	p.Node("c").SetRuntimeDrain(true, "test")
	for range 20 {
		if n, err := p.pick(map[string]int{"b": 1000}, time.Now()); err != nil || n.Name != "b" {
			t.Fatalf("the one usable node must be picked: %v %v", n, err)
		}
	}
}
