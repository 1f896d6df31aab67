package backends

import (
	"sync"
	"time"
)

// Node states, as logged and shown to operators.
const (
	StateUp       = "up"       // healthy, takes new sessions
	StateDraining = "draining" // healthy, keeps its sessions, takes no new ones
	StateDown     = "down"     // failed its checks: its sessions are ended, it takes nothing
	StateRemoved  = "removed"  // gone from the config, serving its last sessions (on_node_removed: drain)
)

// Change is one state change of a node.
type Change struct {
	Node     *Node
	From, To string
	Reason   string
	// EndSessions says the node's sessions must end now: it went down, or a reload removed it with
	// on_node_removed: close. Their pins are purged and their WebSockets closed.
	EndSessions bool
}

// health is the up/down half of a node's state, moved by check results: fall consecutive failures
// take an up node down, rise consecutive successes bring a down node up.
type health struct {
	mu        sync.Mutex
	down      bool
	successes int // consecutive, counted while down
	failures  int // consecutive, counted while up
	lastErr   string
	changed   time.Time
}

// observe records one check result (err nil: success) and reports whether up/down flipped.
func (h *health) observe(err error, rise, fall int, now time.Time) (flipped bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.lastErr = err.Error()
		h.successes = 0
		if h.down {
			return false
		}
		h.failures++
		if h.failures < fall {
			return false
		}
		h.down, h.failures, h.changed = true, 0, now
		return true
	}
	h.failures = 0
	if !h.down {
		return false
	}
	h.successes++
	if h.successes < rise {
		return false
	}
	h.down, h.successes, h.lastErr, h.changed = false, 0, "", now
	return true
}

// force sets the state without counting (a node tried again after a passive-only cooldown).
func (h *health) force(down bool, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down == down {
		return false
	}
	h.down, h.successes, h.failures, h.changed = down, 0, 0, now
	return true
}

// HealthDetail is what the checks last saw of a node.
type HealthDetail struct {
	Healthy bool
	LastErr string
	Changed time.Time // last flip between up and down (zero: never)
}

func (h *health) detail() HealthDetail {
	h.mu.Lock()
	defer h.mu.Unlock()
	return HealthDetail{Healthy: !h.down, LastErr: h.lastErr, Changed: h.changed}
}

func (h *health) downSince() (bool, time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.down, h.changed
}
