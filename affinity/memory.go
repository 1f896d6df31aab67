package affinity

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
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

	applyMu sync.Mutex // one memdb writer at a time

	drained map[NodeRef]bool // guarded by mu
	evicted evictHandlers

	stop chan struct{}
	done chan struct{}
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
		drained: map[NodeRef]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	go s.background(opts.SweepEvery)
	return s, nil
}

func (s *MemoryStore) find(sid string) *record { return s.index.get(sid) }

// Lookup implements Store. An expired pin is absent even before the sweeper removes it.
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

// ReservePin implements Store: room is held while pins plus reservations stay under max_pins.
func (s *MemoryStore) ReservePin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.total+s.reserved >= s.maxPins {
		return false
	}
	s.reserved++
	return true
}

// ReleasePin implements Store.
func (s *MemoryStore) ReleasePin() {
	s.mu.Lock()
	s.reserved--
	s.mu.Unlock()
}

// Pin implements Store.
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
	s.countLocked(r, +1)
	s.queue = append(s.queue, memChange{r: r, insert: true})
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
func (s *MemoryStore) apply() {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.mu.Lock()
	queue := s.queue
	s.queue = nil
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

// Touch implements Store: one sharded-map read and an atomic store, no write transaction.
func (s *MemoryStore) Touch(sid string) {
	if r := s.find(sid); r != nil {
		r.lastSeen.Store(s.now().UnixNano())
	}
}

// SetTransport implements Store.
func (s *MemoryStore) SetTransport(_ context.Context, sid, transport string) error {
	if r := s.find(sid); r != nil {
		r.transport.Store(&transport)
	}
	return nil
}

// Unpin implements Store.
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

// Evict implements Store: one instance, so Unpin and the local handlers.
func (s *MemoryStore) Evict(ctx context.Context, sid string) (bool, error) {
	ok, err := s.Unpin(ctx, sid)
	if ok {
		s.evicted.call(sid)
	}
	return ok, err
}

// OnEvict implements Store.
func (s *MemoryStore) OnEvict(fn func(string)) { s.evicted.add(fn) }

// List implements Store. Pins come ordered by pool, node and sid; the cursor is the last one returned.
func (s *MemoryStore) List(_ context.Context, opts ListOptions) (Page, error) {
	s.apply()
	from, err := decodeCursor(opts.Cursor)
	if err != nil {
		return Page{}, err
	}
	if from == nil && opts.Pool != "" {
		from = []string{opts.Pool, opts.Node, ""}
	}
	if from == nil {
		from = []string{"", "", ""}
	}
	it, err := s.db.Txn(false).LowerBound(pinTable, indexNode, from[0], from[1], from[2])
	if err != nil {
		return Page{}, fmt.Errorf("affinity: list: %w", err)
	}
	limit, now := opts.limit(), s.now().UnixNano()
	var page Page
	for raw := it.Next(); raw != nil; raw = it.Next() {
		r := raw.(*record)
		if opts.Cursor != "" && r.Pool == from[0] && r.Node == from[1] && r.SID == from[2] {
			continue // the cursor's own pin was on the previous page
		}
		if outOfScope(opts, r) {
			break
		}
		pin := r.pin()
		if r.expired(now) || !opts.matches(&pin) {
			continue
		}
		if len(page.Pins) == limit {
			last := page.Pins[limit-1]
			page.Next = encodeCursor(last.Pool, last.Node, last.SID)
			break
		}
		page.Pins = append(page.Pins, pin)
	}
	return page, nil
}

// outOfScope reports that the ordered walk has left the pool (or node) the listing asked for.
func outOfScope(opts ListOptions, r *record) bool {
	return (opts.Pool != "" && r.Pool != opts.Pool) || (opts.Node != "" && r.Node != opts.Node)
}

func encodeCursor(pool, node, sid string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(pool + "\x00" + node + "\x00" + sid))
}

func decodeCursor(c string) ([]string, error) {
	if c == "" {
		return nil, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(c)
	parts := strings.Split(string(raw), "\x00")
	if err != nil || len(parts) != 3 {
		return nil, ErrBadCursor
	}
	return parts, nil
}

// CountByNode implements Store. Counts include expired pins until the next sweep (at most SweepEvery).
func (s *MemoryStore) CountByNode(_ context.Context, pool string) (map[string]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copyCounts(s.counts[pool]), nil
}

// UnpinNode implements Store.
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

// SetDrain implements Store.
func (s *MemoryStore) SetDrain(_ context.Context, ref NodeRef, draining bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if draining {
		s.drained[ref] = true
	} else {
		delete(s.drained, ref)
	}
	return nil
}

// Drained implements Store.
func (s *MemoryStore) Drained(context.Context) ([]NodeRef, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sortedRefs(s.drained), nil
}

// Len is the number of pins held, expired ones included until swept.
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// LocalTransportCounts implements Store: every session of the table.
func (s *MemoryStore) LocalTransportCounts() TransportCounts {
	return s.index.countTransports(s.now().UnixNano())
}

// Ping implements Store: the memory table always answers.
func (s *MemoryStore) Ping(context.Context) error { return nil }

// Close implements Store.
func (s *MemoryStore) Close() error {
	select {
	case <-s.stop:
	default:
		close(s.stop)
		<-s.done
	}
	return nil
}

func (s *MemoryStore) background(sweepEvery time.Duration) {
	defer close(s.done)
	apply := time.NewTicker(applyEvery)
	sweep := time.NewTicker(sweepEvery)
	defer apply.Stop()
	defer sweep.Stop()
	for {
		select {
		case <-s.stop:
			s.apply()
			return
		case <-apply.C:
			s.apply()
		case <-sweep.C:
			s.Sweep()
		}
	}
}

// Sweep removes expired pins and returns how many it removed.
func (s *MemoryStore) Sweep() int {
	s.apply()
	now := s.now().UnixNano()
	var expired []*record
	it, err := s.db.Txn(false).Get(pinTable, indexNode)
	if err != nil {
		return 0
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if r := raw.(*record); r.expired(now) {
			expired = append(expired, r)
		}
	}
	removed := 0
	s.mu.Lock()
	for _, r := range expired {
		if s.index.get(r.SID) == r && r.expired(now) { // still this pin, and not touched since the scan
			s.removeLocked(r)
			removed++
		}
	}
	s.mu.Unlock()
	s.apply()
	return removed
}
