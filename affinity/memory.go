package affinity

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-memdb"
)

// MemoryStore is the embedded pin table of a single sidpin instance. A sharded sid index answers
// lookups, touches and "is this sid pinned?" (no allocation, no memdb transaction); go-memdb keeps the
// pins ordered by pool, node and sid for listings and per-node walks; per-node counters sit beside both.
//
// memdb changes are queued and applied in batches: one write transaction copies the radix path once
// for many pins instead of once per pin (about 6 KB of garbage each), which was most of the garbage,
// and so of the GC headroom, a new session cost. Listings and sweeps apply the queue first.
type MemoryStore struct {
	db      *memdb.MemDB
	index   *lookupIndex
	maxPins int
	now     func() time.Time

	mu       sync.Mutex // serialises changes: index membership, counters and the queue, kept in step
	counts   map[string]map[string]int
	total    int
	reserved int         // handshakes on their way to a pin (ReservePin)
	queue    []memChange // memdb changes not applied yet, in order
	expiries expiryWheel // every record, by when it would expire: what Sweep looks at
	applying bool        // an apply is due within applyEvery (applySoon)

	applyMu sync.Mutex // one memdb writer at a time

	drained    map[NodeRef]bool      // guarded by mu
	migrations map[NodeRef]Migration // guarded by mu
	instances  map[string]Instance   // guarded by mu
	evicted    evictHandlers

	loop *loop
}

// memChange is one queued memdb change.
type memChange struct {
	r      *record
	insert bool // false: delete
}

// MemoryOptions configures a MemoryStore.
type MemoryOptions struct {
	MaxPins    int           // Pin answers ErrFull beyond it; default 1,000,000
	SweepEvery time.Duration // how often expired pins are removed; default 1s
	Now        func() time.Time
}

const (
	// applyBatch is the queue length at which a Pin applies the queue itself.
	applyBatch = 1000
	// applyEvery bounds how long a change waits in the queue otherwise.
	applyEvery = 50 * time.Millisecond
)

// NewMemoryStore returns a running memory store; Close stops its background work.
func NewMemoryStore(opts MemoryOptions) (*MemoryStore, error) {
	db, err := memdb.NewMemDB(memSchema())
	if err != nil {
		return nil, fmt.Errorf("affinity: memdb schema: %w", err)
	}
	if opts.MaxPins <= 0 {
		opts.MaxPins = 1_000_000
	}
	if opts.SweepEvery <= 0 {
		opts.SweepEvery = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &MemoryStore{db: db, index: newLookupIndex(), maxPins: opts.MaxPins, now: opts.Now, counts: map[string]map[string]int{},
		drained: map[NodeRef]bool{}, migrations: map[NodeRef]Migration{}, instances: map[string]Instance{}}
	sweep := func() { s.Sweep() }
	s.loop = startLoop(s.apply, job{opts.SweepEvery, sweep}) // changes are applied by applySoon
	return s, nil
}

func (s *MemoryStore) find(sid string) *record { return s.index.get(sid) }

// Lookup implements PinTable. An expired pin is absent even before the sweeper removes it.
func (s *MemoryStore) Lookup(_ context.Context, sid string) (Pin, bool, error) {
	r := s.find(sid)
	switch {
	case r == nil:
		return Pin{}, false, nil
	case r.expired(s.now().UnixNano()):
		return r.pin(), false, nil
	}
	return r.pin(), true, nil
}

// LookupNow implements PinTable: the memory table always answers at once.
func (s *MemoryStore) LookupNow(sid string) (Pin, bool, bool) {
	p, ok, _ := s.Lookup(context.Background(), sid)
	return p, ok, true
}

// ReservePin implements PinTable: room is held while pins plus reservations stay under max_pins.
func (s *MemoryStore) ReservePin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.total+s.reserved >= s.maxPins {
		return false
	}
	s.reserved++
	return true
}

// ReleasePin implements PinTable.
func (s *MemoryStore) ReleasePin() {
	s.mu.Lock()
	s.reserved--
	s.mu.Unlock()
}

