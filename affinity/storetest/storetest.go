// Package storetest is the conformance suite every affinity.Store implementation must pass.
// Each implementation's own test calls Run with a constructor of fresh, empty stores.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidpin/sidpin/affinity"
)

// Factory returns a new, empty store; the suite closes it.
type Factory func(t *testing.T) affinity.Store

func pin(sid, pool, node string) affinity.Pin {
	return affinity.Pin{SID: sid, Pool: pool, Node: node, Transport: affinity.TransportPolling, EIO: 4,
		ClientAddr: "127.0.0.1:5000", TTL: time.Minute}
}

// Run runs every conformance case against stores made by newStore.
func Run(t *testing.T, newStore Factory) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s affinity.Store)
	}{
		{"pin then lookup", testPinLookup},
		{"first pin wins", testFirstPinWins},
		{"invalid pins are refused", testInvalid},
		{"lookup without waiting agrees with lookup", testLookupNow},
		{"unpin", testUnpin},
		{"lookups racing unpins keep nothing", testLookupRacingUnpin},
		{"expiry without traffic", testExpiry},
		{"touch keeps a pin alive", testTouch},
		{"set transport", testSetTransport},
		{"count by node", testCountByNode},
		{"list pages cover every pin once", testListPaging},
		{"list pages end anywhere in a node", testListPageEnds},
		{"list filters", testListFilters},
		{"list rejects a bad cursor", testBadCursor},
		{"concurrent pins of one sid agree", testConcurrentPin},
		{"unpin a whole node", testUnpinNode},
		{"drain marks are shared", testDrain},
		{"evict unpins and tells", testEvict},
		{"migrations are shared", testMigrations},
		{"heartbeats show the live instances", testHeartbeats},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { s.Close() })
			c.fn(t, s)
		})
	}
}

var ctx = context.Background()

func mustPin(t *testing.T, s affinity.Store, p affinity.Pin) {
	t.Helper()
	if _, created, err := s.Pin(ctx, p); err != nil || !created {
		t.Fatalf("Pin(%s): created=%v err=%v", p.SID, created, err)
	}
}

func lookup(t *testing.T, s affinity.Store, sid string) (affinity.Pin, bool) {
	t.Helper()
	p, ok, err := s.Lookup(ctx, sid)
	if err != nil {
		t.Fatalf("Lookup(%s): %v", sid, err)
	}
	return p, ok
}

func testPinLookup(t *testing.T, s affinity.Store) {
	want := pin("sid-1", "chat", "node1")
	mustPin(t, s, want)
	got, ok := lookup(t, s, "sid-1")
	if !ok || got.Node != "node1" || got.Pool != "chat" || got.EIO != 4 || got.Transport != affinity.TransportPolling ||
		got.ClientAddr != want.ClientAddr || got.TTL != time.Minute || got.Created.IsZero() || got.LastSeen.IsZero() {
		t.Fatalf("Lookup = %+v, %v", got, ok)
	}
	if _, ok := lookup(t, s, "sid-unknown"); ok {
		t.Fatal("unknown sid found")
	}
}

func testFirstPinWins(t *testing.T, s affinity.Store) {
	mustPin(t, s, pin("sid-1", "chat", "node1"))
	cur, created, err := s.Pin(ctx, pin("sid-1", "chat", "node2"))
	if err != nil || created || cur.Node != "node1" {
		t.Fatalf("second Pin: %+v created=%v err=%v", cur, created, err)
	}
	if got, _ := lookup(t, s, "sid-1"); got.Node != "node1" {
		t.Fatalf("pin moved to %s", got.Node)
	}
}

func testInvalid(t *testing.T, s affinity.Store) {
	for _, p := range []affinity.Pin{pin("", "chat", "n"), pin("s", "", "n"), pin("s", "chat", ""), {SID: "s", Pool: "p", Node: "n"}} {
		if _, _, err := s.Pin(ctx, p); !errors.Is(err, affinity.ErrInvalidPin) {
			t.Errorf("Pin(%+v) = %v, want ErrInvalidPin", p, err)
		}
	}
}

