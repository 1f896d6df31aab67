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

// loop is a store's background work: jobs each on its own interval, run one at a time by one
// goroutine, and a last run when the store closes (memory: sweep, then apply the memdb queue; Redis:
// flush and sweep, then flush). One timer, set for the next job due: an idle store wakes only for
// its jobs.
type loop struct {
	once sync.Once
	stop chan struct{}
	done chan struct{}
}

// startLoop runs the jobs until close, then last once.
func startLoop(last func(), jobs ...job) *loop {
	l := &loop{stop: make(chan struct{}), done: make(chan struct{})}
	go l.run(last, jobs)
	return l
}

func (l *loop) run(last func(), jobs []job) {
	defer close(l.done)
	due := make([]time.Time, len(jobs))
	now := time.Now()
	for i, j := range jobs {
		due[i] = now.Add(j.every)
	}
	t := time.NewTimer(time.Until(earliest(due)))
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			last()
			return
		case <-t.C:
		}
		for i, j := range jobs {
			if now := time.Now(); !now.Before(due[i]) {
				j.run()
				due[i] = now.Add(j.every)
			}
		}
		t.Reset(time.Until(earliest(due)))
	}
}

func earliest(ts []time.Time) time.Time {
	e := ts[0]
	for _, t := range ts[1:] {
		if t.Before(e) {
			e = t
		}
	}
	return e
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
