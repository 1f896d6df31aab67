package affinity

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// benchRedis connects to SIDPIN_TEST_REDIS (benchmarks are run by hand, not by make test).
func benchRedis(b *testing.B) *redis.Client {
	addr := os.Getenv("SIDPIN_TEST_REDIS")
	if addr == "" {
		b.Fatal("SIDPIN_TEST_REDIS is not set: start a throwaway redis-server and point it there")
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, ContextTimeoutEnabled: true, PoolSize: 64})
	b.Cleanup(func() { rdb.Close() })
	return rdb
}

// BenchmarkPinHandshake is the store's part of a handshake (a new pin), memory vs Redis, from as
// many goroutines as GOMAXPROCS.
func BenchmarkPinHandshake(b *testing.B) {
	stores := map[string]func() Store{
		"memory": func() Store { s, _ := NewMemoryStore(MemoryOptions{MaxPins: 100_000_000}); return s },
		"redis": func() Store {
			return NewRedisStore(benchRedis(b), RedisOptions{Prefix: fmt.Sprintf("bench:%d:", time.Now().UnixNano()), OpTimeout: time.Second})
		},
	}
	for _, name := range []string{"memory", "redis"} {
		b.Run(name, func(b *testing.B) {
			s := stores[name]()
			defer s.Close()
			var n atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					i := n.Add(1)
					if _, _, err := s.Pin(ctx, Pin{SID: "h" + strconv.FormatInt(i, 36), Pool: "chat", Node: "n" + strconv.FormatInt(i%3, 10), TTL: time.Minute}); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// loadPins writes n pins straight into Redis with pipelines (the store's own Pin is one round trip each).
func loadPins(b *testing.B, rdb *redis.Client, s *RedisStore, n int) {
	ctx := context.Background()
	for start := 0; start < n; start += 10_000 {
		pipe := rdb.Pipeline()
		for i := start; i < min(n, start+10_000); i++ {
			p := Pin{SID: fmt.Sprintf("sid%017d", i), Pool: "chat", Node: "n" + strconv.Itoa(i%3), Transport: TransportPolling, EIO: 4, ClientAddr: "127.0.0.1:1", Created: time.Now(), TTL: time.Hour}
			pipe.Set(ctx, s.sidKey(p.SID), encodePin(p), p.TTL)
			pipe.ZAdd(ctx, s.nodeKey(p.Pool, p.Node, "l"), redis.Z{Member: p.SID})
			pipe.ZAdd(ctx, s.nodeKey(p.Pool, p.Node, "e"), redis.Z{Score: float64(time.Now().Add(time.Hour).UnixMilli()), Member: p.SID})
		}
		pipe.SAdd(ctx, s.nodesKey(), "chat"+sep+"n0", "chat"+sep+"n1", "chat"+sep+"n2")
		if _, err := pipe.Exec(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func usedMemory(b *testing.B, rdb *redis.Client) int64 {
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	b.Fatal("no used_memory in INFO")
	return 0
}

// BenchmarkRedisLookup is the lookup of an established session with 1k, 100k and 1M pins in Redis:
// "cached" is every request after the first on an instance (no round trip), "cold" the first one
// (one pipelined GET+PTTL). It also reports Redis memory per pin.
func BenchmarkRedisLookup(b *testing.B) {
	rdb := benchRedis(b)
	for _, n := range []int{1_000, 100_000, 1_000_000} {
		prefix := fmt.Sprintf("lookup%d:%d:", n, time.Now().UnixNano())
		s := NewRedisStore(rdb, RedisOptions{Prefix: prefix, OpTimeout: time.Second})
		before := usedMemory(b, rdb)
		loadPins(b, rdb, s, n)
		perPin := float64(usedMemory(b, rdb)-before) / float64(n)
		for _, mode := range []string{"cached", "cold"} {
			b.Run(fmt.Sprintf("pins=%d/%s", n, mode), func(b *testing.B) {
				ctx := context.Background()
				// A working set of 1000 established sessions, spread over the whole table; "cached"
				// sees each of them once before the clock starts, like an instance serving them.
				sids := make([]string, 1000)
				for i := range sids {
					sids[i] = fmt.Sprintf("sid%017d", (i*7919)%n)
					if mode == "cached" {
						s.Lookup(ctx, sids[i])
					}
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					sid := sids[i%len(sids)]
					if mode == "cold" {
						s.forget(sid)
					}
					if _, ok, err := s.Lookup(ctx, sid); err != nil || !ok {
						b.Fatalf("lookup %s: %v %v", sid, ok, err)
					}
				}
				b.ReportMetric(perPin, "redis-B/pin")
			})
		}
		s.Close()
		// Drop this size's keys before the next one (UNLINK in pipelines of SCAN pages).
		iter := rdb.Scan(context.Background(), 0, prefix+"*", 10_000).Iterator()
		var keys []string
		for iter.Next(context.Background()) {
			if keys = append(keys, iter.Val()); len(keys) == 10_000 {
				rdb.Unlink(context.Background(), keys...)
				keys = keys[:0]
			}
		}
		if len(keys) > 0 {
			rdb.Unlink(context.Background(), keys...)
		}
	}
}

// BenchmarkRedisList is one page of GET /api/pins (100 pins) with 1M pins in Redis: the first page,
// one node's page, a page deep in the table through a cursor, and filters on transport (1% of the
// pins) and EIO version (0.1%), which walk many pins per page.
func BenchmarkRedisList(b *testing.B) {
	rdb := benchRedis(b)
	const n = 1_000_000
	prefix := fmt.Sprintf("list:%d:", time.Now().UnixNano())
	s := NewRedisStore(rdb, RedisOptions{Prefix: prefix, OpTimeout: 5 * time.Second})
	defer s.Close()
	ctx := context.Background()
	for start := 0; start < n; start += 10_000 {
		pipe := rdb.Pipeline()
		for i := start; i < min(n, start+10_000); i++ {
			p := Pin{SID: fmt.Sprintf("sid%017d", i), Pool: "chat", Node: "n" + strconv.Itoa(i%3), Transport: TransportUpgraded,
				EIO: 4, ClientAddr: "127.0.0.1:1", Created: time.Now(), TTL: time.Hour}
			if i%100 == 0 {
				p.Transport = TransportWebSocket
			}
			if i%1000 == 1 {
				p.EIO = 3
			}
			pipe.Set(ctx, s.sidKey(p.SID), encodePin(p), p.TTL)
			pipe.ZAdd(ctx, s.nodeKey(p.Pool, p.Node, "l"), redis.Z{Member: p.SID})
		}
		pipe.SAdd(ctx, s.nodesKey(), "chat"+sep+"n0", "chat"+sep+"n1", "chat"+sep+"n2")
		if _, err := pipe.Exec(ctx); err != nil {
			b.Fatal(err)
		}
	}
	deep := encodeCursor("chat", "n1", fmt.Sprintf("sid%017d", n/2+1))
	cases := []struct {
		name string
		opts ListOptions
	}{
		{"first page", ListOptions{}},
		{"one node", ListOptions{Pool: "chat", Node: "n2"}},
		{"deep cursor", ListOptions{Cursor: deep}},
		{"transport=websocket (1%)", ListOptions{Transport: TransportWebSocket}},
		{"eio=3 (0.1%)", ListOptions{EIO: 3}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				page, err := s.List(ctx, c.opts)
				if err != nil || len(page.Pins) != DefaultListLimit || page.Next == "" {
					b.Fatalf("page: %d pins, next %q, %v", len(page.Pins), page.Next, err)
				}
			}
		})
	}
	iter := rdb.Scan(ctx, 0, prefix+"*", 10_000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		if keys = append(keys, iter.Val()); len(keys) == 10_000 {
			rdb.Unlink(ctx, keys...)
			keys = keys[:0]
		}
	}
	if len(keys) > 0 {
		rdb.Unlink(ctx, keys...)
	}
}
