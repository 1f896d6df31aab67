package affinity

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisStore is the pin table shared by every sidpin instance. Its code is cut by concern:
//
//	redis_keys.go    key layout and the encoding of a pin
//	redis_cache.go   the local cache and lookups
//	redis_pin.go     pinning, touches, unpinning and the write-behind of an outage
//	redis_list.go    listings and per-node counts
//	redis_purge.go   removing a node's pins, sweeping expired sids from the node sets
//	redis_drain.go   drain marks (ClusterState)
//	redis_evict.go   evictions over pub/sub (ClusterState)
//	redis_flush.go   the background flush: expiry refresh, write-behind replay, data-loss recovery
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
	// unpinned are the sids this instance unpinned lately (unix nanos): a lookup whose read raced
	// with an unpin must not cache the pin it read, or the cache would hold it after Redis dropped it.
	unpinned map[string]int64
	// reserved counts handshakes on their way to a pin: while Redis is unreachable they may all land
	// in pending, so they are held against MaxPending.
	reserved int
	counts   map[string]map[string]int
	countAt  time.Time
	epoch    string // the dataset's epoch as last seen: a new one means Redis lost its data

	evicted evictHandlers
	evicts  *redis.PubSub

	loop *loop
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
		touched: map[string]time.Duration{}, pending: map[string]Pin{}, unpinned: map[string]int64{},
	}
	ctx, cancel := context.WithTimeout(context.Background(), opts.OpTimeout)
	s.dataLost(ctx) // records the dataset's epoch (Redis may well be down now: then at the first flush)
	cancel()
	s.subscribe()
	s.loop = startLoop(s.flush, job{opts.FlushEvery, s.flush}, job{opts.SweepEvery, s.sweep})
	return s
}

func (s *RedisStore) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.opts.OpTimeout)
}

// Ping implements PinTable.
func (s *RedisStore) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("affinity: redis ping: %w", err)
	}
	return nil
}

// Close implements Store: one last flush, then the background work stops.
func (s *RedisStore) Close() error {
	if s.loop.close() {
		s.evicts.Close()
	}
	return nil
}
