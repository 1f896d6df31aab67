package affinity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisStore is the pin table shared by every sidpin instance.
//
// Keys (P = the configured prefix):
//
//	P p:<sid>                  string "pool␟node␟transport␟eio␟client␟createdMs␟ttlMs", expiring with the pin
//	P n:{<pool>␟<node>}:e      sorted set sid -> expiry (ms): live sessions per node, for balancing
//	P n:{<pool>␟<node>}:l      sorted set sid -> 0: the node's sids in order, for cursor listings
//	P nodes                    set of "pool␟node" that ever had a pin
//	P drained                  set of "pool␟node" marked draining at runtime
//	P evict                    pub/sub channel of evicted sids (kicks), heard by every instance
//
// Sid keys carry no hash tag, so they spread over a Cluster; a node's two sets share one tag. The sets
// are kept best effort beside the sid keys (no cross-slot transactions): the sid key is the truth.
//
// A local cache in front answers established sessions without a round trip: pins never move, so a
// cached pin is never wrong about the node; one unpinned elsewhere costs at most one 400 from the
// node, after which the proxy drops it. Touches are batched into one pipeline per FlushEvery.
type RedisStore struct {
	rdb    redis.UniversalClient
	prefix string
	opts   RedisOptions
	log    *slog.Logger

	cache *lookupIndex // sid -> record, the same structure the memory store uses

	mu      sync.Mutex
	touched map[string]time.Duration // sids touched since the last flush -> their ttl
	pending map[string]Pin           // pins made while Redis was unreachable, written when it answers
	// reserved counts handshakes on their way to a pin: while Redis is unreachable they may all land
	// in pending, so they are held against MaxPending.
	reserved int
	counts   map[string]map[string]int
	countAt  time.Time
	epoch    string // the dataset's epoch as last seen: a new one means Redis lost its data

	evicted evictHandlers
	evicts  *redis.PubSub

	stop chan struct{}
	done chan struct{}
}

// RedisOptions configures a RedisStore.
type RedisOptions struct {
	Prefix     string        // default "sidpin:"
	OpTimeout  time.Duration // bound of one Redis operation on the request path; default 100ms
	FlushEvery time.Duration // batched expiry refresh and write-behind replay; default 1s
	SweepEvery time.Duration // removal of expired sids from the node sets; default 5s
	CountsTTL  time.Duration // how long per-node counts are reused before asking Redis again; default 250ms
	MaxPending int           // pins kept for write-behind while Redis is down; default 100,000
	Logger     *slog.Logger
}

