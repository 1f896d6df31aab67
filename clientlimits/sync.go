package clientlimits

import (
	"context"
	"time"
)

// run is the Limiter's one background goroutine: the exchange of connection counts with Redis every
// syncEvery (sooner, but at most every kickGap, when an address grows fast), and the sweep of full
// buckets every sweepEvery.
func (l *Limiter) run() {
	defer close(l.done)
	syncing := l.shared != nil && l.conns != nil
	if !syncing && l.buckets == nil {
		return
	}
	every := sweepEvery
	if syncing {
		every = l.shared.syncEvery
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	var lastSync, lastSweep int64
	for {
		select {
		case <-l.stop:
			return
		case <-tick.C:
		case <-l.kickCh:
			if !l.wait(time.Duration(lastSync + int64(l.shared.kickGap) - l.clock())) {
				return
			}
		}
		now := l.clock()
		if syncing {
			l.syncConns()
			lastSync = now
		}
		if l.buckets != nil && now-lastSweep >= int64(sweepEvery) {
			l.buckets.sweep(now)
			lastSweep = now
		}
	}
}

// wait sleeps d, false if the Limiter closes meanwhile.
func (l *Limiter) wait(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-l.stop:
		return false
	case <-t.C:
		return true
	}
}

// syncConns publishes this instance's counts of its busy addresses and learns the others' counts of
// the addresses it publishes or knows about, in one pipeline. A failure leaves the last counts read
// in force until they go stale: then each instance counts alone.
func (l *Limiter) syncConns() {
	l.items = l.conns.collect(l.clock(), l.shared.maxBatch, l.items)
	if len(l.items) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.shared.syncTimeout)
	defer cancel()
	err := l.shared.exchange(ctx, l.items, l.ipv6Prefix)
	if err != nil {
		l.syncErrors.Add(1)
		l.warnEvery(&l.lastRedisWarn, "connection counts of other instances unavailable; counting this instance's own", "err", err)
	}
	l.conns.apply(l.items, l.clock()+int64(l.shared.stale))
}

// withdraw removes this instance's published counts from Redis, so that other instances stop
// counting them at once rather than after the staleness window.
func (l *Limiter) withdraw() {
	if l.shared == nil || l.conns == nil {
		return
	}
	items := l.conns.publishedItems(nil)
	if len(items) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.shared.syncTimeout)
	defer cancel()
	if err := l.shared.exchange(ctx, items, l.ipv6Prefix); err != nil {
		l.log.Warn("could not withdraw this instance's connection counts; they expire on their own", "err", err)
	}
}
