package affinity_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sidpin/sidpin/affinity"
	"github.com/sidpin/sidpin/affinity/storetest"
)

func newMemory(t *testing.T) affinity.Store {
	s, err := affinity.NewMemoryStore(affinity.MemoryOptions{SweepEvery: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMemoryStoreConformance(t *testing.T) { storetest.Run(t, newMemory) }

func TestMemoryStoreFull(t *testing.T) {
	s, _ := affinity.NewMemoryStore(affinity.MemoryOptions{MaxPins: 2})
	defer s.Close()
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		_, _, err := s.Pin(ctx, affinity.Pin{SID: fmt.Sprint(i), Pool: "p", Node: "n", TTL: time.Minute})
		if (i < 2) != (err == nil) || (i == 2 && !errors.Is(err, affinity.ErrFull)) {
			t.Fatalf("pin %d: %v", i, err)
		}
	}
}

// TestMemoryStoreReservations: room is held for handshakes on their way, against max_pins.
func TestMemoryStoreReservations(t *testing.T) {
	s, _ := affinity.NewMemoryStore(affinity.MemoryOptions{MaxPins: 3})
	defer s.Close()
	ctx := context.Background()
	if _, _, err := s.Pin(ctx, affinity.Pin{SID: "a", Pool: "p", Node: "n", TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if !s.ReservePin() {
			t.Fatalf("room for pin %d of 3 was refused", i+2)
		}
	}
	if s.ReservePin() {
		t.Fatal("a fourth handshake got room in a table of three")
	}
	if _, _, err := s.Pin(ctx, affinity.Pin{SID: "b", Pool: "p", Node: "n", TTL: time.Minute}); err != nil {
		t.Fatalf("a reserved pin: %v", err)
	}
	s.ReleasePin()
	s.ReleasePin()
	if !s.ReservePin() {
		t.Fatal("room released and then refused")
	}
	if s.ReservePin() {
		t.Fatal("room beyond max_pins")
	}
}

func TestMemoryStoreSweepsInBatches(t *testing.T) {
	now := time.Unix(1000, 0)
	s, _ := affinity.NewMemoryStore(affinity.MemoryOptions{SweepEvery: time.Hour, Now: func() time.Time { return now }})
	defer s.Close()
	ctx := context.Background()
	for i := 0; i < 2500; i++ {
		ttl := time.Second
		if i%5 == 0 {
			ttl = time.Hour
		}
		s.Pin(ctx, affinity.Pin{SID: fmt.Sprint(i), Pool: "p", Node: "n", TTL: ttl})
	}
	now = now.Add(time.Minute)
	if removed := s.Sweep(); removed != 2000 {
		t.Fatalf("swept %d, want 2000", removed)
	}
	if s.Len() != 500 {
		t.Fatalf("Len = %d", s.Len())
	}
}

// TestMemoryStoreSweepSeesTouches: a sweep removes a pin when its expiry has passed, not before, and
// a touch pushes that moment later however often the table is swept meanwhile; an unpinned sid
// pinned again is judged by its new pin.
func TestMemoryStoreSweepSeesTouches(t *testing.T) {
	now := time.Unix(1000, 0)
	s, _ := affinity.NewMemoryStore(affinity.MemoryOptions{SweepEvery: time.Hour, Now: func() time.Time { return now }})
	defer s.Close()
	ctx := context.Background()
	for _, sid := range []string{"touched", "idle", "again"} {
		if _, _, err := s.Pin(ctx, affinity.Pin{SID: sid, Pool: "p", Node: "n", TTL: 10 * time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	alive := func(sid string) bool { _, ok, _ := s.Lookup(ctx, sid); return ok }
	steps := []struct {
		advance time.Duration
		do      func()
		want    map[string]bool
		held    int // Len: pins the sweep left
	}{
		{5 * time.Second, func() { s.Touch("touched") }, map[string]bool{"touched": true, "idle": true, "again": true}, 3},
		{3 * time.Second, func() { // "again" is unpinned and pinned anew with a longer TTL
			_, _ = s.Unpin(ctx, "again")
			_, _, _ = s.Pin(ctx, affinity.Pin{SID: "again", Pool: "p", Node: "n", TTL: time.Minute})
		}, map[string]bool{"touched": true, "idle": true, "again": true}, 3},
		{4 * time.Second, nil, map[string]bool{"touched": true, "idle": false, "again": true}, 2},  // 12 s: idle expired
		{5 * time.Second, nil, map[string]bool{"touched": false, "idle": false, "again": true}, 1}, // 17 s: touched at 5 s expired
		{time.Minute, nil, map[string]bool{"touched": false, "idle": false, "again": false}, 0},
	}
	for i, st := range steps {
		now = now.Add(st.advance)
		if st.do != nil {
			st.do()
		}
		s.Sweep()
		for sid, want := range st.want {
			if got := alive(sid); got != want {
				t.Fatalf("step %d: %s alive %v, want %v", i, sid, got, want)
			}
		}
		if s.Len() != st.held {
			t.Fatalf("step %d: Len = %d after the sweep, want %d", i, s.Len(), st.held)
		}
	}
	if s.Len() != 0 {
		t.Fatalf("Len = %d after every pin expired", s.Len())
	}
}
