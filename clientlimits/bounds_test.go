package clientlimits

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/sidpin/sidpin/configs"
)

// fakeConn is a TCP connection from addr that does nothing: the accounting without the sockets.
type fakeConn struct {
	net.Conn // nil: any other method panics
	remote   *net.TCPAddr
}

func (c *fakeConn) RemoteAddr() net.Addr { return c.remote }
func (c *fakeConn) Close() error         { return nil }

// nthAddr is the nth of many distinct addresses: IPv4 first, then IPv6 /64s.
func nthAddr(n int) netip.Addr {
	if n < 1<<24 {
		return netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)})
	}
	var b [16]byte
	b[0], b[1] = 0x20, 0x01
	binary.BigEndian.PutUint32(b[4:8], uint32(n)) // inside the /64
	return netip.AddrFrom16(b)
}

// TestConnTableBound: 200k distinct addresses each holding a connection never grow the table
// past its bound; the connections over it pass uncounted, and closing everything empties it.
func TestConnTableBound(t *testing.T) {
	const n = 200_000
	cfg := configs.Limits{MaxConnections: 1000, PerClient: configs.PerClient{MaxConnections: 3, IPv6Prefix: 64}}
	l := New(cfg, nil, nil)
	defer l.Close()
	bound := shards * l.conns.perShard
	if bound < 1250 || bound > 1250+shards {
		t.Fatalf("table bound %d, want 1.25 × max_connections (1250) rounded up per shard", bound)
	}
	conns := make([]net.Conn, 0, n)
	for i := range n {
		c := l.admit(&fakeConn{remote: net.TCPAddrFromAddrPort(netip.AddrPortFrom(nthAddr(i*7919), 1))}, RefuseClose)
		if c == nil {
			t.Fatalf("connection %d refused: its address holds no other", i)
		}
		conns = append(conns, c)
	}
	st := l.Stats()
	t.Logf("after %d addresses: %+v", n, st)
	if st.ConnAddrs > bound || st.ConnsUncounted < n-uint64(bound) {
		t.Fatalf("stats %+v: want at most %d addresses, the rest uncounted", st, bound)
	}
	for _, c := range conns {
		c.Close()
	}
	if st := l.Stats(); st.ConnAddrs != 0 {
		t.Fatalf("after closing everything: %d addresses left", st.ConnAddrs)
	}
}

// TestConnTableEvictsIdle: when the table is full, an address known only from other instances
// makes room for a new one that holds a connection here.
func TestConnTableEvictsIdle(t *testing.T) {
	tbl := newConnTable(3, shards, 8) // one address per shard
	known, fresh := nthAddr(1), netip.Addr{}
	for i := 2; i < 10_000 && !fresh.IsValid(); i++ {
		if shardOf(nthAddr(i)) == shardOf(known) {
			fresh = nthAddr(i)
		}
	}
	if !fresh.IsValid() {
		t.Fatal("no two addresses in one shard among 10k")
	}
	sh := shardOf(known)
	tbl.shards[sh].m[known] = connEntry{remote: 2, remoteUntil: 1 << 62}
	now := func() int64 { return 0 }
	if a, _ := tbl.acquire(fresh, sh, now); a != admitted {
		t.Fatalf("acquire in a shard full of an idle address: %v, want admitted", a)
	}
	other := nthAddr(10_001)
	for i := 10_002; shardOf(other) != sh && i < 20_000; i++ {
		other = nthAddr(i)
	}
	if a, _ := tbl.acquire(other, sh, now); a != uncounted {
		t.Fatalf("acquire in a shard full of a busy address: %v, want uncounted", a)
	}
}

// TestBucketTableBound: 200k distinct addresses never grow the bucket table past MaxBucketAddrs,
// and the busy address among them keeps its (empty) bucket: eviction takes the fullest.
func TestBucketTableBound(t *testing.T) {
	const n = 200_000
	clk := &fakeClock{now: int64(time.Hour)}
	l := New(limits(0, 1, 2), nil, nil)
	defer l.Close()
	l.clock = clk.read
	busy := addr("192.0.2.200")
	for range 2 {
		l.AllowHandshake(t.Context(), busy)
	}
	for i := range n {
		if ok, _ := l.AllowHandshake(t.Context(), nthAddr(1<<24+i)); !ok {
			t.Fatalf("first handshake of address %d refused", i)
		}
	}
	st := l.Stats()
	t.Logf("after %d addresses: %+v", n, st)
	if bound := shards * l.buckets.perShard; st.BucketAddrs > bound || bound > MaxBucketAddrs+shards {
		t.Fatalf("stats %+v: want at most %d addresses", st, bound)
	}
	if bound := shards * l.buckets.perShard; st.BucketsEvicted < uint64(n+1-bound) {
		t.Fatalf("stats %+v: want an eviction for each address past the bound", st)
	}
	if ok, _ := l.AllowHandshake(t.Context(), busy); ok {
		t.Fatal("the busy address got a fresh bucket: it was evicted before the fuller ones")
	}
	clk.advance(2 * time.Second)
	l.buckets.sweep(clk.now)
	if st := l.Stats(); st.BucketAddrs != 0 {
		t.Fatalf("after every bucket refilled and a sweep: %d addresses left", st.BucketAddrs)
	}
}
