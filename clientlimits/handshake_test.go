package clientlimits

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/sidpin/sidpin/internal/testredis"
)

// boundSlack is the 50 ms round-trip bound plus what a loaded 2-core machine under -race adds;
// skipSlack is the same allowance for a decision that skips Redis altogether.
const boundSlack, skipSlack = 150 * time.Millisecond, 30 * time.Millisecond

// fakeClock is a settable monotonic clock (ns).
type fakeClock struct{ now int64 }

func (c *fakeClock) read() int64             { return c.now }
func (c *fakeClock) advance(d time.Duration) { c.now += int64(d) }

// TestHandshakeBucket: a burst, then one handshake per 1/rate; Retry-After says when; the bucket
// is the client key's: one IPv6 /64, or one IPv4 address however it is written.
func TestHandshakeBucket(t *testing.T) {
	const rate, burst = 10, 5 // a token every 100 ms
	for _, tc := range []struct {
		name        string
		first, same string // same shares first's bucket
		other       string // does not
	}{
		{"ipv4", "192.0.2.1", "::ffff:192.0.2.1", "192.0.2.2"},
		{"ipv6 /64", "2001:db8:1:2::1", "2001:db8:1:2:ffff::9", "2001:db8:1:3::1"},
		{"zone dropped", "fe80::1%eth0", "fe80::2%eth1", "fe80:0:0:1::1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &fakeClock{now: int64(time.Hour)}
			l := New(limits(0, rate, burst), nil, nil)
			defer l.Close()
			l.clock = clk.read
			for i := range burst {
				if ok, _ := l.AllowHandshake(t.Context(), addr(pick(i, tc.first, tc.same))); !ok {
					t.Fatalf("handshake %d of the burst refused", i+1)
				}
			}
			ok, retry := l.AllowHandshake(t.Context(), addr(tc.same))
			if ok || retry != 100*time.Millisecond {
				t.Fatalf("handshake past the burst: ok=%v retry=%v, want refused, retry 100ms", ok, retry)
			}
			if ok, _ := l.AllowHandshake(t.Context(), addr(tc.other)); !ok {
				t.Fatalf("another client key %s refused", tc.other)
			}
			clk.advance(60 * time.Millisecond)
			if ok, retry := l.AllowHandshake(t.Context(), addr(tc.first)); ok || retry != 40*time.Millisecond {
				t.Fatalf("60ms later: ok=%v retry=%v, want refused, retry 40ms", ok, retry)
			}
			clk.advance(40 * time.Millisecond)
			if ok, _ := l.AllowHandshake(t.Context(), addr(tc.first)); !ok {
				t.Fatal("a token later: refused")
			}
			if ok, _ := l.AllowHandshake(t.Context(), addr(tc.first)); ok {
				t.Fatal("two handshakes on one token")
			}
			clk.advance(time.Second)
			for i := range burst {
				if ok, _ := l.AllowHandshake(t.Context(), addr(tc.first)); !ok {
					t.Fatalf("after a quiet spell, handshake %d of a new burst refused", i+1)
				}
			}
			if st := l.Stats(); st.HandshakesRefused != 3 || st.RedisFallbacks != 0 {
				t.Fatalf("stats %+v: want 3 refusals, no fallback", st)
			}
		})
	}
}

func pick(i int, a, b string) string {
	if i%2 == 0 {
		return a
	}
	return b
}

// TestHandshakeInvalidAddr: an address that is not one (no client address known) is never limited.
func TestHandshakeInvalidAddr(t *testing.T) {
	l := New(limits(0, 1, 1), nil, nil)
	defer l.Close()
	for range 3 {
		if ok, _ := l.AllowHandshake(t.Context(), netip.Addr{}); !ok {
			t.Fatal("invalid address refused")
		}
	}
}

