package affinity

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Listings and per-node counts of a RedisStore, read from the node sets.

// nodes returns the known "pool␟node" pairs, sorted, optionally of one pool.
func (s *RedisStore) nodes(ctx context.Context, pool string) ([][2]string, error) {
	members, err := s.rdb.SMembers(ctx, s.nodesKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("affinity: redis nodes: %w", err)
	}
	var out [][2]string
	for _, m := range members {
		if p, n, ok := parseNodeMember(m); ok && (pool == "" || p == pool) {
			out = append(out, [2]string{p, n})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i][0] < out[j][0] || (out[i][0] == out[j][0] && out[i][1] < out[j][1])
	})
	return out, nil
}

// List implements PinTable: node by node in (pool, node) order, each node's sids in lexicographic order.
func (s *RedisStore) List(ctx context.Context, opts ListOptions) (Page, error) {
	from, err := decodeCursor(opts.Cursor)
	if err != nil {
		return Page{}, err
	}
	nodes, err := s.nodes(ctx, opts.Pool)
	if err != nil {
		return Page{}, err
	}
	limit := opts.limit()
	var page Page
	for _, pn := range nodes {
		if opts.Node != "" && pn[1] != opts.Node {
			continue
		}
		after := ""
		if from != nil {
			if pn[0] < from[0] || (pn[0] == from[0] && pn[1] < from[1]) {
				continue
			}
			if pn[0] == from[0] && pn[1] == from[1] {
				after = from[2]
			}
		}
		full, err := s.listNode(ctx, pn[0], pn[1], after, limit, opts, &page)
		if err != nil || full {
			return page, err
		}
	}
	return page, nil
}

// listNode appends the node's pins after sid `after` to page; true when the page is full.
func (s *RedisStore) listNode(ctx context.Context, pool, node, after string, limit int, opts ListOptions, page *Page) (bool, error) {
	key := s.nodeKey(pool, node, "l")
	// Without a transport or EIO filter every pin read is listed; with one, most may not be, so the
	// batches grow (to listFilterBatch) to spend fewer round trips per page.
	filtered := opts.Transport != "" || opts.EIO != 0
	grow := 1
	for {
		from := "-"
		if after != "" {
			from = "(" + after
		}
		batch := limit - len(page.Pins) + 1
		if filtered {
			batch = max(batch, min(grow*limit, listFilterBatch))
			grow *= 2
		}
		sids, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: key, Start: from, Stop: "+", ByLex: true, Count: int64(batch)}).Result()
		if err != nil {
			return false, fmt.Errorf("affinity: redis list: %w", err)
		}
		if len(sids) == 0 {
			return false, nil
		}
		pins, err := s.readPins(ctx, pool, node, sids)
		if err != nil {
			return false, err
		}
		for _, p := range pins {
			if !opts.matches(&p) {
				continue
			}
			if len(page.Pins) == limit {
				last := page.Pins[limit-1] // of this node or of one walked before
				page.Next = encodeCursor(last.Pool, last.Node, last.SID)
				return true, nil
			}
			page.Pins = append(page.Pins, p)
		}
		after = sids[len(sids)-1]
		if len(sids) < batch {
			return false, nil
		}
	}
}

// listFilterBatch is the largest batch of sids a filtered listing reads at once.
const listFilterBatch = 5000

// readPins fetches the pins of sids (pipelined: sid keys live in different Cluster slots); sids whose
// key expired are dropped from the node's sets on the way.
func (s *RedisStore) readPins(ctx context.Context, pool, node string, sids []string) ([]Pin, error) {
	pipe := s.rdb.Pipeline()
	gets := make([]*redis.StringCmd, len(sids))
	for i, sid := range sids {
		gets[i] = pipe.Get(ctx, s.sidKey(sid))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("affinity: redis read pins: %w", err)
	}
	var pins []Pin
	var gone []any
	for i, sid := range sids {
		p, err := decodePin(sid, gets[i].Val())
		if err != nil {
			gone = append(gone, sid)
			continue
		}
		if p.Pool != pool || p.Node != node {
			// A value that names another node than the set it is listed in would send the cursor
			// elsewhere: it is left out of listings.
			s.log.Warn("pin value disagrees with its node's listing; left out", "sid", sid, "listed_under", node, "value_node", p.Node)
			continue
		}
		if r := s.cache.get(sid); r != nil {
			p.LastSeen = time.Unix(0, r.lastSeen.Load())
		}
		pins = append(pins, p)
	}
	if len(gone) > 0 {
		s.rdb.ZRem(ctx, s.nodeKey(pool, node, "l"), gone...)
		s.rdb.ZRem(ctx, s.nodeKey(pool, node, "e"), gone...)
	}
	return pins, nil
}

// CountByNode implements PinTable: live sessions per node as every instance sees them, reused for
// CountsTTL so handshakes do not each cost a round trip.
func (s *RedisStore) CountByNode(ctx context.Context, pool string) (map[string]int, error) {
	s.mu.Lock()
	if s.counts != nil && time.Since(s.countAt) < s.opts.CountsTTL {
		out := copyCounts(s.counts[pool])
		s.mu.Unlock()
		return out, nil
	}
	s.mu.Unlock()
	octx, cancel := s.opCtx(ctx)
	defer cancel()
	all, err := s.readCounts(octx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.counts, s.countAt = all, time.Now()
	s.mu.Unlock()
	return copyCounts(all[pool]), nil
}

func (s *RedisStore) readCounts(ctx context.Context) (map[string]map[string]int, error) {
	nodes, err := s.nodes(ctx, "")
	if err != nil {
		return nil, err
	}
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(nodes))
	for i, pn := range nodes {
		cmds[i] = pipe.ZCount(ctx, s.nodeKey(pn[0], pn[1], "e"), now, "+inf")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("affinity: redis counts: %w", err)
	}
	all := map[string]map[string]int{}
	for i, pn := range nodes {
		if n := int(cmds[i].Val()); n > 0 {
			if all[pn[0]] == nil {
				all[pn[0]] = map[string]int{}
			}
			all[pn[0]][pn[1]] = n
		}
	}
	return all, nil
}
