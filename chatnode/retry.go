package chatnode

import (
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// backoff is a retry delay that doubles from min up to max. Each delay is drawn from [d/2, d] so that
// nodes which lost Redis together do not all retry in step.
type backoff struct {
	min, max time.Duration
	cur      time.Duration // 0: the next delay is the first
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	half := b.cur / 2
	return half + rand.N(b.cur-half+1)
}

func (b *backoff) reset() { b.cur = 0 }

// failureLog reports a run of failures of one kind without flooding the log: the first failure of a
// run at once, then at most one line per interval, which counts the failures it did not log.
type failureLog struct {
	log      *slog.Logger
	msg      string
	interval time.Duration

	mu       sync.Mutex
	failing  bool
	since    time.Time // first failure of the run
	lastLine time.Time
	unlogged int
}

func newFailureLog(log *slog.Logger, msg string, interval time.Duration) *failureLog {
	return &failureLog{log: log, msg: msg, interval: interval}
}

// failed records a failure at now and logs it unless a line of this run is more recent than interval.
func (l *failureLog) failed(err error, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.failing {
		l.failing, l.since = true, now
	} else if now.Sub(l.lastLine) < l.interval {
		l.unlogged++
		return
	}
	l.log.Warn(l.msg, "err", err, "failing_for", now.Sub(l.since).Round(time.Millisecond), "unlogged_failures", l.unlogged)
	l.lastLine, l.unlogged = now, 0
}

// recovered ends the run of failures; it returns how long the run lasted, and false when there was none.
func (l *failureLog) recovered(now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.failing {
		return 0, false
	}
	l.failing, l.unlogged = false, 0
	return now.Sub(l.since).Round(time.Millisecond), true
}
