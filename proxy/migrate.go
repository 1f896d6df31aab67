package proxy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sidpin/sidpin/affinity"
	"github.com/sidpin/sidpin/configs"
	"github.com/sidpin/sidpin/sessionlog"
)

// A paced migration moves a node's sessions elsewhere without a reconnect storm: the node is drained
// (no new sessions, on every instance), then its sessions are kicked Rate per second: a WebSocket
// gets close 1001, a polling session a close packet at its node (its held GET answers) and then
// "Session ID unknown". Clients reconnect to the other nodes in a steady stream. The instance that
// runs it writes its progress to the pin store every second, so every instance shows it.

// Migrate's errors for what the caller asked wrong.
var (
	ErrNoSuchNode = errors.New("no such node")
	ErrBadRate    = fmt.Errorf("rate: must be above 0 and at most %d sessions per second", configs.MaxMigrateRate)
)

// migrations are the migrations this instance runs.
type migrations struct {
	mu      sync.Mutex
	running map[affinity.NodeRef]context.CancelFunc
}

// progressEvery is how often a running migration writes its progress.
const progressEvery = time.Second

// Migrate drains pool/node and ends its sessions rate per second, from now on, in the background;
// a migration of the node already running here takes the new rate.
func (p *Proxy) Migrate(ctx context.Context, pool, node string, rate float64) (affinity.Migration, error) {
	if rate <= 0 || rate > configs.MaxMigrateRate {
		return affinity.Migration{}, fmt.Errorf("%w: got %g", ErrBadRate, rate)
	}
	if p.nodes.Node(pool, node) == nil {
		return affinity.Migration{}, fmt.Errorf("%w: %s/%s", ErrNoSuchNode, pool, node)
	}
	if err := p.SetDrain(ctx, pool, node, true); err != nil {
		return affinity.Migration{}, err
	}
	return p.startMigration(ctx, affinity.NodeRef{Pool: pool, Node: node}, rate)
}

// startMigration records the migration and starts its runner (stopping one running here before).
func (p *Proxy) startMigration(ctx context.Context, ref affinity.NodeRef, rate float64) (affinity.Migration, error) {
	counts, err := p.store.CountByNode(ctx, ref.Pool)
	if err != nil {
		return affinity.Migration{}, err
	}
	now := time.Now()
	m := affinity.Migration{Ref: ref, Rate: rate, Total: counts[ref.Node], Left: counts[ref.Node], Started: now, Updated: now}
	if err := p.store.SetMigration(ctx, m); err != nil {
		return affinity.Migration{}, err
	}
	p.migr.mu.Lock()
	if stop := p.migr.running[ref]; stop != nil {
		stop()
	}
	rctx, cancel := context.WithCancel(context.Background())
	if p.migr.running == nil {
		p.migr.running = map[affinity.NodeRef]context.CancelFunc{}
	}
	p.migr.running[ref] = cancel
	p.migr.mu.Unlock()
	p.log.Info("migrating a node's sessions", "pool", ref.Pool, "node", ref.Node, "sessions", m.Total, "rate", rate)
	go p.runMigration(rctx, m)
	return m, nil
}

// StopMigration stops the migration of pool/node if this instance runs it, and forgets it
// everywhere; the node stays drained.
func (p *Proxy) StopMigration(ctx context.Context, pool, node string) error {
	ref := affinity.NodeRef{Pool: pool, Node: node}
	p.migr.mu.Lock()
	if stop := p.migr.running[ref]; stop != nil {
		stop()
		delete(p.migr.running, ref)
	}
	p.migr.mu.Unlock()
	return p.store.EndMigration(ctx, ref)
}

// stopMigrations stops every migration this instance runs (shutdown); their records stay, stalled.
func (p *Proxy) stopMigrations() {
	p.migr.mu.Lock()
	defer p.migr.mu.Unlock()
	for ref, stop := range p.migr.running {
		stop()
		delete(p.migr.running, ref)
	}
}

