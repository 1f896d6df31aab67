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

// MemoryStore is the embedded pin table of a single sidpin instance: go-memdb for lock-free lookups and
// ordered listings, per-node counters beside it, and a sweeper that drops expired pins in batches.
type MemoryStore struct {
	db      *memdb.MemDB
	index   *lookupIndex
	maxPins int
	now     func() time.Time

	mu     sync.Mutex // guards counts and total, changed with every write transaction
	counts map[string]map[string]int
	total  int

	stop chan struct{}
	done chan struct{}
}

// MemoryOptions configures a MemoryStore.
type MemoryOptions struct {
	MaxPins    int           // Pin answers ErrFull beyond it; default 1,000,000
	SweepEvery time.Duration // how often expired pins are removed; default 1s
	Now        func() time.Time
}

// sweepBatch bounds one write transaction of the sweeper, so lookups and pins never wait long on it.
const sweepBatch = 1000

// NewMemoryStore returns a running memory store; Close stops its sweeper.
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
		stop: make(chan struct{}), done: make(chan struct{})}
	go s.sweepLoop(opts.SweepEvery)
	return s, nil
}

func (s *MemoryStore) find(sid string) *record { return s.index.get(sid) }

// Lookup implements Store. An expired pin is absent even before the sweeper removes it.
func (s *MemoryStore) Lookup(_ context.Context, sid string) (Pin, bool, error) {
	r := s.find(sid)
	if r == nil || r.expired(s.now().UnixNano()) {
		return Pin{}, false, nil
	}
	return r.pin(), true, nil
}

// Pin implements Store.
func (s *MemoryStore) Pin(_ context.Context, p Pin) (Pin, bool, error) {
	now := s.now()
	p, err := newPin(p, now)
	if err != nil {
		return Pin{}, false, err
	}
	txn := s.db.Txn(true) // memdb's writer lock: the index below cannot change meanwhile
	defer txn.Abort()
	if r := s.index.get(p.SID); r != nil {
		if !r.expired(now.UnixNano()) {
			return r.pin(), false, nil
		}
		s.delete(txn, r) // an expired pin of a reused sid gives way
	}
	s.mu.Lock()
	full := s.total >= s.maxPins
	s.mu.Unlock()
	if full {
		return Pin{}, false, ErrFull
	}
	r := newRecord(p)
	if err := txn.Insert(pinTable, r); err != nil {
		return Pin{}, false, fmt.Errorf("affinity: insert pin: %w", err)
	}
	s.count(p.Pool, p.Node, +1)
	s.index.put(r) // before Commit, while memdb's writer lock keeps racing Pins and Unpins out
	txn.Commit()
	return p, true, nil
}

// count adjusts the per-node counters; called inside a write transaction, so writers are serialised.
func (s *MemoryStore) count(pool, node string, delta int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	nodes := s.counts[pool]
	if nodes == nil {
		nodes = map[string]int{}
		s.counts[pool] = nodes
	}
	nodes[node] += delta
	if nodes[node] <= 0 {
		delete(nodes, node)
	}
	s.total += delta
}

func (s *MemoryStore) delete(txn *memdb.Txn, r *record) {
	if err := txn.Delete(pinTable, r); err == nil {
		s.count(r.Pool, r.Node, -1)
		s.index.remove(r)
	}
}

// Touch implements Store: one lock-free read and an atomic store, no write transaction.
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
	txn := s.db.Txn(true)
	defer txn.Abort()
	r := s.index.get(sid)
	if r == nil {
		return false, nil
	}
	s.delete(txn, r)
	txn.Commit()
	return !r.expired(s.now().UnixNano()), nil
}

// List implements Store. Pins come ordered by pool, node and sid; the cursor is the last one returned.
func (s *MemoryStore) List(_ context.Context, opts ListOptions) (Page, error) {
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
	out := make(map[string]int, len(s.counts[pool]))
	for node, n := range s.counts[pool] {
		out[node] = n
	}
	return out, nil
}

// Len is the number of pins held, expired ones included until swept.
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

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

func (s *MemoryStore) sweepLoop(every time.Duration) {
	defer close(s.done)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
			s.Sweep()
		}
	}
}

// Sweep removes expired pins, in write transactions of at most sweepBatch deletions. It returns how
// many it removed.
func (s *MemoryStore) Sweep() int {
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
	for len(expired) > 0 {
		n := min(len(expired), sweepBatch)
		txn := s.db.Txn(true)
		for _, r := range expired[:n] {
			if r.expired(now) { // touched since the scan: keep it
				s.delete(txn, r)
				removed++
			}
		}
		txn.Commit()
		expired = expired[n:]
	}
	return removed
}
