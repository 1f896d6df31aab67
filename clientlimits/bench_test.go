package clientlimits

import (
	"context"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidpin/sidpin/internal/testredis"
)

// BenchmarkAcceptClose is the accounting of one connection: key, count, wrapper, release (no
// sockets: what the Listener adds to an accept and a close).
func BenchmarkAcceptClose(b *testing.B) {
	l := New(limits(1000, 0, 0), nil, nil)
	defer l.Close()
	conns := make([]*fakeConn, 1024)
	for i := range conns {
		conns[i] = &fakeConn{remote: net.TCPAddrFromAddrPort(netip.AddrPortFrom(nthAddr(i), 1))}
	}
	b.ReportAllocs()
	var start atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		i := int(start.Add(97)) // goroutines on different addresses, as different clients would be
		for pb.Next() {
			c := l.admit(conns[i%len(conns)], RefuseClose)
			c.Close()
			i++
		}
	})
}

// BenchmarkAllowHandshakeLocal is one handshake decision on this instance's buckets.
func BenchmarkAllowHandshakeLocal(b *testing.B) {
	l := New(limits(0, 1e6, 1_000_000), nil, nil)
	defer l.Close()
	benchHandshakes(b, l)
}

// BenchmarkAllowHandshakeShared is one handshake decision on Redis's buckets (a loopback round trip).
func BenchmarkAllowHandshakeShared(b *testing.B) {
	rdb := newClient(b, testredis.Start(b).Addr)
	s := NewShared(rdb, "bench:", "A")
	s.opTimeout = time.Second // measure the round trip, not this VM's scheduling hiccups
	l := New(limits(0, 1e6, 1_000_000), s, nil)
	defer l.Close()
	benchHandshakes(b, l)
	if st := l.Stats(); st.RedisFallbacks != 0 {
		b.Fatalf("stats %+v: the benchmark fell back to local buckets", st)
	}
}

func benchHandshakes(b *testing.B, l *Limiter) {
	addrs := make([]netip.Addr, 1024)
	for i := range addrs {
		addrs[i] = nthAddr(i)
	}
	ctx := context.Background()
	b.ReportAllocs()
	var start atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		i := int(start.Add(97))
		for pb.Next() {
			if ok, _ := l.AllowHandshake(ctx, addrs[i%len(addrs)]); !ok {
				b.Fatal("refused")
			}
			i++
		}
	})
}

// BenchmarkExchange is one exchange of maxBatch (2000) addresses' connection counts with Redis (the most one
// sync period sends).
func BenchmarkExchange(b *testing.B) {
	rdb := newClient(b, testredis.Start(b).Addr)
	s := NewShared(rdb, "bench:", "A")
	items := make([]syncItem, s.maxBatch)
	for i := range items {
		items[i] = syncItem{key: nthAddr(i), count: 10}
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := s.exchange(ctx, items, 64); err != nil {
			b.Fatal(err)
		}
	}
}
