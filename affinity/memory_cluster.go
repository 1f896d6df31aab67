package affinity

import "context"

// The memory store's ClusterState: one instance, so drain marks live in its memory and an eviction
// is heard by this instance alone.

// Evict implements ClusterState: Unpin, then this instance's handlers.
func (s *MemoryStore) Evict(ctx context.Context, sid string) (bool, error) {
	ok, err := s.Unpin(ctx, sid)
	if ok {
		s.evicted.call(sid)
	}
	return ok, err
}

// OnEvict implements ClusterState.
func (s *MemoryStore) OnEvict(fn func(string)) { s.evicted.add(fn) }

// SetDrain implements ClusterState.
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

// Drained implements ClusterState.
func (s *MemoryStore) Drained(context.Context) ([]NodeRef, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sortedRefs(s.drained), nil
}
