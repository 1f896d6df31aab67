//go:build linux

package proxy

// LoopExchanges is how many requests the loop front has sent to their nodes.
func LoopExchanges() int64 { return loopExchanges.Load() }
