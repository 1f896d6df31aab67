package affinity

import (
	"hash/maphash"
	"sync"
)

// shardCount spreads the lookup index over locks so concurrent requests rarely meet.
const shardCount = 64

// lookupIndex maps sid -> record beside memdb: the per-request lookup and touch of an established
// session cost one hash and one read lock, and allocate nothing (a memdb read transaction allocates
// about ten objects). memdb stays the source for ordered listings and per-node walks.
type lookupIndex struct {
	seed   maphash.Seed
	shards [shardCount]struct {
		mu sync.RWMutex
		m  map[string]*record
	}
}

func newLookupIndex() *lookupIndex {
	x := &lookupIndex{seed: maphash.MakeSeed()}
	for i := range x.shards {
		x.shards[i].m = map[string]*record{}
	}
	return x
}

func (x *lookupIndex) shard(sid string) int {
	return int(maphash.String(x.seed, sid) % shardCount)
}

func (x *lookupIndex) get(sid string) *record {
	s := &x.shards[x.shard(sid)]
	s.mu.RLock()
	r := s.m[sid]
	s.mu.RUnlock()
	return r
}

func (x *lookupIndex) put(r *record) {
	s := &x.shards[x.shard(r.SID)]
	s.mu.Lock()
	s.m[r.SID] = r
	s.mu.Unlock()
}

// remove deletes r, unless the sid now belongs to a newer record.
func (x *lookupIndex) remove(r *record) {
	s := &x.shards[x.shard(r.SID)]
	s.mu.Lock()
	if s.m[r.SID] == r {
		delete(s.m, r.SID)
	}
	s.mu.Unlock()
}

// dropExpired removes records whose pin expired (the Redis store's cache; the memory store sweeps
// memdb and removes them from here as it goes).
func (x *lookupIndex) dropExpired(now int64) {
	for i := range x.shards {
		s := &x.shards[i]
		s.mu.Lock()
		for sid, r := range s.m {
			if r.expired(now) {
				delete(s.m, sid)
			}
		}
		s.mu.Unlock()
	}
}

// ofNode returns the records of one node.
func (x *lookupIndex) ofNode(pool, node string) []*record {
	var out []*record
	for i := range x.shards {
		s := &x.shards[i]
		s.mu.RLock()
		for _, r := range s.m {
			if r.Pool == pool && r.Node == node {
				out = append(out, r)
			}
		}
		s.mu.RUnlock()
	}
	return out
}

// countTransports counts the live records per node and transport.
func (x *lookupIndex) countTransports(now int64) TransportCounts {
	out := TransportCounts{}
	for i := range x.shards {
		s := &x.shards[i]
		s.mu.RLock()
		for _, r := range s.m {
			if r.expired(now) {
				continue
			}
			ref := NodeRef{Pool: r.Pool, Node: r.Node}
			if out[ref] == nil {
				out[ref] = map[string]int{}
			}
			out[ref][*r.transport.Load()]++
		}
		s.mu.RUnlock()
	}
	return out
}
