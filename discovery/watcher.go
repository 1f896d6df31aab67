package discovery

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Watcher keeps the nodes of the pools that take them from DNS: each pool's name is resolved when
// it is set, then again every interval (never sooner than the records' TTL). A change of the set
// calls onChange; a failed resolution keeps the set found before, is logged and counted.
type Watcher struct {
	resolver resolver
	onChange func(pool string)
	observe  func(pool string, err error) // each resolution's outcome (metrics); may be nil
	log      *slog.Logger

	mu    sync.Mutex
	pools map[string]*watch
}

// watch is one pool's discovery, run by one goroutine.
type watch struct {
	spec    Spec
	targets []Target // the last good set (nil until one); guarded by the watcher's mu
	cancel  context.CancelFunc
	tried   chan struct{} // closed after the first resolution, good or not
}

// NewWatcher returns a watcher; onChange runs (on the watcher's goroutines) when a pool's set
// changed, observe after every resolution.
func NewWatcher(log *slog.Logger, onChange func(pool string), observe func(pool string, err error)) *Watcher {
	return &Watcher{resolver: resolver{resolvConf: "/etc/resolv.conf"}, onChange: onChange, observe: observe,
		log: log, pools: map[string]*watch{}}
}

// Set makes specs the pools watched until ctx ends: a pool new or changed is resolved at once, and
// Set returns once that first resolution is done (or its timeout passed); a pool gone stops.
func (w *Watcher) Set(ctx context.Context, specs map[string]Spec) {
	w.mu.Lock()
	kept := map[string][]Target{} // a changed pool keeps its nodes until its new spec resolves
	for pool, cur := range w.pools {
		if spec, ok := specs[pool]; !ok || spec != cur.spec {
			cur.cancel()
			delete(w.pools, pool)
			kept[pool] = cur.targets
		}
	}
	var fresh []*watch
	for pool, spec := range specs {
		if _, ok := w.pools[pool]; ok {
			continue
		}
		wctx, cancel := context.WithCancel(ctx)
		wt := &watch{spec: spec, cancel: cancel, tried: make(chan struct{}), targets: kept[pool]}
		w.pools[pool] = wt
		fresh = append(fresh, wt)
		go w.run(wctx, pool, wt)
	}
	w.mu.Unlock()
	for _, wt := range fresh {
		select {
		case <-wt.tried:
		case <-time.After(wt.spec.Timeout + 100*time.Millisecond):
		case <-ctx.Done():
		}
	}
}

// Targets returns the last good set of pool (nil before one).
func (w *Watcher) Targets(pool string) []Target {
	w.mu.Lock()
	defer w.mu.Unlock()
	if wt := w.pools[pool]; wt != nil {
		return wt.targets
	}
	return nil
}

// run resolves wt's pool until ctx ends.
func (w *Watcher) run(ctx context.Context, pool string, wt *watch) {
	for first := true; ; first = false {
		wait := w.resolveOnce(ctx, pool, wt)
		if first {
			close(wt.tried)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// resolveOnce resolves the pool once, keeps a good set, and returns how long to wait for the next.
func (w *Watcher) resolveOnce(ctx context.Context, pool string, wt *watch) time.Duration {
	spec := wt.spec
	rctx, cancel := context.WithTimeout(ctx, spec.Timeout)
	targets, ttl, err := w.resolver.resolve(rctx, spec)
	cancel()
	if ctx.Err() != nil {
		return 0 // stopped: not a failure of the resolver
	}
	if w.observe != nil {
		w.observe(pool, err)
	}
	if err != nil {
		w.log.Warn("node discovery failed; the pool keeps its nodes", "pool", pool, "err", err)
		return spec.Interval
	}
	if w.keep(pool, wt, targets) {
		w.log.Info("node discovery: the pool's nodes changed", "pool", pool, "nodes", len(targets))
		w.onChange(pool)
	}
	return max(spec.Interval, ttl)
}

// keep stores targets as the pool's set, unless wt was replaced meanwhile; true when it changed.
func (w *Watcher) keep(pool string, wt *watch, targets []Target) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pools[pool] != wt || slices.Equal(wt.targets, targets) {
		return false
	}
	wt.targets = targets
	return true
}
