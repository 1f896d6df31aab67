package backends

import (
	"math/rand/v2"

	"github.com/sidpin/sidpin/configs"
)

func init() {
	registerPolicy(policy{name: configs.BalanceRandomTwo, new: func() Balancer { return &randomTwo{intN: rand.IntN} }})
}

// randomTwo is the power of two choices: two distinct usable nodes drawn at random, the one of lower
// load (sessions plus handshakes in flight, per weight) wins, the first drawn on a tie. With one
// usable node, that node. A node more loaded than every other is never picked; with distinct loads,
// each other node wins in proportion to how many nodes are more loaded than it.
type randomTwo struct {
	// intN returns a uniform int in [0, n). math/rand/v2's top-level functions draw from a
	// per-thread ChaCha8 state in the runtime: no lock, no contention. Tests seed their own.
	intN func(n int) int
}

func (r *randomTwo) Pick(c Candidates) *Node {
	// Two distinct nodes among all of them: when both are usable, as they mostly are, that is the draw,
	// in constant time. Otherwise draw again among the usable ones. Every ordered pair of the k usable
	// nodes out of n still comes with probability 1/(n(n-1)) + (1 - k(k-1)/(n(n-1))) / (k(k-1)),
	// which is 1/(k(k-1)).
	if n := c.Len(); n >= 2 {
		x, y := r.twoOf(n)
		if c.Usable(x) && c.Usable(y) {
			return c.Node(lower(c, x, y))
		}
	}
	return r.pickUsable(c)
}

// maxOnStack bounds the pools whose usable nodes are gathered without allocating.
const maxOnStack = 128

// pickUsable draws two of the usable nodes, gathered first.
func (r *randomTwo) pickUsable(c Candidates) *Node {
	var buf [maxOnStack]int32
	usable := buf[:0] // one consistent view of usability; grows on the heap only past maxOnStack nodes
	for i := range c.Len() {
		if c.Usable(i) {
			usable = append(usable, int32(i))
		}
	}
	switch len(usable) {
	case 0:
		return nil
	case 1:
		return c.Node(int(usable[0]))
	}
	x, y := r.twoOf(len(usable))
	return c.Node(lower(c, int(usable[x]), int(usable[y])))
}

// twoOf draws two distinct ints of [0, n), n >= 2, in random order.
func (r *randomTwo) twoOf(n int) (x, y int) {
	x, y = r.intN(n), r.intN(n-1)
	if y >= x {
		y++ // distinct from x, and uniform over the others
	}
	return x, y
}

// lower returns whichever of nodes x and y has the lower load, x on a tie.
func lower(c Candidates, x, y int) int {
	if c.Load(y) < c.Load(x) {
		return y
	}
	return x
}
