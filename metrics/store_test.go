package metrics

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sidpin/sidpin/affinity"
)

// failingStore is a memory store whose Unpin fails, to see errors counted.
type failingStore struct{ *affinity.MemoryStore }

func (failingStore) Unpin(context.Context, string) (bool, error) { return false, errors.New("down") }

// lookupsTimed is the sample count of the lookup latency histogram.
func lookupsTimed(t *testing.T, m *Metrics) uint64 {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "sidpin_pin_store_duration_seconds" {
			continue
		}
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				if l.GetName() == "op" && l.GetValue() == "lookup" {
					return metric.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

func TestInstrumentStore(t *testing.T) {
	for _, c := range []struct {
		timed   bool
		lookups uint64
	}{{true, 2}, {false, 0}} {
		m := New()
		mem, err := affinity.NewMemoryStore(affinity.MemoryOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s := m.InstrumentStore(failingStore{mem}, c.timed)
		ctx := context.Background()
		if _, _, err := s.Pin(ctx, affinity.Pin{SID: "a", Pool: "p", Node: "n", TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
		s.Lookup(ctx, "a")
		s.Lookup(ctx, "b")
		s.Unpin(ctx, "a")
		if got := lookupsTimed(t, m); got != c.lookups {
			t.Errorf("timed=%v: %d lookups timed, want %d", c.timed, got, c.lookups)
		}
		if got := testutil.ToFloat64(m.storeErrors.WithLabelValues("unpin")); got != 1 {
			t.Errorf("timed=%v: unpin errors %v, want 1", c.timed, got)
		}
		mem.Close()
	}
}
