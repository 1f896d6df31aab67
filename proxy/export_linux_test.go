//go:build linux

package proxy

// LoopExchanges is how many requests the loop front has sent to their nodes.
func LoopExchanges() int64 { return loopExchanges.Load() }

// LoopWebSocketOpens is how many WebSocket-first sessions the loop front opened and gave to the relay.
func LoopWebSocketOpens() int64 { return loopWebSocketOpens.Load() }
