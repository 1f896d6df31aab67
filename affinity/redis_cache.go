package affinity

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// The local cache of a RedisStore holds the pins this instance has routed, so that an established
// session costs no round trip. Pins never move: a cached pin is never wrong about the node.

// cached returns the live cached record of sid. An expired one is dropped from the cache and
// returned as expired.
func (s *RedisStore) cached(sid string) (live, expired *record) {
	r := s.cache.get(sid)
	if r == nil {
		return nil, nil
	}
	if r.expired(time.Now().UnixNano()) {
		s.cache.remove(r)
		return nil, r
	}
	return r, nil
}

// Lookup implements PinTable: the local cache first, then Redis (and the answer is cached).
func (s *RedisStore) Lookup(ctx context.Context, sid string) (Pin, bool, error) {
	live, expired := s.cached(sid)
	if live != nil {
		return live.pin(), true, nil
	}
	octx, cancel := s.opCtx(ctx)
	defer cancel()
	pipe := s.rdb.Pipeline()
	get := pipe.Get(octx, s.sidKey(sid))
	ttl := pipe.PTTL(octx, s.sidKey(sid))
	_, err := pipe.Exec(octx)
	if errors.Is(err, redis.Nil) || (err == nil && get.Val() == "") {
		if expired != nil {
			return expired.pin(), false, nil
		}
		return Pin{}, false, nil
	}
	if err != nil {
		return Pin{}, false, fmt.Errorf("affinity: redis lookup: %w", err)
	}
	p, err := decodePin(sid, get.Val())
	if err != nil {
		return Pin{}, false, err
	}
	// LastSeen is when the key's current lifetime began.
	p.LastSeen = time.Now().Add(ttl.Val() - p.TTL)
	s.cacheLookedUp(p)
	return p, true, nil
}

// unpinMemory is how long an unpin keeps lookups of its sid from caching what they read: longer
// than any lookup's read takes.
const unpinMemory = 10 * time.Second

// cacheLookedUp caches a pin read from Redis, unless its sid was unpinned lately: the read may have
// come before the unpin's delete, and the cache would then keep a session Redis no longer has.
func (s *RedisStore) cacheLookedUp(p Pin) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, gone := s.unpinned[p.SID]; gone {
		return
	}
	s.cache.put(newRecord(p))
}

// forgetUnpins drops the unpins older than unpinMemory; s.mu is held.
func (s *RedisStore) forgetUnpins(now int64) {
	for sid, at := range s.unpinned {
		if now-at > int64(unpinMemory) {
			delete(s.unpinned, sid)
		}
	}
}

// LookupNow implements PinTable: a pin cached live answers at once; anything else needs Redis (an
// expired cached pin may have been refreshed by another instance).
func (s *RedisStore) LookupNow(sid string) (Pin, bool, bool) {
	r := s.cache.get(sid)
	if r == nil || r.expired(time.Now().UnixNano()) {
		return Pin{}, false, false
	}
	return r.pin(), true, true
}

// forget drops everything this instance holds of sid and returns its cached pin, if any.
func (s *RedisStore) forget(sid string) (p Pin, cached, pending bool) {
	if r := s.cache.get(sid); r != nil {
		p, cached = r.pin(), true
		s.cache.remove(r)
	}
	s.mu.Lock()
	delete(s.touched, sid)
	_, pending = s.pending[sid]
	delete(s.pending, sid)
	s.mu.Unlock()
	return p, cached, pending
}

// lastSeen is when this instance last saw traffic of sid: its cached record's, else p's.
func (s *RedisStore) lastSeen(sid string, p Pin) int64 {
	if r := s.cache.get(sid); r != nil {
		return r.lastSeen.Load()
	}
	return p.LastSeen.UnixNano()
}

// LocalTransportCounts implements PinTable: the sessions in this instance's cache.
func (s *RedisStore) LocalTransportCounts() TransportCounts {
	return s.cache.countTransports(time.Now().UnixNano())
}