// testLookupNow: whatever LookupNow answers without I/O is what Lookup answers; after a Lookup, the
// pin is known without I/O (the memory table always, Redis from its cache); an unpinned sid is never
// answered live.
func testLookupNow(t *testing.T, s affinity.Store) {
	mustPin(t, s, pin("sid-1", "chat", "node1"))
	lookup(t, s, "sid-1")
	if p, ok, done := s.LookupNow("sid-1"); !done || !ok || p.Node != "node1" || p.Pool != "chat" {
		t.Fatalf("LookupNow(pinned) = %+v, ok=%v done=%v", p, ok, done)
	}
	if _, ok, _ := s.LookupNow("sid-unknown"); ok {
		t.Fatal("LookupNow found an unknown sid")
	}
	if _, err := s.Unpin(ctx, "sid-1"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.LookupNow("sid-1"); ok {
		t.Fatal("LookupNow found an unpinned sid")
	}
}

func testUnpin(t *testing.T, s affinity.Store) {
	mustPin(t, s, pin("sid-1", "chat", "node1"))
	if ok, err := s.Unpin(ctx, "sid-1"); err != nil || !ok {
		t.Fatalf("Unpin = %v, %v", ok, err)
	}
	if _, ok := lookup(t, s, "sid-1"); ok {
		t.Fatal("pin survived Unpin")
	}
	if ok, err := s.Unpin(ctx, "sid-1"); err != nil || ok {
		t.Fatalf("second Unpin = %v, %v", ok, err)
	}
	mustPin(t, s, pin("sid-1", "chat", "node2")) // a removed sid can be pinned again
}

// testLookupRacingUnpin: lookups of a sid while it is unpinned (a poll crossing the session's end)
// may find it or not, but once the unpin returned no lookup finds it: nothing read before the unpin
// is kept.
func testLookupRacingUnpin(t *testing.T, s affinity.Store) {
	const n = 100
	for i := range n {
		mustPin(t, s, pin(fmt.Sprintf("racing-%d", i), "chat", "node1"))
	}
	var wg sync.WaitGroup
	for i := range n {
		sid := fmt.Sprintf("racing-%d", i)
		unpinned := make(chan struct{})
		wg.Add(2)
		go func() {
			defer wg.Done()
			defer close(unpinned)
			if _, err := s.Unpin(ctx, sid); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			for {
				select {
				case <-unpinned:
					return
				default:
				}
				if _, _, err := s.Lookup(ctx, sid); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for i := range n {
		if p, ok := lookup(t, s, fmt.Sprintf("racing-%d", i)); ok {
			t.Fatalf("racing-%d found after its unpin returned: %+v", i, p)
		}
	}
}

func testExpiry(t *testing.T, s affinity.Store) {
	p := pin("sid-short", "chat", "node1")
	p.TTL = 150 * time.Millisecond
	mustPin(t, s, p)
	mustPin(t, s, pin("sid-long", "chat", "node1"))
	if _, ok := lookup(t, s, "sid-short"); !ok {
		t.Fatal("pin gone at once")
	}
	waitUntil(t, 3*time.Second, func() bool { _, ok := lookup(t, s, "sid-short"); return !ok })
	if got, _ := lookup(t, s, "sid-long"); got.SID != "sid-long" {
		t.Fatalf("a live pin: %+v", got)
	}
	waitUntil(t, 5*time.Second, func() bool {
		counts, err := s.CountByNode(ctx, "chat")
		return err == nil && counts["node1"] == 1
	})
	if _, ok := lookup(t, s, "sid-long"); !ok {
		t.Fatal("the long-lived pin expired too")
	}
}

func testTouch(t *testing.T, s affinity.Store) {
	p := pin("sid-touched", "chat", "node1")
	p.TTL = 400 * time.Millisecond
	mustPin(t, s, p)
	for end := time.Now().Add(1200 * time.Millisecond); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		s.Touch("sid-touched")
	}
	// Touches may be batched: give a batch time to land before judging.
	time.Sleep(100 * time.Millisecond)
	if _, ok := lookup(t, s, "sid-touched"); !ok {
		t.Fatal("a touched pin expired")
	}
	s.Touch("sid-never-pinned") // must not create anything
	if _, ok := lookup(t, s, "sid-never-pinned"); ok {
		t.Fatal("Touch created a pin")
	}
}

func testSetTransport(t *testing.T, s affinity.Store) {
	mustPin(t, s, pin("sid-1", "chat", "node1"))
	if err := s.SetTransport(ctx, "sid-1", affinity.TransportUpgraded); err != nil {
		t.Fatal(err)
	}
	if got, _ := lookup(t, s, "sid-1"); got.Transport != affinity.TransportUpgraded || got.Node != "node1" {
		t.Fatalf("after SetTransport: %+v", got)
	}
	mustPin(t, s, pin("sid-2", "chat", "node1"))
	counts := s.LocalTransportCounts()[affinity.NodeRef{Pool: "chat", Node: "node1"}]
	if counts[affinity.TransportUpgraded] != 1 || counts[affinity.TransportPolling] != 1 {
		t.Fatalf("transport counts of this instance's sessions: %v", counts)
	}
}

func testCountByNode(t *testing.T, s affinity.Store) {
	for i := 0; i < 30; i++ {
		mustPin(t, s, pin(fmt.Sprintf("sid-%02d", i), "chat", fmt.Sprintf("node%d", i%3)))
	}
	mustPin(t, s, pin("other", "other-pool", "node0"))
	if _, err := s.Unpin(ctx, "sid-00"); err != nil {
		t.Fatal(err)
	}
	counts, err := s.CountByNode(ctx, "chat")
	if err != nil {
		t.Fatal(err)
	}
	if len(counts) != 3 || counts["node0"] != 9 || counts["node1"] != 10 || counts["node2"] != 10 {
		t.Fatalf("counts %v", counts)
	}
}

func testListPaging(t *testing.T, s affinity.Store) {
	want := map[string]bool{}
	for i := 0; i < 257; i++ {
		sid := fmt.Sprintf("sid-%03d", i)
		mustPin(t, s, pin(sid, "chat", fmt.Sprintf("node%d", i%4)))
		want[sid] = true
	}
	seen := map[string]bool{}
	opts := affinity.ListOptions{Limit: 50}
	for pages := 0; ; pages++ {
		if pages > 20 {
			t.Fatal("listing does not end")
		}
		page, err := s.List(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Pins) > 50 {
			t.Fatalf("page of %d > limit", len(page.Pins))
		}
		for _, p := range page.Pins {
			if seen[p.SID] {
				t.Fatalf("%s listed twice", p.SID)
			}
			seen[p.SID] = true
		}
		if pages == 1 {
			mustPin(t, s, pin("sid-added-while-paging", "chat", "node9"))
		}
		if page.Next == "" {
			break
		}
		opts.Cursor = page.Next
	}
	for sid := range want {
		if !seen[sid] {
			t.Fatalf("%s never listed", sid)
		}
	}
}

// testListPageEnds pages with every page size, so that pages end exactly at the end of a node, and
// just before and after it. Later nodes hold lower sids, so a cursor that names the wrong node skips
// pins.
func testListPageEnds(t *testing.T, s affinity.Store) {
	for i := 0; i < 18; i++ {
		mustPin(t, s, pin(fmt.Sprintf("small-%02d", 17-i), "small", fmt.Sprintf("node%d", i/6)))
	}
	for limit := 1; limit <= 13; limit++ {
		seen, cursor := map[string]bool{}, ""
		for pages := 0; ; pages++ {
			page, err := s.List(ctx, affinity.ListOptions{Pool: "small", Limit: limit, Cursor: cursor})
			if err != nil || pages > 20 {
				t.Fatalf("limit %d: page %d: %v", limit, pages, err)
			}
			for _, p := range page.Pins {
				seen[p.SID] = true
			}
			if cursor = page.Next; cursor == "" {
				break
			}
		}
		if len(seen) != 18 {
			t.Fatalf("pages of %d listed %d of 18 pins", limit, len(seen))
		}
	}
}

func testListFilters(t *testing.T, s affinity.Store) {
	for i := 0; i < 40; i++ {
		p := pin(fmt.Sprintf("sid-%02d", i), "chat", fmt.Sprintf("node%d", i%2))
		if i%4 == 0 {
			p.Transport, p.EIO = affinity.TransportWebSocket, 3
		}
		mustPin(t, s, p)
	}
	mustPin(t, s, pin("x", "other", "node0"))
	cases := []struct {
		opts affinity.ListOptions
		want int
	}{
		{affinity.ListOptions{}, 41},
		{affinity.ListOptions{Pool: "chat"}, 40},
		{affinity.ListOptions{Pool: "chat", Node: "node0"}, 20},
		{affinity.ListOptions{Pool: "other", Node: "node0"}, 1},
		{affinity.ListOptions{Transport: affinity.TransportWebSocket}, 10},
		{affinity.ListOptions{EIO: 3}, 10},
		{affinity.ListOptions{Pool: "chat", Node: "node1", EIO: 3}, 0},
		{affinity.ListOptions{Pool: "nope"}, 0},
	}
	for _, c := range cases {
		c.opts.Limit = 7 // force several pages per filter
		var got []string
		for pages := 0; pages < 50; pages++ {
			page, err := s.List(ctx, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range page.Pins {
				got = append(got, p.SID)
				if (c.opts.Pool != "" && p.Pool != c.opts.Pool) || (c.opts.Node != "" && p.Node != c.opts.Node) ||
					(c.opts.Transport != "" && p.Transport != c.opts.Transport) || (c.opts.EIO != 0 && p.EIO != c.opts.EIO) {
					t.Fatalf("%+v: %+v does not match", c.opts, p)
				}
			}
			if page.Next == "" {
				break
			}
			c.opts.Cursor = page.Next
		}
		sort.Strings(got)
		if len(got) != c.want {
			t.Errorf("%+v: %d pins, want %d", c.opts, len(got), c.want)
		}
	}
}

func testBadCursor(t *testing.T, s affinity.Store) {
	if _, err := s.List(ctx, affinity.ListOptions{Cursor: "%%%not-a-cursor"}); !errors.Is(err, affinity.ErrBadCursor) {
		t.Fatalf("List(bad cursor) = %v", err)
	}
}

func testConcurrentPin(t *testing.T, s affinity.Store) {
	var wg sync.WaitGroup
	var created atomic.Int32
	nodes := make(chan string, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			cur, ok, err := s.Pin(ctx, pin("contested", "chat", fmt.Sprintf("node%d", i)))
			if err != nil {
				t.Error(err)
				return
			}
			if ok {
				created.Add(1)
			}
			nodes <- cur.Node
		}(i)
	}
	wg.Wait()
	close(nodes)
	if created.Load() != 1 {
		t.Fatalf("%d pins created, want 1", created.Load())
	}
	first := ""
	for n := range nodes {
		if first == "" {
			first = n
		}
		if n != first {
			t.Fatalf("racers disagree: %s vs %s", first, n)
		}
	}
}

func waitUntil(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("condition not met within %s", d)
}

func testUnpinNode(t *testing.T, s affinity.Store) {
	for i := 0; i < 1200; i++ { // more than one Redis batch
		mustPin(t, s, pin(fmt.Sprintf("sid-%04d", i), "chat", fmt.Sprintf("node%d", i%2)))
	}
	mustPin(t, s, pin("same-node-other-pool", "other", "node0"))
	heard := map[string]bool{}
	removed, err := s.UnpinNode(ctx, "chat", "node0", func(sid string) { heard[sid] = true })
	if err != nil || removed != 600 || len(heard) != 600 || !heard["sid-0000"] || heard["sid-0001"] {
		t.Fatalf("UnpinNode = %d, %v, %d sids heard; want 600 of node0", removed, err, len(heard))
	}
	if _, ok := lookup(t, s, "sid-0000"); ok {
		t.Fatal("a pin of the unpinned node is still found")
	}
	for _, sid := range []string{"sid-0001", "same-node-other-pool"} {
		if _, ok := lookup(t, s, sid); !ok {
			t.Fatalf("pin %s of another node was removed", sid)
		}
	}
	counts, err := s.CountByNode(ctx, "chat")
	if err != nil || counts["node0"] != 0 || counts["node1"] != 600 {
		t.Fatalf("counts after UnpinNode: %v, %v", counts, err)
	}
	page, err := s.List(ctx, affinity.ListOptions{Pool: "chat", Node: "node0"})
	if err != nil || len(page.Pins) != 0 {
		t.Fatalf("listing of the unpinned node: %d pins, %v", len(page.Pins), err)
	}
	if removed, err := s.UnpinNode(ctx, "chat", "node0", nil); err != nil || removed != 0 {
		t.Fatalf("second UnpinNode = %d, %v; want 0", removed, err)
	}
}

func testDrain(t *testing.T, s affinity.Store) {
	a, b := affinity.NodeRef{Pool: "chat", Node: "b"}, affinity.NodeRef{Pool: "chat", Node: "a"}
	for _, ref := range []affinity.NodeRef{a, b, a} {
		if err := s.SetDrain(ctx, ref, true); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Drained(ctx)
	if err != nil || len(got) != 2 || got[0] != b || got[1] != a {
		t.Fatalf("Drained = %v, %v; want [%v %v]", got, err, b, a)
	}
	if err := s.SetDrain(ctx, a, false); err != nil {
		t.Fatal(err)
	}
	if got, err = s.Drained(ctx); err != nil || len(got) != 1 || got[0] != b {
		t.Fatalf("after undrain: %v, %v", got, err)
	}
}

func testEvict(t *testing.T, s affinity.Store) {
	heard := make(chan string, 4)
	s.OnEvict(func(sid string) { heard <- sid })
	mustPin(t, s, pin("sid-kicked", "chat", "node1"))
	if ok, err := s.Evict(ctx, "sid-kicked"); err != nil || !ok {
		t.Fatalf("Evict = %v, %v", ok, err)
	}
	if _, ok := lookup(t, s, "sid-kicked"); ok {
		t.Fatal("an evicted pin is still found")
	}
	select {
	case sid := <-heard:
		if sid != "sid-kicked" {
			t.Fatalf("OnEvict heard %q", sid)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("OnEvict heard nothing")
	}
	if ok, err := s.Evict(ctx, "sid-kicked"); err != nil || ok {
		t.Fatalf("second Evict = %v, %v; want false", ok, err)
	}
}

func testMigrations(t *testing.T, s affinity.Store) {
	ref := affinity.NodeRef{Pool: "chat", Node: "node1"}
	start := time.Now().Truncate(time.Millisecond)
	m := affinity.Migration{Ref: ref, Rate: 100, Total: 600, Started: start, Updated: start}
	if err := s.SetMigration(ctx, m); err != nil {
		t.Fatal(err)
	}
	m.Ended, m.Left, m.Updated = 250, 350, start.Add(time.Second)
	if err := s.SetMigration(ctx, m); err != nil {
		t.Fatal(err)
	}
	other := affinity.Migration{Ref: affinity.NodeRef{Pool: "chat", Node: "node0"}, Rate: 5, Started: start, Updated: start}
	if err := s.SetMigration(ctx, other); err != nil {
		t.Fatal(err)
	}
	got, err := s.Migrations(ctx)
	if err != nil || len(got) != 2 || got[0].Ref != other.Ref || got[1].Ref != ref {
		t.Fatalf("Migrations = %+v, %v", got, err)
	}
	if g := got[1]; g.Rate != 100 || g.Total != 600 || g.Ended != 250 || g.Left != 350 || !g.Started.Equal(start) || !g.Updated.Equal(m.Updated) {
		t.Fatalf("progress read back %+v, want %+v", g, m)
	}
	if err := s.EndMigration(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Migrations(ctx); len(got) != 1 || got[0].Ref != other.Ref {
		t.Fatalf("after EndMigration: %+v", got)
	}
}

func testHeartbeats(t *testing.T, s affinity.Store) {
	now := time.Now().Truncate(time.Millisecond)
	for _, in := range []affinity.Instance{
		{ID: "b:3200", Tunnels: 2, Sessions: 5, Updated: now},
		{ID: "a:3200", Tunnels: 7, Sessions: 9, Updated: now},
		{ID: "gone:3200", Updated: now.Add(-time.Minute)},
	} {
		if err := s.Heartbeat(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Instances(ctx, 15*time.Second)
	if err != nil || len(got) != 2 || got[0].ID != "a:3200" || got[0].Tunnels != 7 || got[0].Sessions != 9 || !got[0].Updated.Equal(now) || got[1].ID != "b:3200" {
		t.Fatalf("Instances = %+v, %v", got, err)
	}
}
