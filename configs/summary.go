package configs

import "fmt"

// Summary is a one-line description of a loaded config, printed by `sidpin -check`.
func (c *Config) Summary() string {
	nodes := 0
	for _, p := range c.Pools {
		nodes += len(p.Nodes)
	}
	admin := "off"
	if c.Admin.Listen != "" {
		admin = c.Admin.Listen
	}
	return fmt.Sprintf("%s: ok: listen %s, admin %s, store %s, %d pool(s), %d node(s)",
		c.File, c.Listen, admin, c.Store.Kind, len(c.Pools), nodes)
}
