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
