package affinity

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkMemorySweep is one sweep of a table of live pins (none expired): the store's background
// cost per SweepEvery, whatever the traffic.
func BenchmarkMemorySweep(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s, err := NewMemoryStore(MemoryOptions{SweepEvery: time.Hour})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			for i := range n {
				pin := Pin{SID: fmt.Sprintf("sid-%09d", i), Pool: "p", Node: fmt.Sprintf("n%d", i%3),
					Transport: TransportPolling, EIO: 4, TTL: time.Hour}
				if _, _, err := s.Pin(context.Background(), pin); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for range b.N {
				s.Sweep()
			}
		})
	}
}