func (o *RedisOptions) setDefaults() {
	if o.Prefix == "" {
		o.Prefix = "sidpin:"
	}
	if o.OpTimeout <= 0 {
		o.OpTimeout = 100 * time.Millisecond
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = time.Second
	}
	if o.SweepEvery <= 0 {
		o.SweepEvery = 5 * time.Second
	}
	if o.CountsTTL <= 0 {
		o.CountsTTL = 250 * time.Millisecond
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 100_000
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// NewRedisStore returns a running store over rdb; Close stops its background work (not rdb).
func NewRedisStore(rdb redis.UniversalClient, opts RedisOptions) *RedisStore {
	opts.setDefaults()
	s := &RedisStore{
		rdb: rdb, prefix: opts.Prefix, opts: opts, log: opts.Logger, cache: newLookupIndex(),
		touched: map[string]time.Duration{}, pending: map[string]Pin{},
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	ctx, cancel := context.WithTimeout(context.Background(), opts.OpTimeout)
	s.dataLost(ctx) // records the dataset's epoch (Redis may well be down now: then at the first flush)
	cancel()
	// go-redis resubscribes by itself after a connection loss; evictions sent meanwhile are missed, and
	// those pins then live on in other instances' caches until their sessions' traffic stops.
	s.evicts = rdb.Subscribe(context.Background(), s.evictChannel())
	go s.hearEvictions()
	go s.background()
	return s
}

func (s *RedisStore) evictChannel() string { return s.prefix + "evict" }

func (s *RedisStore) hearEvictions() {
	for msg := range s.evicts.Channel() {
		s.forget(msg.Payload)
		s.evicted.call(msg.Payload)
	}
}

// Evict implements Store: Unpin, then a message on the evict channel that every instance hears.
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

// OnEvict implements Store.
func (s *RedisStore) OnEvict(fn func(string)) { s.evicted.add(fn) }

const sep = "\x1f"

func (s *RedisStore) sidKey(sid string) string { return s.prefix + "p:" + sid }
func (s *RedisStore) nodeKey(pool, node, kind string) string {
	return s.prefix + "n:{" + pool + sep + node + "}:" + kind
}
func (s *RedisStore) nodesKey() string   { return s.prefix + "nodes" }
func (s *RedisStore) epochKey() string   { return s.prefix + "epoch" }
func (s *RedisStore) drainedKey() string { return s.prefix + "drained" }

func encodePin(p Pin) string {
	return strings.Join([]string{p.Pool, p.Node, p.Transport, strconv.Itoa(p.EIO), p.ClientAddr,
		strconv.FormatInt(p.Created.UnixMilli(), 10), strconv.FormatInt(p.TTL.Milliseconds(), 10)}, sep)
}

func decodePin(sid, v string) (Pin, error) {
	f := strings.Split(v, sep)
	if len(f) != 7 {
		return Pin{}, fmt.Errorf("affinity: malformed pin value for %q", sid)
	}
	eio, _ := strconv.Atoi(f[3])
	created, _ := strconv.ParseInt(f[5], 10, 64)
	ttl, _ := strconv.ParseInt(f[6], 10, 64)
	return Pin{SID: sid, Pool: f[0], Node: f[1], Transport: f[2], EIO: eio, ClientAddr: f[4],
		Created: time.UnixMilli(created), TTL: time.Duration(ttl) * time.Millisecond}, nil
}

func (s *RedisStore) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.opts.OpTimeout)
}

// cached returns the live cached record of sid.
func (s *RedisStore) cached(sid string) *record {
	r := s.cache.get(sid)
	if r == nil {
		return nil
	}
	if r.expired(time.Now().UnixNano()) {
		s.cache.remove(r)
		return nil
	}
	return r
}

// Lookup implements Store: the local cache first, then Redis (and the answer is cached).
func (s *RedisStore) Lookup(ctx context.Context, sid string) (Pin, bool, error) {
	var expired *record
	if r := s.cache.get(sid); r != nil {
		if !r.expired(time.Now().UnixNano()) {
			return r.pin(), true, nil
		}
		s.cache.remove(r)
		expired = r
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
	s.cache.put(newRecord(p))
	return p, true, nil
}

// Pin implements Store: SET NX with the pin's lifetime decides between racing instances. When Redis
// cannot be reached the pin is kept locally and written once Redis answers again (write-behind), so a
// Redis outage does not stop new sessions on this instance.
func (s *RedisStore) Pin(ctx context.Context, p Pin) (Pin, bool, error) {
	p, err := newPin(p, time.Now())
	if err != nil {
		return Pin{}, false, err
	}
	if r := s.cached(p.SID); r != nil {
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
	s.cache.put(newRecord(p))
	s.indexPin(octx, p)
	return p, true, nil
}

// ReservePin implements Store. Redis holds any number of pins; only the write-behind of an outage is
// bounded, so room is refused only while pins waiting for Redis and reservations reach MaxPending.
func (s *RedisStore) ReservePin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending)+s.reserved >= s.opts.MaxPending {
		return false
	}
	s.reserved++
	return true
}

// ReleasePin implements Store.
func (s *RedisStore) ReleasePin() {
	s.mu.Lock()
	s.reserved--
	s.mu.Unlock()
}

func (s *RedisStore) pinLocally(p Pin, cause error) (Pin, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) >= s.opts.MaxPending {
		return Pin{}, false, fmt.Errorf("affinity: redis unreachable and write-behind full: %w", cause)
	}
	s.pending[p.SID] = p
	s.cache.put(newRecord(p))
	s.log.Warn("redis unreachable: session pinned on this instance only until redis answers", "sid", p.SID, "err", cause)
	return p, true, nil
}

// indexPin records a new pin in its node's sets (best effort: the sid key is the truth).
func (s *RedisStore) indexPin(ctx context.Context, p Pin) {
	pipe := s.rdb.Pipeline()
	expiry := float64(time.Now().Add(p.TTL).UnixMilli())
	pipe.ZAdd(ctx, s.nodeKey(p.Pool, p.Node, "e"), redis.Z{Score: expiry, Member: p.SID})
	pipe.ZAdd(ctx, s.nodeKey(p.Pool, p.Node, "l"), redis.Z{Score: 0, Member: p.SID})
	pipe.SAdd(ctx, s.nodesKey(), p.Pool+sep+p.Node)
	if _, err := pipe.Exec(ctx); err != nil {
		s.log.Warn("pin stored but not indexed for counts and listing", "sid", p.SID, "err", err)
	}
}

// Touch implements Store: noted locally, refreshed in Redis by the next flush.
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

