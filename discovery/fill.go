package discovery

import (
	"github.com/sidpin/sidpin/configs"
)

// SpecOf is the spec of a pool's discovery settings.
func SpecOf(d configs.Discovery) Spec {
	return Spec{Name: d.Name, Port: d.Port, SRV: d.SRV, Scheme: d.Scheme, Resolver: d.Resolver,
		Interval: d.Interval.D(), Timeout: d.Timeout.D()}
}

// Specs are the discovery specs of cfg's pools that take their nodes from DNS, by pool name.
func Specs(cfg *configs.Config) map[string]Spec {
	specs := map[string]Spec{}
	for _, p := range cfg.Pools {
		if p.Discovery.Enabled() {
			specs[p.Name] = SpecOf(p.Discovery)
		}
	}
	return specs
}

// Fill returns cfg with the nodes of its discovered pools set from the watcher's last good sets:
// a copy when there is any such pool, cfg itself otherwise.
func (w *Watcher) Fill(cfg *configs.Config) *configs.Config {
	out := cfg
	for i, p := range cfg.Pools {
		if !p.Discovery.Enabled() {
			continue
		}
		if out == cfg {
			c := *cfg
			c.Pools = append([]configs.Pool(nil), cfg.Pools...)
			out = &c
		}
		out.Pools[i].Nodes = Nodes(p.Discovery.Scheme, w.Targets(p.Name))
	}
	return out
}

// Nodes are the config nodes of targets, named by NodeName.
func Nodes(scheme string, targets []Target) []configs.Node {
	nodes := make([]configs.Node, 0, len(targets))
	for _, t := range targets {
		nodes = append(nodes, configs.Node{Name: NodeName(t.Addr), URL: scheme + "://" + t.Addr.String(), Weight: t.Weight})
	}
	return nodes
}
