package affinity

import (
	"context"
	"fmt"
)

// The memory store's ordered walks of memdb: listings and the sweep of expired pins.

// List implements PinTable. Pins come ordered by pool, node and sid; the cursor is the last one returned.
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

// Sweep removes expired pins and returns how many it removed.
func (s *MemoryStore) Sweep() int {
	s.apply()
	now := s.now().UnixNano()
	removed := 0
	s.mu.Lock()
	for _, r := range s.expiries.take(now, nil) {
		switch {
		case s.index.get(r.SID) != r: // unpinned, or its sid pinned again: nothing to do
		case r.expired(now):
			s.removeLocked(r)
			removed++
		default:
			s.expiries.file(r) // touched since it was filed: due again at its new expiry
		}
	}
	s.mu.Unlock()
	s.apply()
	return removed
}
