package affinity

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/go-memdb"
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

// BenchmarkMemdbInsertDelete is what the memory table's background apply spends per session: the
// record inserted into memdb, later deleted (10,000 other pins in the table).
func BenchmarkMemdbInsertDelete(b *testing.B) {
	db, err := memdb.NewMemDB(memSchema())
	if err != nil {
		b.Fatal(err)
	}
	txn := db.Txn(true)
	for i := range 10000 {
		_ = txn.Insert(pinTable, newRecord(Pin{SID: fmt.Sprintf("other-%d", i), Pool: "chat", Node: fmt.Sprintf("node%d", i%3)}))
	}
	txn.Commit()
	recs := make([]*record, 1024)
	for i := range recs {
		recs[i] = newRecord(Pin{SID: fmt.Sprintf("sid-%08d-abcdefgh", i), Pool: "chat", Node: "node2"})
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r := recs[i%len(recs)]
		i++
		txn := db.Txn(true)
		_ = txn.Insert(pinTable, r)
		txn.Commit()
		txn = db.Txn(true)
		_ = txn.Delete(pinTable, r)
		txn.Commit()
	}
}
