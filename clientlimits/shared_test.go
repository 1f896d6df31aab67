package clientlimits

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sidpin/sidpin/internal/testredis"
)

// instance is one simulated sidpin instance: a Limiter with its own Shared and listener.
type instance struct {
	l *Limiter
	s *server
}

func newInstance(t *testing.T, rdb redis.UniversalClient, id string, capN int) *instance {
	l := New(limits(capN, 0, 0), fastShared(rdb, id), nil)
	t.Cleanup(l.Close)
	return &instance{l: l, s: serve(t, l, RefuseClose)}
}

// fill opens n connections from src on in and returns the server ends.
func (in *instance) fill(t *testing.T, src string, n int) []net.Conn {
	var out []net.Conn
	for range n {
		out = append(out, in.s.mustAccept(t, src))
	}
	return out
}

// waitRemote waits until in has read want connections of src held by the other instances.
func (in *instance) waitRemote(t *testing.T, src string, want int) {
	t.Helper()
	if !eventually(2*time.Second, func() bool { return in.l.remote(addr(src)) == want }) {
		t.Fatalf("%s: other instances' count of %s = %d, want %d", in.l.shared.id, src, in.l.remote(addr(src)), want)
	}
}

// TestSharedConnectionCap: two instances on one Redis share an address's cap; connections closing
// on one, or one instance vanishing without a word, give the other room again. A small cap is shared
// too (published from half of it).
func TestSharedConnectionCap(t *testing.T) {
	for _, capN := range []int{20, 4} {
		t.Run(fmt.Sprint("cap ", capN), func(t *testing.T) { testSharedCap(t, capN) })
	}
}

func testSharedCap(t *testing.T, capN int) {
	const src = "127.0.0.5"
	rdb := newClient(t, testredis.Start(t).Addr)
	a, b := newInstance(t, rdb, "A", capN), newInstance(t, rdb, "B", capN)

	heldA := a.fill(t, src, capN/2)
	b.fill(t, src, capN/2)
	a.waitRemote(t, src, capN/2)
	b.waitRemote(t, src, capN/2)
	a.s.mustRefuse(t, src, RefuseClose)
	b.s.mustRefuse(t, src, RefuseClose)
	b.s.mustAccept(t, "127.0.0.6").Close() // another address is not concerned

	// A's connections end: A withdraws its count at its next exchange, B reads it at its own.
	for _, c := range heldA {
		c.Close()
	}
	b.waitRemote(t, src, 0)
	b.s.mustAccept(t, src).Close()

	// A holds some again, then stops without cleanup (as if killed): B counts them until they go stale.
	a.fill(t, src, capN/2)
	b.waitRemote(t, src, capN/2)
	b.s.mustRefuse(t, src, RefuseClose)
	a.l.cleanup = false
	a.l.Close()
	b.s.mustRefuse(t, src, RefuseClose) // still fresh: stale is 400 ms, B read it less than 120 ms ago
	start := time.Now()
	b.waitRemote(t, src, 0)
	t.Logf("B forgot the stopped instance's count after %v", time.Since(start).Round(time.Millisecond))
	b.s.mustAccept(t, src)
	if st := b.l.Stats(); st.SyncErrors != 0 {
		t.Fatalf("B's stats %+v: want no exchange errors", st)
	}
}

// TestSharedConnectionCapRedisDown: with Redis gone, the counts last read go stale and each
// instance caps alone; nothing blocks.
func TestSharedConnectionCapRedisDown(t *testing.T) {
	const capN, src = 20, "127.0.0.7"
	srv := testredis.Start(t)
	rdb := newClient(t, srv.Addr)
	a, b := newInstance(t, rdb, "A", capN), newInstance(t, rdb, "B", capN)
	a.fill(t, src, capN/2)
	b.fill(t, src, capN/2)
	b.waitRemote(t, src, capN/2)
	b.s.mustRefuse(t, src, RefuseClose)

	srv.Stop()
	b.waitRemote(t, src, 0)
	b.fill(t, src, capN/2) // alone now: up to its own cap
	b.s.mustRefuse(t, src, RefuseClose)
	if st := b.l.Stats(); st.SyncErrors == 0 {
		t.Fatalf("B's stats %+v: want exchange errors counted", st)
	}
}

// TestSharedOnCluster: both shared limits work on a Redis Cluster: one address's keys share a slot
// (scripts), and the exchange pipeline spreads over the masters.
func TestSharedOnCluster(t *testing.T) {
	const capN = 20
	rdb := testredis.Cluster(t)
	a, b := newInstance(t, rdb, "A", capN), newInstance(t, rdb, "B", capN)
	srcs := []string{"127.0.1.1", "127.0.1.2", "127.0.1.3", "127.0.1.4"}
	for _, src := range srcs {
		a.fill(t, src, capN/2)
		b.fill(t, src, capN/2)
	}
	for _, src := range srcs {
		a.waitRemote(t, src, capN/2)
		a.s.mustRefuse(t, src, RefuseClose)
	}

	la := New(limits(0, 1, 4), NewShared(rdb, "test:", "A2"), nil)
	lb := New(limits(0, 1, 4), NewShared(rdb, "test:", "B2"), nil)
	defer la.Close()
	defer lb.Close()
	for _, src := range srcs {
		takeShared(t, la, lb, addr(src), 4)
	}
	if st := la.Stats(); st.RedisFallbacks != 0 {
		t.Fatalf("stats %+v: want no fallback on a healthy cluster", st)
	}
}

// TestSharedKick: an address crossing the publication threshold is exchanged at once, not at the
// next period (an hour here).
func TestSharedKick(t *testing.T) {
	const capN, src = 20, "127.0.0.8"
	rdb := newClient(t, testredis.Start(t).Addr)
	var in [2]*instance
	for i, id := range []string{"A", "B"} {
		s := fastShared(rdb, id)
		s.syncEvery = time.Hour
		l := New(limits(capN, 0, 0), s, nil)
		t.Cleanup(l.Close)
		in[i] = &instance{l: l, s: serve(t, l, RefuseClose)}
	}
	in[0].fill(t, src, capN/2)
	key := "test:cl:{" + src + "}:c"
	if !eventually(2*time.Second, func() bool { return rdb.HExists(t.Context(), key, "A").Val() }) {
		t.Fatal("A never published its count after crossing the threshold")
	}
	in[1].fill(t, src, capN/2)
	in[1].waitRemote(t, src, capN/2)
	in[1].s.mustRefuse(t, src, RefuseClose)
}
