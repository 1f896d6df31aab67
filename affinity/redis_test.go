package affinity_test

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sidpin/sidpin/affinity"
	"github.com/sidpin/sidpin/affinity/storetest"
	"github.com/sidpin/sidpin/internal/testredis"
)

// newRedis returns a store on the throwaway Redis of make test, under a key prefix of its own.
func newRedis(t *testing.T) affinity.Store {
	rdb := redis.NewClient(&redis.Options{Addr: testredis.Addr(t), MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	return affinity.NewRedisStore(rdb, affinity.RedisOptions{
		Prefix:     fmt.Sprintf("test:%s:%d:", t.Name(), time.Now().UnixNano()),
		OpTimeout:  time.Second,
		FlushEvery: 100 * time.Millisecond,
		SweepEvery: 200 * time.Millisecond,
	})
}

func TestRedisStoreConformance(t *testing.T) { storetest.Run(t, newRedis) }

// TestRedisStoreSharedByInstances: two stores on one Redis agree on pins, counts and listings, and a
// pin made by one is found by the other.
func TestRedisStoreSharedByInstances(t *testing.T) {
	addr := testredis.Addr(t)
	prefix := fmt.Sprintf("shared:%d:", time.Now().UnixNano())
	mk := func() *affinity.RedisStore {
		rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, ContextTimeoutEnabled: true})
		t.Cleanup(func() { rdb.Close() })
		s := affinity.NewRedisStore(rdb, affinity.RedisOptions{Prefix: prefix, OpTimeout: time.Second, CountsTTL: time.Millisecond})
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := mk(), mk()
	ctx := context.Background()
	p := affinity.Pin{SID: "s1", Pool: "chat", Node: "n1", Transport: affinity.TransportPolling, EIO: 4, TTL: time.Minute}
	if _, created, err := a.Pin(ctx, p); err != nil || !created {
		t.Fatal(created, err)
	}
	p.Node = "n2"
	if cur, created, err := b.Pin(ctx, p); err != nil || created || cur.Node != "n1" {
		t.Fatalf("second instance: %+v %v %v", cur, created, err)
	}
	if got, ok, _ := b.Lookup(ctx, "s1"); !ok || got.Node != "n1" {
		t.Fatalf("b.Lookup = %+v %v", got, ok)
	}
	if counts, _ := b.CountByNode(ctx, "chat"); counts["n1"] != 1 {
		t.Fatalf("counts seen by b: %v", counts)
	}
	// A transport change made through a is read whole by b, which never cached the pin.
	up := affinity.Pin{SID: "s2", Pool: "chat", Node: "n2", Transport: affinity.TransportPolling, EIO: 3, ClientAddr: "127.0.0.1:9", TTL: time.Minute}
	if _, _, err := a.Pin(ctx, up); err != nil {
		t.Fatal(err)
	}
	if err := a.SetTransport(ctx, "s2", affinity.TransportUpgraded); err != nil {
		t.Fatal(err)
	}
	if got, ok, _ := b.Lookup(ctx, "s2"); !ok || got.Node != "n2" || got.Transport != affinity.TransportUpgraded ||
		got.EIO != 3 || got.ClientAddr != "127.0.0.1:9" || got.TTL != time.Minute {
		t.Fatalf("b.Lookup after a's SetTransport = %+v %v", got, ok)
	}
	// An eviction through a reaches b's cache and b's handlers.
	heard := make(chan string, 1)
	b.OnEvict(func(sid string) { heard <- sid })
	if ok, err := a.Evict(ctx, "s2"); !ok || err != nil {
		t.Fatalf("a.Evict = %v %v", ok, err)
	}
	select {
	case sid := <-heard:
		if _, ok, _ := b.Lookup(ctx, sid); ok {
			t.Fatal("b still finds the evicted pin")
		}
	case <-time.After(3 * time.Second):
		t.Fatal("b did not hear the eviction")
	}
	if ok, _ := b.Unpin(ctx, "s1"); !ok {
		t.Fatal("b could not unpin a's pin")
	}
	// a still answers from its cache: a stale pin costs one 400 from the node, then the proxy unpins.
	if got, ok, err := a.Lookup(ctx, "s1"); err != nil || !ok || got.Node != "n1" {
		t.Fatalf("a.Lookup of its cached pin after b's Unpin = %+v %v %v; want n1 from the cache", got, ok, err)
	}
}

// TestRedisStoreRestoresPinsAfterDataLoss: Redis restarted empty; a session this instance still
// routes (and touches) is written back, so other instances find it again.
func TestRedisStoreRestoresPinsAfterDataLoss(t *testing.T) {
	addr := testredis.Addr(t)
	prefix := fmt.Sprintf("restore:%d:", time.Now().UnixNano())
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	a := affinity.NewRedisStore(rdb, affinity.RedisOptions{Prefix: prefix, OpTimeout: time.Second, FlushEvery: 50 * time.Millisecond})
	defer a.Close()
	ctx := context.Background()
	if _, _, err := a.Pin(ctx, affinity.Pin{SID: "kept", Pool: "chat", Node: "n1", TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	// What a restart without persistence does to this store's keys: all of them are gone, the epoch too.
	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("keys of the store: %v %v", keys, err)
	}
	if err := rdb.Del(ctx, keys...).Err(); err != nil {
		t.Fatal(err)
	}
	a.Touch("kept")
	b := affinity.NewRedisStore(rdb, affinity.RedisOptions{Prefix: prefix, OpTimeout: time.Second})
	defer b.Close()
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if p, ok, _ := b.Lookup(ctx, "kept"); ok && p.Node == "n1" {
			return
		}
	}
	t.Fatal("the pin was not written back")
}

// TestRedisStoreOnCluster runs the conformance suite on a real three-master Redis Cluster: sid keys
// spread over the slots, a node's two sets share a hash tag, pipelines cross slots.
func TestRedisStoreOnCluster(t *testing.T) {
	cluster := testredis.Cluster(t)
	storetest.Run(t, func(t *testing.T) affinity.Store {
		return affinity.NewRedisStore(cluster, affinity.RedisOptions{
			Prefix:     fmt.Sprintf("cluster:%s:%d:", t.Name(), time.Now().UnixNano()),
			OpTimeout:  2 * time.Second,
			FlushEvery: 100 * time.Millisecond,
			SweepEvery: 200 * time.Millisecond,
		})
	})
	// The sids of those tests landed on more than one master.
	var masters atomic.Int32 // ForEachMaster calls back concurrently
	err := cluster.ForEachMaster(context.Background(), func(ctx context.Context, c *redis.Client) error {
		if n, _ := c.DBSize(ctx).Result(); n > 0 {
			masters.Add(1)
		}
		return nil
	})
	if err != nil || masters.Load() < 2 {
		t.Fatalf("keys on %d masters (%v): sids do not spread over the cluster", masters.Load(), err)
	}
}

// TestRedisStoreDoesNotResurrectUnpinnedSessions: a session unpinned by one instance stays unpinned
// although another instance still has it cached and touched it.
func TestRedisStoreDoesNotResurrectUnpinnedSessions(t *testing.T) {
	addr := testredis.Addr(t)
	prefix := fmt.Sprintf("noresurrect:%d:", time.Now().UnixNano())
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	mk := func() *affinity.RedisStore {
		s := affinity.NewRedisStore(rdb, affinity.RedisOptions{Prefix: prefix, OpTimeout: time.Second, FlushEvery: 50 * time.Millisecond})
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := mk(), mk()
	ctx := context.Background()
	if _, _, err := a.Pin(ctx, affinity.Pin{SID: "ended", Pool: "chat", Node: "n1", TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	a.Touch("ended")
	if ok, err := b.Unpin(ctx, "ended"); !ok || err != nil {
		t.Fatalf("b.Unpin: %v %v", ok, err)
	}
	a.Touch("ended")
	time.Sleep(300 * time.Millisecond) // several flushes of a
	if n, _ := rdb.Exists(ctx, prefix+"p:ended").Result(); n != 0 {
		t.Fatal("instance a wrote back a pin that b had unpinned")
	}
	if _, ok, _ := a.Lookup(ctx, "ended"); ok {
		t.Fatal("instance a still routes an ended session after its refresh saw it gone")
	}
}

// TestRedisStoreWhileRedisIsDown: with Redis unreachable, a session this instance never saw is an
// error (the proxy's 503), not an unknown sid; new pins wait in the write-behind and are served from
// this instance's cache; room for handshakes is refused once they and the reservations reach
// MaxPending, before any node would open a session, and a pin beyond MaxPending is refused.
func TestRedisStoreWhileRedisIsDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: every call is refused at once
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialerRetries: 1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	s := affinity.NewRedisStore(rdb, affinity.RedisOptions{Prefix: "down:", OpTimeout: 100 * time.Millisecond, MaxPending: 3})
	defer s.Close()
	ctx := context.Background()
	if got, ok, err := s.Lookup(ctx, "never-seen"); err == nil || ok {
		t.Fatalf("Lookup of a sid this instance never saw, Redis down = %+v %v %v; want an error", got, ok, err)
	}
	for i := range 2 {
		if !s.ReservePin() {
			t.Fatalf("room for handshake %d refused", i)
		}
		if _, created, err := s.Pin(ctx, affinity.Pin{SID: fmt.Sprint("sid", i), Pool: "p", Node: "n", TTL: time.Minute}); err != nil || !created {
			t.Fatalf("pin %d while Redis is down: %v %v", i, created, err)
		}
		s.ReleasePin()
	}
	if got, ok, err := s.Lookup(ctx, "sid0"); err != nil || !ok || got.Node != "n" {
		t.Fatalf("Lookup of a pin waiting for Redis = %+v %v %v; want it from the cache", got, ok, err)
	}
	if cur, created, err := s.Pin(ctx, affinity.Pin{SID: "sid0", Pool: "p", Node: "other", TTL: time.Minute}); err != nil || created || cur.Node != "n" {
		t.Fatalf("second pin of a waiting sid = %+v %v %v; want the first one", cur, created, err)
	}
	if !s.ReservePin() {
		t.Fatal("room for the third pending pin refused")
	}
	if s.ReservePin() {
		t.Fatal("room beyond MaxPending while Redis is down")
	}
	if _, created, err := s.Pin(ctx, affinity.Pin{SID: "sid2", Pool: "p", Node: "n", TTL: time.Minute}); err != nil || !created {
		t.Fatalf("the third pending pin: %v %v", created, err)
	}
	s.ReleasePin()
	if s.ReservePin() {
		t.Fatal("room with the write-behind full")
	}
	if _, created, err := s.Pin(ctx, affinity.Pin{SID: "sid3", Pool: "p", Node: "n", TTL: time.Minute}); err == nil || created {
		t.Fatalf("a pin beyond MaxPending while Redis is down: created=%v err=%v; want refused", created, err)
	}
	if _, ok, err := s.Lookup(ctx, "sid3"); err == nil || ok {
		t.Fatalf("the refused pin is found: %v %v", ok, err)
	}
}

// TestRedisStoreWriteBehindReachesRedis: a pin made while Redis is down survives the flushes that
// fail meanwhile and is written, indexed and counted once Redis answers again, so that other
// instances find it.
func TestRedisStoreWriteBehindReachesRedis(t *testing.T) {
	srv := testredis.Start(t)
	client := func() *redis.Client {
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, DialerRetries: 1, ContextTimeoutEnabled: true})
		t.Cleanup(func() { rdb.Close() })
		return rdb
	}
	opts := affinity.RedisOptions{Prefix: "wb:", OpTimeout: 100 * time.Millisecond, FlushEvery: 50 * time.Millisecond, CountsTTL: time.Millisecond}
	a := affinity.NewRedisStore(client(), opts)
	defer a.Close()
	srv.Stop()
	ctx := context.Background()
	p := affinity.Pin{SID: "during", Pool: "chat", Node: "n1", TTL: time.Minute}
	if _, created, err := a.Pin(ctx, p); err != nil || !created {
		t.Fatalf("pin while Redis is down: %v %v", created, err)
	}
	time.Sleep(300 * time.Millisecond) // flushes fail meanwhile: the pin must wait for the next one
	srv = testredis.StartOn(t, srv.Port)
	b := affinity.NewRedisStore(client(), opts)
	defer b.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, ok, _ := b.Lookup(ctx, "during")
		counts, _ := b.CountByNode(ctx, "chat")
		page, _ := b.List(ctx, affinity.ListOptions{Pool: "chat"})
		if ok && got.Node == "n1" && counts["n1"] == 1 && len(page.Pins) == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pin made during the outage did not reach Redis: %+v %v, counts %v, listed %d", got, ok, counts, len(page.Pins))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
