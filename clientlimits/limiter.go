package clientlimits

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sidpin/sidpin/configs"
)

// MaxBucketAddrs bounds the handshake bucket table: addresses with a partly used burst.
const MaxBucketAddrs = 100_000

// minConnAddrs is the least room in the connection table, whatever limits.max_connections says.
const minConnAddrs = 1024

// sweepEvery is how often full buckets are dropped from the local table.
const sweepEvery = 10 * time.Second

// warnEveryDur is the least time between two warnings of one kind: a failing Redis is said, not shouted.
const warnEveryDur = 10 * time.Second

// Limiter enforces limits.per_client for one sidpin instance.
type Limiter struct {
	log        *slog.Logger
	ipv6Prefix int
	conns      *connTable   // nil: no connection cap
	buckets    *bucketTable // nil: no handshake rate
	shared     *Shared      // nil: this instance alone
	clock      func() int64 // monotonic ns; tests replace it

	handshakesRefused atomic.Uint64
	fallbacks         atomic.Uint64
	syncErrors        atomic.Uint64
	lastFullWarn      atomic.Int64
	lastRedisWarn     atomic.Int64

	items     []syncItem // the exchange's reused batch (sync goroutine only)
	kickCh    chan struct{}
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	cleanup   bool // Close withdraws this instance's published counts (tests of a killed instance clear it)
}

// Stats are the Limiter's counters since New, for Prometheus.
type Stats struct {
	ConnsRefused      uint64 // connections closed at Accept: their address was at its cap
	ConnsUncounted    uint64 // connections let through uncounted: the connection table was full
	HandshakesRefused uint64 // AllowHandshake answers false
	RedisFallbacks    uint64 // handshakes decided by this instance's own bucket: Redis failed, was slow, or was skipped after a failure
	SyncErrors        uint64 // exchanges of connection counts with Redis that failed
	BucketsEvicted    uint64 // buckets forgotten to make room for a new address
	ConnAddrs         int    // addresses in the connection table now
	BucketAddrs       int    // addresses in the handshake bucket table now
}

// New builds the limiter of limits.per_client. The connection table holds up to 1.25 ×
// limits.max_connections addresses: every address in it holds a connection here, which the server
// caps, or is remembered from other instances' counts (those give way to new addresses). shared is
// nil for an instance alone; otherwise the Limiter owns it from now on. Close stops its background work.
func New(cfg configs.Limits, shared *Shared, log *slog.Logger) *Limiter {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pc := cfg.PerClient
	epoch := time.Now()
	l := &Limiter{
		log: log.With("component", "clientlimits"), ipv6Prefix: pc.IPv6Prefix,
		clock:  func() int64 { return int64(time.Since(epoch)) },
		kickCh: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}), cleanup: true,
	}
	if l.ipv6Prefix == 0 {
		l.ipv6Prefix = 64
	}
	if shared != nil && !shared.taken.CompareAndSwap(false, true) {
		panic("clientlimits: one Shared serves one Limiter")
	}
	l.shared = shared
	l.conns, l.buckets = newTables(cfg, shared)
	if shared != nil && !contextBound(shared.rdb) {
		l.log.Warn("the redis client ignores context deadlines (ContextTimeoutEnabled is off): a hung redis holds handshakes for its ReadTimeout")
	}
	go l.run()
	return l
}

// newTables sizes the tables from the config; nil for a limit that is off.
func newTables(cfg configs.Limits, shared *Shared) (*connTable, *bucketTable) {
	pc := cfg.PerClient
	var conns *connTable
	if pc.MaxConnections > 0 {
		capN := min(pc.MaxConnections, math.MaxInt32)
		threshold := math.MaxInt32 // alone: nothing is published
		if shared != nil {
			// A small cap must still be shared: an instance publishes from half of it at most.
			threshold = min(shared.threshold, max(1, capN/2))
		}
		conns = newConnTable(capN, max(minConnAddrs, cfg.MaxConnections+cfg.MaxConnections/4), threshold)
	}
	var buckets *bucketTable
	if pc.HandshakeRate > 0 {
		buckets = newBucketTable(pc.HandshakeRate, pc.HandshakeBurst, MaxBucketAddrs)
	}
	return conns, buckets
}

// Close stops the background work and withdraws this instance's published connection counts (best
// effort, bounded by one exchange's timeout). The Listener's connections stay counted until they close.
func (l *Limiter) Close() {
	l.closeOnce.Do(func() {
		close(l.stop)
		<-l.done
		if l.cleanup {
			l.withdraw()
		}
	})
}

// Stats reads the counters. It walks both tables' locks once: call it at scrape time, not per request.
func (l *Limiter) Stats() Stats {
	st := Stats{
		HandshakesRefused: l.handshakesRefused.Load(), RedisFallbacks: l.fallbacks.Load(),
		SyncErrors: l.syncErrors.Load(),
	}
	if l.conns != nil {
		st.ConnsRefused, st.ConnsUncounted = l.conns.refused.Load(), l.conns.uncounted.Load()
		st.ConnAddrs = l.conns.size()
	}
	if l.buckets != nil {
		st.BucketsEvicted, st.BucketAddrs = l.buckets.evicted.Load(), l.buckets.size()
	}
	return st
}

// Local reports whether AllowHandshake decides without I/O: no Redis buckets are shared.
func (l *Limiter) Local() bool { return l.shared == nil }

// AllowHandshake takes a token from the bucket of addr's client key: false, with how long until a
// token is there, when it is empty. With a Shared the bucket is Redis's, common to every instance
// (one round trip, at most opTimeout, ~50 ms); when Redis fails or is skipped after a recent failure,
// this instance's own bucket answers and the fallback is counted. Always true with the rate off, or
// for an invalid address.
func (l *Limiter) AllowHandshake(ctx context.Context, addr netip.Addr) (ok bool, retryAfter time.Duration) {
	if l.buckets == nil {
		return true, 0
	}
	k := Key(addr, l.ipv6Prefix)
	if !k.IsValid() {
		return true, 0
	}
	shard := shardOf(k)
	if l.shared != nil {
		ok, retryAfter, err := l.shared.take(ctx, redisName(k, l.ipv6Prefix), l.buckets, l.clock())
		if err == nil {
			if ok { // keep the local bucket in step, so a fallback starts from what this instance used
				l.buckets.take(k, shard, l.clock())
			}
			return l.counted(ok, retryAfter)
		}
		l.fallbacks.Add(1)
		if !errors.Is(err, errSkipped) {
			l.warnEvery(&l.lastRedisWarn, "handshake limits fall back to this instance's own buckets", "err", err)
		}
	}
	return l.counted(l.buckets.take(k, shard, l.clock()))
}

func (l *Limiter) counted(ok bool, retryAfter time.Duration) (bool, time.Duration) {
	if !ok {
		l.handshakesRefused.Add(1)
	}
	return ok, retryAfter
}

// kick asks for an early exchange of connection counts; many kicks make one.
func (l *Limiter) kick() {
	select {
	case l.kickCh <- struct{}{}:
	default:
	}
}

// warnEvery logs msg unless a warning of its kind (last) was logged within warnEveryDur.
func (l *Limiter) warnEvery(last *atomic.Int64, msg string, args ...any) {
	if l.mayWarn(last) {
		l.log.Warn(msg, args...)
	}
}

// mayWarn reports whether a warning of last's kind may be logged now, and if so records it.
func (l *Limiter) mayWarn(last *atomic.Int64) bool {
	now := l.clock()
	prev := last.Load()
	return (prev == 0 || now-prev >= int64(warnEveryDur)) && last.CompareAndSwap(prev, now)
}