// runMigration kicks the node's sessions at m.Rate until it has none, writing progress as it goes.
func (p *Proxy) runMigration(ctx context.Context, m affinity.Migration) {
	pace := time.Duration(float64(time.Second) / m.Rate)
	next := time.Now()
	lastProgress := time.Now()
	for ctx.Err() == nil {
		sids, err := p.sessionsOf(ctx, m.Ref, 256)
		if err != nil {
			p.log.Warn("migration: listing the node's sessions failed; retrying", "pool", m.Ref.Pool, "node", m.Ref.Node, "err", err)
			sleepCtx(ctx, time.Second)
			continue
		}
		if len(sids) == 0 {
			p.finishMigration(m)
			return
		}
		for _, sid := range sids {
			if !sleepCtx(ctx, time.Until(next)) {
				return
			}
			next = next.Add(pace)
			if now := time.Now(); next.Before(now.Add(-pace)) {
				next = now // fell behind (a slow store): no burst to catch up
			}
			kctx, cancel := context.WithTimeout(ctx, kickTimeout+storeTimeout)
			if _, found, err := p.kick(kctx, sid, sessionlog.EndMigrated); err == nil && found {
				m.Ended++
				p.metrics.MigrationEnded(m.Ref.Pool, m.Ref.Node)
			}
			cancel()
			if time.Since(lastProgress) >= progressEvery {
				lastProgress = time.Now()
				p.writeProgress(ctx, &m)
			}
		}
	}
}

// sessionsOf lists up to n sids pinned to ref.
func (p *Proxy) sessionsOf(ctx context.Context, ref affinity.NodeRef, n int) ([]string, error) {
	lctx, cancel := context.WithTimeout(ctx, 10*storeTimeout)
	defer cancel()
	page, err := p.store.List(lctx, affinity.ListOptions{Pool: ref.Pool, Node: ref.Node, Limit: n})
	if err != nil {
		return nil, err
	}
	sids := make([]string, 0, len(page.Pins))
	for _, pin := range page.Pins {
		sids = append(sids, pin.SID)
	}
	return sids, nil
}

// writeProgress counts what is left and records it.
func (p *Proxy) writeProgress(ctx context.Context, m *affinity.Migration) {
	sctx, cancel := context.WithTimeout(ctx, 2*storeTimeout)
	defer cancel()
	if counts, err := p.store.CountByNode(sctx, m.Ref.Pool); err == nil {
		m.Left = counts[m.Ref.Node]
	}
	m.Updated = time.Now()
	if err := p.store.SetMigration(sctx, *m); err != nil {
		p.log.Warn("migration progress not recorded", "pool", m.Ref.Pool, "node", m.Ref.Node, "err", err)
	}
}

// finishMigration records a migration that left its node without sessions.
func (p *Proxy) finishMigration(m affinity.Migration) {
	m.Left, m.Done, m.Updated = 0, true, time.Now()
	sctx, cancel := context.WithTimeout(context.Background(), 2*storeTimeout)
	defer cancel()
	if err := p.store.SetMigration(sctx, m); err != nil {
		p.log.Warn("migration end not recorded", "pool", m.Ref.Pool, "node", m.Ref.Node, "err", err)
	}
	p.migr.mu.Lock()
	delete(p.migr.running, m.Ref)
	p.migr.mu.Unlock()
	p.log.Info("node migrated: no session left", "pool", m.Ref.Pool, "node", m.Ref.Node, "ended", m.Ended,
		"took", time.Since(m.Started).Round(time.Millisecond))
}

// migrateRemoved starts migrating the nodes a reload removed from pools whose on_node_removed is
// migrate (keys "pool/node"), unless a migration of theirs is recorded already.
func (p *Proxy) migrateRemoved(cfg *configs.Config, removed []string) {
	if len(removed) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*storeTimeout)
	defer cancel()
	known, err := p.store.Migrations(ctx)
	if err != nil {
		p.log.Warn("migrations unavailable: removed nodes drain instead", "err", err)
		return
	}
	recorded := map[affinity.NodeRef]bool{}
	for _, m := range known {
		recorded[m.Ref] = true
	}
	for _, key := range removed {
		pool, node, _ := strings.Cut(key, "/")
		ref := affinity.NodeRef{Pool: pool, Node: node}
		pc := cfg.Pool(pool)
		if pc == nil || pc.OnNodeRemoved != configs.RemovedMigrate || recorded[ref] {
			continue
		}
		if _, err := p.startMigration(ctx, ref, pc.MigrateRate); err != nil {
			p.log.Warn("removed node not migrated: it drains", "pool", pool, "node", node, "err", err)
		}
	}
}

// migrateSelfDrained starts migrating a node whose health check asks to be drained, when its pool's
// on_node_removed is migrate (such a node is leaving) and no migration of it is recorded.
func (p *Proxy) migrateSelfDrained(pool, node string) {
	pc := p.cfg().Pool(pool)
	if pc == nil || pc.OnNodeRemoved != configs.RemovedMigrate {
		return
	}
	p.migrateRemoved(p.cfg(), []string{pool + "/" + node})
}

// Migrations returns the migrations recorded in the pin store (every instance's).
func (p *Proxy) Migrations(ctx context.Context) ([]affinity.Migration, error) {
	return p.store.Migrations(ctx)
}

// sleepCtx waits d (nothing when d ≤ 0); false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
