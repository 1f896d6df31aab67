package proxy

import "github.com/sidpin/sidpin/upgrade"

// TEMPORARY until the relay's CloseTarget and Shutdown land (being written in upgrade/).
func closeTarget(r *upgrade.Relay, addr string) int {
	if c, ok := any(r).(interface{ CloseTarget(string) int }); ok {
		return c.CloseTarget(addr)
	}
	return 0
}

func shutdownRelay(r *upgrade.Relay) {
	if c, ok := any(r).(interface{ Shutdown() }); ok {
		c.Shutdown()
		return
	}
	r.Close()
}
