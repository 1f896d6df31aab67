package affinity

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Removing pins in bulk from Redis: every pin of a node (UnpinNode), and expired sids from the node
// sets (the sweep; sid keys expire by themselves).

// UnpinNode implements PinTable: the node's sids are read from its listing set in batches, their keys
// deleted, then the node's sets. Any instance may do it; twice is harmless.
func (s *RedisStore) UnpinNode(ctx context.Context, pool, node string, each func(string)) (int, error) {
	if each == nil {
		each = func(string) {}
	}
	for _, r := range s.cache.ofNode(pool, node) {
		s.forget(r.SID)
		each(r.SID)
	}
	list, expiry := s.nodeKey(pool, node, "l"), s.nodeKey(pool, node, "e")
	removed := 0
	for {
		sids, err := s.rdb.ZRange(ctx, list, 0, unpinBatch-1).Result()
		if err != nil {
			return removed, fmt.Errorf("affinity: redis unpin node %s/%s: %w", pool, node, err)
		}
		if len(sids) == 0 {
			break
		}
		n, err := s.unpinBatch(ctx, list, expiry, sids)
		for _, sid := range sids {
			each(sid)
		}
		removed += n
		if err != nil {
			return removed, fmt.Errorf("affinity: redis unpin node %s/%s: %w", pool, node, err)
		}
	}
	if err := s.rdb.Del(ctx, list, expiry).Err(); err != nil {
		return removed, fmt.Errorf("affinity: redis unpin node %s/%s: %w", pool, node, err)
	}
	return removed, nil
}

// unpinBatch is how many sids one UnpinNode pipeline deletes.
const unpinBatch = 500

func (s *RedisStore) unpinBatch(ctx context.Context, list, expiry string, sids []string) (int, error) {
	pipe := s.rdb.Pipeline()
	dels := make([]*redis.IntCmd, len(sids))
	members := make([]any, len(sids))
	for i, sid := range sids {
		dels[i] = pipe.Del(ctx, s.sidKey(sid))
		members[i] = sid
	}
	pipe.ZRem(ctx, list, members...)
	pipe.ZRem(ctx, expiry, members...)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, err
	}
	n := 0
	for _, d := range dels {
		n += int(d.Val())
	}
	return n, nil
}

// sweep drops sids whose key expired from the node sets; a sid still alive (touched through another
// instance) gets its expiry score corrected instead. Any instance may sweep; twice is harmless.
func (s *RedisStore) sweep() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*s.opts.OpTimeout+time.Second)
	defer cancel()
	nodes, err := s.nodes(ctx, "")
	if err != nil {
		return
	}
	for _, pn := range nodes {
		s.sweepNode(ctx, pn[0], pn[1])
	}
	s.cache.dropExpired(time.Now().UnixNano())
}

func (s *RedisStore) sweepNode(ctx context.Context, pool, node string) {
	key := s.nodeKey(pool, node, "e")
	now := time.Now()
	expired, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: key, Start: "-inf",
		Stop: "(" + strconv.FormatInt(now.UnixMilli(), 10), ByScore: true, Count: 1000}).Result()
	if err != nil || len(expired) == 0 {
		return
	}
	pipe := s.rdb.Pipeline()
	ttls := make([]*redis.DurationCmd, len(expired))
	for i, sid := range expired {
		ttls[i] = pipe.PTTL(ctx, s.sidKey(sid))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return
	}
	pipe = s.rdb.Pipeline()
	for i, sid := range expired {
		if ttl := ttls[i].Val(); ttl > 0 {
			pipe.ZAdd(ctx, key, redis.Z{Score: float64(now.Add(ttl).UnixMilli()), Member: sid})
			continue
		}
		pipe.ZRem(ctx, key, sid)
		pipe.ZRem(ctx, s.nodeKey(pool, node, "l"), sid)
	}
	_, _ = pipe.Exec(ctx)
}