// setTransport replaces the transport field and keeps the key's lifetime. The fields are split with
// a plain find: Lua 5.1's gmatch with a pattern that can match empty also yields an empty match after
// every field, which shifted them.
var setTransport = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local f, i = {}, 1
while true do
  local j = string.find(v, '\31', i, true)
  if not j then table.insert(f, string.sub(v, i)) break end
  table.insert(f, string.sub(v, i, j - 1))
  i = j + 1
end
if #f ~= 7 then return redis.error_reply('malformed pin value') end
f[3] = ARGV[1]
redis.call('SET', KEYS[1], table.concat(f, '\31'), 'KEEPTTL')
return 1`)

// SetTransport implements Store.
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

// Unpin implements Store.
func (s *RedisStore) Unpin(ctx context.Context, sid string) (bool, error) {
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

// nodes returns the known "pool␟node" pairs, sorted, optionally of one pool.
func (s *RedisStore) nodes(ctx context.Context, pool string) ([][2]string, error) {
	members, err := s.rdb.SMembers(ctx, s.nodesKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("affinity: redis nodes: %w", err)
	}
	var out [][2]string
	for _, m := range members {
		pn := strings.SplitN(m, sep, 2)
		if len(pn) == 2 && (pool == "" || pn[0] == pool) {
			out = append(out, [2]string{pn[0], pn[1]})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i][0] < out[j][0] || (out[i][0] == out[j][0] && out[i][1] < out[j][1])
	})
	return out, nil
}

// List implements Store: node by node in (pool, node) order, each node's sids in lexicographic order.
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

// CountByNode implements Store: live sessions per node as every instance sees them, reused for
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

// UnpinNode implements Store: the node's sids are read from its listing set in batches, their keys
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

// SetDrain implements Store.
func (s *RedisStore) SetDrain(ctx context.Context, ref NodeRef, draining bool) error {
	var err error
	if draining {
		err = s.rdb.SAdd(ctx, s.drainedKey(), ref.Pool+sep+ref.Node).Err()
	} else {
		err = s.rdb.SRem(ctx, s.drainedKey(), ref.Pool+sep+ref.Node).Err()
	}
	if err != nil {
		return fmt.Errorf("affinity: redis set drain %s/%s: %w", ref.Pool, ref.Node, err)
	}
	return nil
}

// Drained implements Store.
func (s *RedisStore) Drained(ctx context.Context) ([]NodeRef, error) {
	members, err := s.rdb.SMembers(ctx, s.drainedKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("affinity: redis drained nodes: %w", err)
	}
	set := make(map[NodeRef]bool, len(members))
	for _, m := range members {
		if pool, node, ok := strings.Cut(m, sep); ok {
			set[NodeRef{Pool: pool, Node: node}] = true
		}
	}
	return sortedRefs(set), nil
}

// LocalTransportCounts implements Store: the sessions in this instance's cache.
func (s *RedisStore) LocalTransportCounts() TransportCounts {
	return s.cache.countTransports(time.Now().UnixNano())
}

// Ping implements Store.
func (s *RedisStore) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("affinity: redis ping: %w", err)
	}
	return nil
}

// Close implements Store: one last flush, then the background work stops.
func (s *RedisStore) Close() error {
	select {
	case <-s.stop:
	default:
		close(s.stop)
		<-s.done
		s.evicts.Close()
	}
	return nil
}

func (s *RedisStore) background() {
	defer close(s.done)
	flush := time.NewTicker(s.opts.FlushEvery)
	sweep := time.NewTicker(s.opts.SweepEvery)
	defer flush.Stop()
	defer sweep.Stop()
	for {
		select {
		case <-s.stop:
			s.flush()
			return
		case <-flush.C:
			s.flush()
		case <-sweep.C:
			s.sweep()
		}
	}
}

// flush writes pins made during an outage, then refreshes the lifetimes of touched sids, in pipelines.
func (s *RedisStore) flush() {
	s.mu.Lock()
	pending, touched := s.pending, s.touched
	s.pending, s.touched = map[string]Pin{}, map[string]time.Duration{}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*s.opts.OpTimeout+time.Second)
	defer cancel()
	if err := s.replay(ctx, pending); err != nil {
		s.requeue(pending, nil)
		s.requeue(nil, touched)
		return
	}
	if err := s.refresh(ctx, touched); err != nil {
		s.requeue(nil, touched)
	}
}

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

func (s *RedisStore) lastSeen(sid string, p Pin) int64 {
	if r := s.cache.get(sid); r != nil {
		return r.lastSeen.Load()
	}
	return p.LastSeen.UnixNano()
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
		r := s.cached(sid)
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
