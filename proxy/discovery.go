package proxy

import (
	"context"
	"sync"

	"github.com/sidpin/sidpin/configs"
	"github.com/sidpin/sidpin/discovery"
)

// Pools whose nodes come from DNS (pools[].discovery): the watcher resolves them, and every set it
// finds is applied as a reload of the config as loaded, with the discovered nodes filled in. Nodes
// that appear join once their health checks rise; nodes that disappear follow the pool's
// on_node_removed, as nodes a reload removes do.

// discovering is the proxy's part of node discovery.
type discovering struct {
	watcher *discovery.Watcher
	mu      sync.Mutex      // one apply at a time: reloads and discovered changes
	source  *configs.Config // the config as loaded, before the discovered nodes are filled in
	ctx     context.Context // Start's: the watches run until it ends; nil before Start
}

func (p *Proxy) newDiscovering(cfg *configs.Config) {
	p.disc.source = cfg
	p.disc.watcher = discovery.NewWatcher(p.log, func(string) { go p.rediscovered() }, p.metrics.Discovery)
}

// startDiscovery resolves the discovered pools (Start waits for the first answers) and applies them.
func (p *Proxy) startDiscovery(ctx context.Context) {
	p.disc.mu.Lock()
	p.disc.ctx = ctx
	discovered := len(discovery.Specs(p.disc.source)) > 0
	p.disc.mu.Unlock()
	if discovered {
		p.rediscovered()
	}
}

// rediscovered applies the config as loaded with the discovered nodes it has now.
func (p *Proxy) rediscovered() {
	p.disc.mu.Lock()
	src := p.disc.source
	p.disc.mu.Unlock()
	if _, err := p.Reload(src); err != nil {
		p.log.Error("applying the discovered nodes failed", "err", err)
	}
}

// discovered records cfg as the config as loaded, updates the watches, and returns cfg with the
// discovered nodes filled in; p.disc.mu is held.
func (p *Proxy) discovered(cfg *configs.Config) *configs.Config {
	p.disc.source = cfg
	if p.disc.ctx != nil {
		p.disc.watcher.Set(p.disc.ctx, discovery.Specs(cfg))
	}
	return p.disc.watcher.Fill(cfg)
}
