package affinity

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// The background flush of a RedisStore, every FlushEvery: the write-behind replay, the batched
// expiry refresh of touched sids, and the recovery of pins when Redis lost its data (the epoch).

// flush writes pins made during an outage, then refreshes the lifetimes of touched sids, in pipelines.
func (s *RedisStore) flush() {
	s.mu.Lock()
	pending, touched := s.pending, s.touched
	s.pending, s.touched = map[string]Pin{}, map[string]time.Duration{}
	s.forgetUnpins(time.Now().UnixNano())
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*s.opts.OpTimeout+time.Second)
	defer cancel()
	if err := s.replay(ctx, pending); err != nil {
		s.requeue(pending, touched)
		return
	}
	if err := s.refresh(ctx, touched); err != nil {
		s.requeue(nil, touched)
	}
}

// refresh extends the lifetimes of touched sids. A touched sid whose key is missing was either
// unpinned by another instance (the session ended: forget it here too) or lost with Redis's data (a
// new epoch: write it back from the cache, so the table converges to the live sessions again).
func (s *RedisStore) refresh(ctx context.Context, touched map[string]time.Duration) error {
	if len(touched) == 0 {
		return nil
	}
	pipe := s.rdb.Pipeline()
	expires := make(map[string]*redis.BoolCmd, len(touched))
	for sid, ttl := range touched {
		expires[sid] = pipe.PExpire(ctx, s.sidKey(sid), ttl)
		if r := s.cache.get(sid); r != nil {
			pipe.ZAddXX(ctx, s.nodeKey(r.Pool, r.Node, "e"), redis.Z{Score: float64(time.Now().Add(ttl).UnixMilli()), Member: sid})
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	lost := s.dataLost(ctx)
	for sid, cmd := range expires {
		if cmd.Val() {
			continue
		}
		r, _ := s.cached(sid)
		if r == nil {
			continue
		}
		if !lost {
			s.forget(sid) // unpinned elsewhere: the session is over
			continue
		}
		p := r.pin()
		if s.rdb.SetNX(ctx, s.sidKey(sid), encodePin(p), p.TTL).Val() {
			s.indexPin(ctx, p)
			s.log.Info("redis lost its data: pin restored from this instance's cache", "sid", sid, "node", p.Node)
		}
	}
	return nil
}

// currentEpoch returns the dataset's epoch, creating it if there is none. The epoch key is written
// once per dataset and never deleted by sidpin: if it is gone, or different from what this instance
// saw before, Redis lost its data (restarted without persistence, flushed, a lossy failover).
func (s *RedisStore) currentEpoch(ctx context.Context) (string, error) {
	if err := s.rdb.SetNX(ctx, s.epochKey(), newEpoch(), 0).Err(); err != nil {
		return "", err
	}
	return s.rdb.Get(ctx, s.epochKey()).Result()
}

func newEpoch() string { return strconv.FormatInt(time.Now().UnixNano(), 36) }

// dataLost reports whether Redis lost its data since this instance last looked (the first look
// only records the epoch).
func (s *RedisStore) dataLost(ctx context.Context) bool {
	epoch, err := s.currentEpoch(ctx)
	if err != nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	lost := s.epoch != "" && s.epoch != epoch
	s.epoch = epoch
	return lost
}
