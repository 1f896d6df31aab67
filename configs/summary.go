package configs

import "fmt"

// Summary is a one-line description of a loaded config, printed by `sidpin -check`.
func (c *Config) Summary() string {
	nodes, discovered := 0, 0
	for _, p := range c.Pools {
		nodes += len(p.Nodes)
		if p.Discovery.Enabled() {
			discovered++
		}
	}
	admin := "off"
	if c.Admin.Listen != "" {
		admin = c.Admin.Listen
	}
	s := fmt.Sprintf("%s: ok: listen %s, admin %s, store %s, %d pool(s), %d node(s)",
		c.File, c.Listen, admin, c.Store.Kind, len(c.Pools), nodes)
	if discovered > 0 {
		s += fmt.Sprintf(", %d pool(s) discovered from DNS", discovered)
	}
	return s
}
