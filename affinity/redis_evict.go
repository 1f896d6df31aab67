package affinity

import (
	"context"
	"fmt"
)

// Evictions of a RedisStore (ClusterState): a pub/sub channel that every instance hears.

// subscribe starts hearing the evict channel. go-redis resubscribes by itself after a connection
// loss; evictions sent meanwhile are missed, and those pins then live on in other instances' caches
// until their sessions' traffic stops.
func (s *RedisStore) subscribe() {
	s.evicts = s.rdb.Subscribe(context.Background(), s.evictChannel())
	go s.hearEvictions()
}

func (s *RedisStore) hearEvictions() {
	for msg := range s.evicts.Channel() {
		s.forget(msg.Payload)
		s.evicted.call(msg.Payload)
	}
}

// Evict implements ClusterState: Unpin, then a message on the evict channel that every instance hears.
func (s *RedisStore) Evict(ctx context.Context, sid string) (bool, error) {
	ok, err := s.Unpin(ctx, sid)
	if err != nil || !ok {
		return ok, err
	}
	octx, cancel := s.opCtx(ctx)
	defer cancel()
	if err := s.rdb.Publish(octx, s.evictChannel(), sid).Err(); err != nil {
		return true, fmt.Errorf("affinity: redis evict %s: unpinned, but other instances were not told: %w", sid, err)
	}
	return true, nil
}

// OnEvict implements ClusterState.
func (s *RedisStore) OnEvict(fn func(string)) { s.evicted.add(fn) }