// takeShared takes a bucket's burst alternately from two instances, then checks both refuse with a
// Retry-After within one token's interval (burst over 1 handshake/s).
func takeShared(t *testing.T, a, b *Limiter, k netip.Addr, burst int) {
	t.Helper()
	for i := range burst {
		if ok, _ := []*Limiter{a, b}[i%2].AllowHandshake(t.Context(), k); !ok {
			t.Fatalf("%v: shared handshake %d of the burst refused", k, i+1)
		}
	}
	for _, l := range []*Limiter{a, b} {
		ok, retry := l.AllowHandshake(t.Context(), k)
		if ok || retry <= 0 || retry > time.Second {
			t.Fatalf("%v past the shared burst on %s: ok=%v retry=%v, want refused within 1s", k, l.shared.id, ok, retry)
		}
	}
}

// TestSharedHandshakeBucket: two instances on one Redis draw from one bucket per address.
func TestSharedHandshakeBucket(t *testing.T) {
	rdb := newClient(t, testredis.Start(t).Addr)
	a := New(limits(0, 1, 6), NewShared(rdb, "test:", "A"), nil)
	b := New(limits(0, 1, 6), NewShared(rdb, "test:", "B"), nil)
	defer a.Close()
	defer b.Close()
	takeShared(t, a, b, addr("198.51.100.1"), 6)
	takeShared(t, a, b, addr("2001:db8::1"), 6)
	if ok, _ := b.AllowHandshake(t.Context(), addr("2001:db8::2")); ok {
		t.Fatal("another address of the same /64 got a token from a fresh bucket")
	}
	ttl, err := rdb.PTTL(t.Context(), "test:cl:{198.51.100.1}:h").Result()
	if err != nil || ttl <= 5*time.Second || ttl > 6*time.Second {
		t.Fatalf("bucket key TTL = %v (%v), want when the bucket is full again: in 5..6s", ttl, err)
	}
}

// TestHandshakeRedisStopped: Redis dies midway; every answer still comes within the bound from
// this instance's bucket, which remembers what it already took through Redis; fallbacks are counted.
func TestHandshakeRedisStopped(t *testing.T) {
	srv := testredis.Start(t)
	l := New(limits(0, 1, 5), NewShared(newClient(t, srv.Addr), "test:", "A"), nil)
	defer l.Close()
	k := addr("203.0.113.9")
	for range 3 {
		if ok, _ := l.AllowHandshake(t.Context(), k); !ok {
			t.Fatal("handshake refused with Redis up")
		}
	}
	srv.Stop()
	got := make([]bool, 4)
	for i := range got {
		start := time.Now()
		got[i], _ = l.AllowHandshake(t.Context(), k)
		if d := time.Since(start); d > boundSlack {
			t.Fatalf("handshake %d with Redis stopped took %v, want within the 50ms bound (+ scheduling slack)", i, d)
		}
	}
	if want := []bool{true, true, false, false}; !equal(got, want) {
		t.Fatalf("with Redis stopped: %v, want %v (2 tokens left of the burst)", got, want)
	}
	if st := l.Stats(); st.RedisFallbacks != 4 {
		t.Fatalf("stats %+v: want 4 fallbacks", st)
	}
}

// TestHandshakeRedisHung: a Redis that accepts and never answers holds a handshake for the
// round-trip bound, and the next ones not at all (skipped for the back-off).
func TestHandshakeRedisHung(t *testing.T) {
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	go func() { // accept and say nothing; ends when hung closes
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for range 64 {
			c, err := hung.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	l := New(limits(0, 1, 5), NewShared(newClient(t, hung.Addr().String()), "test:", "A"), nil)
	defer l.Close()
	for i := range 5 {
		start := time.Now()
		if ok, _ := l.AllowHandshake(t.Context(), addr("203.0.113.10")); !ok {
			t.Fatalf("handshake %d refused", i)
		}
		d := time.Since(start)
		if i == 0 && (d < 45*time.Millisecond || d > boundSlack) || i > 0 && d > skipSlack {
			t.Fatalf("handshake %d with a hung Redis took %v, want ~50ms for the first, nothing after", i, d)
		}
	}
	if st := l.Stats(); st.RedisFallbacks != 5 {
		t.Fatalf("stats %+v: want 5 fallbacks", st)
	}
}

func equal(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
