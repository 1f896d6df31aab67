package clientlimits

import (
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
)

// connEntry is one address's connection count. Kept by value in the map: a new address costs no
// allocation of its own.
type connEntry struct {
	local     int32 // this instance's open connections, exact
	remote    int32 // the other instances' published connections, as last read from Redis
	published int32 // the count this instance last published for the address (0: none)
	// remoteUntil is when remote stops counting (clock ns): a sync that fails for a whole staleness
	// window leaves this instance with its own counts only.
	remoteUntil int64
}

// connShard is one lock's share of the table, padded so two shards never share a cache line.
type connShard struct {
	mu sync.Mutex
	m  map[netip.Addr]connEntry
	_  [48]byte
}

// connTable counts connections per address, exactly for this instance and as last read for the
// others. It holds at most shards*perShard addresses.
type connTable struct {
	cap       int32 // max connections of one address, all instances together
	perShard  int
	threshold int32 // publish an address once this instance holds this many of its connections
	shards    [shards]connShard

	refused   atomic.Uint64
	uncounted atomic.Uint64
}

// admit is what acquire decided about one connection.
type admit uint8

const (
	admitted  admit = iota // counted: release it when the connection closes
	refused                // over the cap: close the connection
	uncounted              // the table is full of addresses holding connections: let it through uncounted
)

func newConnTable(capPerAddr, maxAddrs, threshold int) *connTable {
	t := &connTable{cap: int32(capPerAddr), perShard: max(1, (maxAddrs+shards-1)/shards), threshold: int32(threshold)}
	for i := range t.shards {
		t.shards[i].m = make(map[netip.Addr]connEntry)
	}
	return t
}

// acquire counts one more connection of k unless that would pass the cap; kick reports that the
// address crossed a publication level (the threshold, or twice its last published count), so a
// sync should not wait for the next tick. now is read only when another instance's count matters.
func (t *connTable) acquire(k netip.Addr, shard uint8, now func() int64) (a admit, kick bool) {
	s := &t.shards[shard]
	s.mu.Lock()
	e, found := s.m[k]
	if !found && len(s.m) >= t.perShard && !s.evictIdle() {
		s.mu.Unlock()
		t.uncounted.Add(1)
		return uncounted, false
	}
	total := e.local
	if e.remote > 0 && e.remoteUntil > now() {
		total += e.remote
	}
	if total >= t.cap {
		s.mu.Unlock()
		t.refused.Add(1)
		return refused, false
	}
	e.local++
	s.m[k] = e
	s.mu.Unlock()
	return admitted, e.local >= t.threshold && int64(e.local) >= 2*int64(e.published)
}

// release uncounts one connection of k. The entry goes as soon as nothing about the address is
// worth keeping: no connection here, nothing published to withdraw, nothing known from elsewhere.
func (t *connTable) release(k netip.Addr, shard uint8) {
	s := &t.shards[shard]
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[k]
	if !ok { // cannot happen: an entry holding connections is never evicted
		return
	}
	e.local--
	if e.local <= 0 && e.published == 0 && e.remote == 0 {
		delete(s.m, k)
		return
	}
	s.m[k] = e
}

// evictIdle makes room for a new address by dropping one that holds no connection here (only
// knowledge of other instances' counts, or a publication still to withdraw, which then expires in
// Redis on its own). It looks at a few entries only, in the map's random order, so a full table
// costs O(1) per new address; false when none of them is idle.
func (s *connShard) evictIdle() bool {
	const sample = 8
	n := 0
	for k, e := range s.m {
		if e.local <= 0 {
			delete(s.m, k)
			return true
		}
		if n++; n == sample {
			break
		}
	}
	return false
}

// syncItem is one address in an exchange with Redis: what this instance publishes, what it reads.
type syncItem struct {
	key    netip.Addr
	shard  uint8
	count  int32 // published: this instance's count, or 0 to withdraw (and only read)
	remote int32 // read: the other instances' fresh counts
	ok     bool  // the exchange of this item succeeded
}

// collect lists the addresses worth an exchange, at most maxBatch, largest counts first: those
// this instance holds at least threshold connections of, those it published before (to update or
// withdraw) and those other instances hold (to keep knowing). It also forgets remote counts that
// went stale, and the entries left with nothing.
func (t *connTable) collect(now int64, maxBatch int, out []syncItem) []syncItem {
	out = out[:0]
	for i := range t.shards {
		out = t.shards[i].collect(uint8(i), now, t.threshold, out)
	}
	if len(out) > maxBatch {
		slices.SortFunc(out, func(a, b syncItem) int { return int(b.count - a.count) })
		out = out[:maxBatch]
	}
	return out
}

func (s *connShard) collect(shard uint8, now int64, threshold int32, out []syncItem) []syncItem {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, e := range s.m {
		if e.remote > 0 && e.remoteUntil <= now {
			e.remote = 0
			if e.local <= 0 && e.published == 0 {
				delete(s.m, k)
				continue
			}
			s.m[k] = e
		}
		var count int32
		if e.local >= threshold || e.published > 0 {
			count = max(e.local, 0)
		}
		if count > 0 || e.published > 0 || e.remote > 0 {
			out = append(out, syncItem{key: k, shard: shard, count: count})
		}
	}
	return out
}

// apply records what an exchange returned; remote counts hold until validUntil.
func (t *connTable) apply(items []syncItem, validUntil int64) {
	for i := range items {
		it := &items[i]
		if !it.ok {
			continue
		}
		s := &t.shards[it.shard]
		s.mu.Lock()
		if e, found := s.m[it.key]; found {
			e.published = it.count
			e.remote, e.remoteUntil = it.remote, validUntil
			if e.local <= 0 && e.published == 0 && e.remote == 0 {
				delete(s.m, it.key)
			} else {
				s.m[it.key] = e
			}
		}
		s.mu.Unlock()
	}
}

// published lists the addresses this instance has a count published for, to withdraw on Close.
func (t *connTable) publishedItems(out []syncItem) []syncItem {
	out = out[:0]
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for k, e := range s.m {
			if e.published > 0 {
				out = append(out, syncItem{key: k, shard: uint8(i)})
			}
		}
		s.mu.Unlock()
	}
	return out
}

// size is how many addresses the table holds.
func (t *connTable) size() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}
