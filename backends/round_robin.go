package backends

import (
	"sync"

	"github.com/sidpin/sidpin/configs"
)

func init() {
	registerPolicy(policy{name: configs.BalanceRoundRobin, new: func() Balancer { return new(smoothRoundRobin) }, ignoresLoad: true})
}

// smoothRoundRobin is nginx's smooth weighted round-robin: at each pick every usable node's current
// weight grows by its weight, the largest (the first in config order on a tie) is picked and loses
// the total of the weights added. Weights 5:1:1 give a a b a c a a, and any n*total picks give
// exactly n*weight to each node.
//
// A node that is not usable is left out of a pick (its current weight stays as it was), and weights
// are read at each pick (a reload updates the weight of the Node objects it keeps, which the old
// pool may still be picking from): either way the total subtracted is the total added, so the current
// weights always sum to zero and stay within n times the largest weight. Nothing drifts as nodes come
// and go or weights change; once they settle, every share is exact again to within two picks. A
// reload's new pool starts from zero, as nginx's does.
type smoothRoundRobin struct {
	mu      sync.Mutex
	current []int64 // by node index
}

func (s *smoothRoundRobin) Pick(c Candidates) *Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.current) != c.Len() { // the first pick: a pool's nodes do not change
		s.current = make([]int64, c.Len())
	}
	best, total := -1, int64(0)
	for i := range s.current {
		if !c.Usable(i) {
			continue
		}
		w := int64(c.Node(i).Weight())
		s.current[i] += w
		total += w
		if best < 0 || s.current[i] > s.current[best] {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	s.current[best] -= total
	return c.Node(best)
}
