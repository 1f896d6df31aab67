package clientlimits

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// bucketTable is this instance's own token buckets, one per address, as GCRA: a bucket is only its
// theoretical arrival time (tat), the moment it would be full again. A bucket that is full holds
// nothing worth keeping, so the table keeps only addresses that used some of their burst recently,
// at most shards*perShard of them.
type bucketTable struct {
	interval  int64 // ns between two tokens
	tolerance int64 // ns of burst: burst * interval
	perShard  int
	shards    [shards]bucketShard

	evicted atomic.Uint64
}

type bucketShard struct {
	mu sync.Mutex
	m  map[netip.Addr]int64 // address -> tat (clock ns)
	_  [48]byte
}

func newBucketTable(rate float64, burst, maxAddrs int) *bucketTable {
	interval := max(1, int64(float64(time.Second)/rate))
	t := &bucketTable{interval: interval, tolerance: int64(max(burst, 1)) * interval,
		perShard: max(1, (maxAddrs+shards-1)/shards)}
	for i := range t.shards {
		t.shards[i].m = make(map[netip.Addr]int64)
	}
	return t
}

// take takes a token from k's bucket at now; when it is empty, false and how long until a token is
// there.
func (t *bucketTable) take(k netip.Addr, shard uint8, now int64) (bool, time.Duration) {
	s := &t.shards[shard]
	s.mu.Lock()
	defer s.mu.Unlock()
	tat, found := s.m[k]
	tat = max(tat, now)
	next := tat + t.interval
	if over := next - now - t.tolerance; over > 0 {
		return false, time.Duration(over)
	}
	if !found && len(s.m) >= t.perShard {
		s.evictFullest(now)
		t.evicted.Add(1)
	}
	s.m[k] = next
	return true, 0
}

// evictFullest drops the bucket closest to full among a few in the map's random order (a full one
// at once): forgetting it gives that address back at most what it was about to get back anyway.
// O(1) per new address however full the table is.
func (s *bucketShard) evictFullest(now int64) {
	const sample = 8
	var victim netip.Addr
	oldest, n := int64(0), 0
	for k, tat := range s.m {
		if tat <= now {
			delete(s.m, k)
			return
		}
		if n == 0 || tat < oldest {
			victim, oldest = k, tat
		}
		if n++; n == sample {
			break
		}
	}
	delete(s.m, victim)
}

// sweep drops the full buckets, so that the table holds only addresses that are using their burst.
func (t *bucketTable) sweep(now int64) {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for k, tat := range s.m {
			if tat <= now {
				delete(s.m, k)
			}
		}
		s.mu.Unlock()
	}
}

func (t *bucketTable) size() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}
