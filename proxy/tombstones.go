package proxy

import (
	"sync"
	"time"
)

// tombstones remember, for a while, the sids of sessions ended because their node went down, so that
// their clients' next requests are counted as "node_down" and not as unknown sids.
type tombstones struct {
	mu   sync.Mutex
	m    map[string]int64 // sid -> expiry (unix nanos)
	max  int
	life time.Duration
}

func newTombstones(max int, life time.Duration) *tombstones {
	return &tombstones{m: map[string]int64{}, max: max, life: life}
}

// add remembers sid; past max entries (after dropping expired ones) it is not remembered.
func (t *tombstones) add(sid string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.m) >= t.max {
		for s, exp := range t.m {
			if exp < now.UnixNano() {
				delete(t.m, s)
			}
		}
		if len(t.m) >= t.max {
			return
		}
	}
	t.m[sid] = now.Add(t.life).UnixNano()
}

// has reports whether sid ended with its node lately.
func (t *tombstones) has(sid string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	exp, ok := t.m[sid]
	return ok && exp >= now.UnixNano()
}
