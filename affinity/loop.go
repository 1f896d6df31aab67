package affinity

import (
	"sync"
	"time"
)

// job is background work run every interval.
type job struct {
	every time.Duration
	run   func()
}

// loop is a store's background work: two jobs on their own tickers, run one at a time by one
// goroutine, and a last run when the store closes (memory: apply the memdb queue and sweep, then
// apply; Redis: flush and sweep, then flush).
type loop struct {
	once sync.Once
	stop chan struct{}
	done chan struct{}
}

// startLoop runs a and b until close, then last once.
func startLoop(a, b job, last func()) *loop {
	l := &loop{stop: make(chan struct{}), done: make(chan struct{})}
	go l.run(a, b, last)
	return l
}

func (l *loop) run(a, b job, last func()) {
	defer close(l.done)
	ta, tb := time.NewTicker(a.every), time.NewTicker(b.every)
	defer ta.Stop()
	defer tb.Stop()
	for {
		select {
		case <-l.stop:
			last()
			return
		case <-ta.C:
			a.run()
		case <-tb.C:
			b.run()
		}
	}
}

// close stops the loop and waits for its last run. It reports whether this call stopped it: later
// calls only wait.
func (l *loop) close() (stopped bool) {
	l.once.Do(func() {
		close(l.stop)
		stopped = true
	})
	<-l.done
	return stopped
}