// Pin implements PinTable.
func (s *MemoryStore) Pin(_ context.Context, p Pin) (Pin, bool, error) {
	now := s.now()
	p, err := newPin(p, now)
	if err != nil {
		return Pin{}, false, err
	}
	s.mu.Lock()
	if r := s.index.get(p.SID); r != nil {
		if !r.expired(now.UnixNano()) {
			s.mu.Unlock()
			return r.pin(), false, nil
		}
		s.removeLocked(r) // an expired pin of a reused sid gives way
	}
	if s.total >= s.maxPins {
		s.mu.Unlock()
		return Pin{}, false, ErrFull
	}
	r := newRecord(p)
	s.index.put(r)
	s.expiries.file(r)
	s.countLocked(r, +1)
	s.queue = append(s.queue, memChange{r: r, insert: true})
	s.applySoon()
	full := len(s.queue) >= applyBatch
	s.mu.Unlock()
	if full {
		s.apply()
	}
	return p, true, nil
}

// removeLocked takes r out of the index and the counters and queues its memdb deletion.
func (s *MemoryStore) removeLocked(r *record) {
	s.index.remove(r)
	s.countLocked(r, -1)
	s.queue = append(s.queue, memChange{r: r})
	s.applySoon()
}

func (s *MemoryStore) countLocked(r *record, delta int) {
	nodes := s.counts[r.Pool]
	if nodes == nil {
		nodes = map[string]int{}
		s.counts[r.Pool] = nodes
	}
	nodes[r.Node] += delta
	if nodes[r.Node] <= 0 {
		delete(nodes, r.Node)
	}
	s.total += delta
}

// apply writes the queued changes to memdb in one transaction, in order.
// applySoon has the queued changes applied within applyEvery; s.mu is held. Only a store with
// changes waits for it: a ticker every applyEvery was most of an idle sidpin's CPU (5 of 6 ms/s).
func (s *MemoryStore) applySoon() {
	if !s.applying {
		s.applying = true
		time.AfterFunc(applyEvery, s.apply)
	}
}

func (s *MemoryStore) apply() {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.mu.Lock()
	queue := s.queue
	s.queue = nil
	s.applying = false
	s.mu.Unlock()
	if len(queue) == 0 {
		return
	}
	txn := s.db.Txn(true)
	for _, c := range queue {
		if c.insert {
			_ = txn.Insert(pinTable, c.r) // cannot fail: the schema's indexer reads plain string fields
		} else {
			_ = txn.Delete(pinTable, c.r) // not found: inserted and removed in one batch is fine
		}
	}
	txn.Commit()
}

// Touch implements PinTable: one sharded-map read and an atomic store, no write transaction.
func (s *MemoryStore) Touch(sid string) {
	if r := s.find(sid); r != nil {
		r.lastSeen.Store(s.now().UnixNano())
	}
}

// SetTransport implements PinTable.
func (s *MemoryStore) SetTransport(_ context.Context, sid, transport string) error {
	if r := s.find(sid); r != nil {
		r.transport.Store(&transport)
	}
	return nil
}

// Unpin implements PinTable.
func (s *MemoryStore) Unpin(_ context.Context, sid string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.index.get(sid)
	if r == nil {
		return false, nil
	}
	s.removeLocked(r)
	return !r.expired(s.now().UnixNano()), nil
}

// CountByNode implements PinTable. Counts include expired pins until the next sweep (at most SweepEvery).
func (s *MemoryStore) CountByNode(_ context.Context, pool string) (map[string]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copyCounts(s.counts[pool]), nil
}

// UnpinNode implements PinTable.
func (s *MemoryStore) UnpinNode(_ context.Context, pool, node string, each func(string)) (int, error) {
	now := s.now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	removed := 0
	for _, r := range s.index.ofNode(pool, node) { // s.mu held: no record comes or goes meanwhile
		s.removeLocked(r)
		if !r.expired(now) {
			removed++
			if each != nil {
				each(r.SID)
			}
		}
	}
	return removed, nil
}

// Len is the number of pins held, expired ones included until swept.
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// LocalTransportCounts implements PinTable: every session of the table.
func (s *MemoryStore) LocalTransportCounts() TransportCounts {
	return s.index.countTransports(s.now().UnixNano())
}

// Ping implements PinTable: the memory table always answers.
func (s *MemoryStore) Ping(context.Context) error { return nil }

// Close implements Store: the queue is applied, then the background work stops.
func (s *MemoryStore) Close() error {
	s.loop.close()
	return nil
}
