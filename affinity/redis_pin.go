package affinity

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Pinning, touches and unpinning in Redis, and the write-behind that keeps new sessions working on
// this instance while Redis is unreachable.

// Pin implements PinTable: SET NX with the pin's lifetime decides between racing instances. When Redis
// cannot be reached the pin is kept locally and written once Redis answers again (write-behind), so a
// Redis outage does not stop new sessions on this instance.
func (s *RedisStore) Pin(ctx context.Context, p Pin) (Pin, bool, error) {
	p, err := newPin(p, time.Now())
	if err != nil {
		return Pin{}, false, err
	}
	if r, _ := s.cached(p.SID); r != nil {
		return r.pin(), false, nil
	}
	octx, cancel := s.opCtx(ctx)
	defer cancel()
	ok, err := s.rdb.SetNX(octx, s.sidKey(p.SID), encodePin(p), p.TTL).Result()
	if err != nil {
		return s.pinLocally(p, err)
	}
	if !ok {
		cur, found, err := s.Lookup(ctx, p.SID)
		if err != nil || !found {
			return Pin{}, false, fmt.Errorf("affinity: sid %q is pinned but unreadable: %v", p.SID, err)
		}
		return cur, false, nil
	}
	s.mu.Lock()
	delete(s.unpinned, p.SID) // pinned again: lookups may cache it
	s.mu.Unlock()
	s.cache.put(newRecord(p))
	s.indexPin(octx, p)
	return p, true, nil
}

// indexPin records a new pin in its node's sets (best effort: the sid key is the truth).
func (s *RedisStore) indexPin(ctx context.Context, p Pin) {
	pipe := s.rdb.Pipeline()
	expiry := float64(time.Now().Add(p.TTL).UnixMilli())
	pipe.ZAdd(ctx, s.nodeKey(p.Pool, p.Node, "e"), redis.Z{Score: expiry, Member: p.SID})
	pipe.ZAdd(ctx, s.nodeKey(p.Pool, p.Node, "l"), redis.Z{Score: 0, Member: p.SID})
	pipe.SAdd(ctx, s.nodesKey(), nodeMember(p.Pool, p.Node))
	if _, err := pipe.Exec(ctx); err != nil {
		s.log.Warn("pin stored but not indexed for counts and listing", "sid", p.SID, "err", err)
	}
}

// Touch implements PinTable: noted locally, refreshed in Redis by the next flush.
func (s *RedisStore) Touch(sid string) {
	r := s.cache.get(sid)
	if r == nil {
		return
	}
	r.lastSeen.Store(time.Now().UnixNano())
	s.mu.Lock()
	s.touched[sid] = r.ttl
	s.mu.Unlock()
}

// SetTransport implements PinTable.
func (s *RedisStore) SetTransport(ctx context.Context, sid, transport string) error {
	if r := s.cache.get(sid); r != nil {
		r.transport.Store(&transport)
	}
	octx, cancel := s.opCtx(ctx)
	defer cancel()
	if err := setTransport.Run(octx, s.rdb, []string{s.sidKey(sid)}, transport).Err(); err != nil {
		return fmt.Errorf("affinity: redis set transport: %w", err)
	}
	return nil
}

// Unpin implements PinTable.
func (s *RedisStore) Unpin(ctx context.Context, sid string) (bool, error) {
	s.mu.Lock()
	s.unpinned[sid] = time.Now().UnixNano()
	s.mu.Unlock()
	p, found, wasPending := s.forget(sid)
	octx, cancel := s.opCtx(ctx)
	defer cancel()
	if !found {
		v, err := s.rdb.Get(octx, s.sidKey(sid)).Result()
		if errors.Is(err, redis.Nil) {
			return wasPending, nil
		}
		if err != nil {
			return false, fmt.Errorf("affinity: redis unpin: %w", err)
		}
		if p, err = decodePin(sid, v); err != nil {
			return false, err
		}
	}
	pipe := s.rdb.Pipeline()
	del := pipe.Del(octx, s.sidKey(sid))
	pipe.ZRem(octx, s.nodeKey(p.Pool, p.Node, "e"), sid)
	pipe.ZRem(octx, s.nodeKey(p.Pool, p.Node, "l"), sid)
	if _, err := pipe.Exec(octx); err != nil {
		return false, fmt.Errorf("affinity: redis unpin: %w", err)
	}
	return del.Val() == 1 || wasPending, nil
}

// ReservePin implements PinTable. Redis holds any number of pins; only the write-behind of an outage
// is bounded, so room is refused only while pins waiting for Redis and reservations reach MaxPending.
func (s *RedisStore) ReservePin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending)+s.reserved >= s.opts.MaxPending {
		return false
	}
	s.reserved++
	return true
}

// ReleasePin implements PinTable.
func (s *RedisStore) ReleasePin() {
	s.mu.Lock()
	s.reserved--
	s.mu.Unlock()
}

// pinLocally keeps p on this instance while Redis is unreachable, up to MaxPending pins.
func (s *RedisStore) pinLocally(p Pin, cause error) (Pin, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) >= s.opts.MaxPending {
		return Pin{}, false, fmt.Errorf("affinity: redis unreachable and write-behind full: %w", cause)
	}
	s.pending[p.SID] = p
	delete(s.unpinned, p.SID)
	s.cache.put(newRecord(p))
	s.log.Warn("redis unreachable: session pinned on this instance only until redis answers", "sid", p.SID, "err", cause)
	return p, true, nil
}

// replay writes the pins made during an outage; those written leave pending. Sessions that died
// meanwhile are dropped.
func (s *RedisStore) replay(ctx context.Context, pending map[string]Pin) error {
	for sid, p := range pending {
		if time.Since(time.Unix(0, s.lastSeen(sid, p))) > p.TTL {
			continue // the session died during the outage
		}
		if err := s.rdb.SetNX(ctx, s.sidKey(sid), encodePin(p), p.TTL).Err(); err != nil {
			return err
		}
		s.indexPin(ctx, p)
		delete(pending, sid)
	}
	return nil
}

// requeue puts back work that could not reach Redis, for the next flush.
func (s *RedisStore) requeue(pending map[string]Pin, touched map[string]time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sid, p := range pending {
		if _, ok := s.pending[sid]; !ok && len(s.pending) < s.opts.MaxPending {
			s.pending[sid] = p
		}
	}
	for sid, ttl := range touched {
		s.touched[sid] = ttl
	}
}
