package backends

import (
	"sync/atomic"

	"github.com/sidpin/sidpin/configs"
)

func init() {
	registerPolicy(policy{name: configs.BalanceLeastSessions, new: func() Balancer { return new(leastSessions) }})
}

// leastSessions picks the usable node of lowest load (sessions plus handshakes in flight, per
// weight). Ties go to the first in a rotation, so equal nodes take turns.
type leastSessions struct {
	next atomic.Uint64 // where the scan starts
}

func (l *leastSessions) Pick(c Candidates) *Node {
	n := c.Len()
	if n == 0 {
		return nil
	}
	i := int(l.next.Add(1) % uint64(n))
	best, bestLoad := -1, 0.0
	for range n {
		if c.Usable(i) {
			if load := c.Load(i); best < 0 || load < bestLoad {
				best, bestLoad = i, load
			}
		}
		if i++; i == n {
			i = 0
		}
	}
	if best < 0 {
		return nil
	}
	return c.Node(best)
}
