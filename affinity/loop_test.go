package affinity

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestLoop: both jobs run on their own intervals; close runs last once, after which nothing runs, and
// only the first close reports that it stopped the loop.
func TestLoop(t *testing.T) {
	var a, b, last atomic.Int32
	l := startLoop(func() { last.Add(1) }, job{time.Millisecond, func() { a.Add(1) }}, job{2 * time.Millisecond, func() { b.Add(1) }})
	for end := time.Now().Add(5 * time.Second); a.Load() < 3 || b.Load() < 3; time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("jobs ran %d and %d times in 5s", a.Load(), b.Load())
		}
	}
	if !l.close() {
		t.Fatal("the first close did not stop the loop")
	}
	ranA, ranB := a.Load(), b.Load()
	if l.close() {
		t.Fatal("a second close stopped the loop again")
	}
	time.Sleep(10 * time.Millisecond)
	if last.Load() != 1 || a.Load() != ranA || b.Load() != ranB {
		t.Fatalf("after close: last ran %d times, jobs ran on (%d→%d, %d→%d)", last.Load(), ranA, a.Load(), ranB, b.Load())
	}
}
