// Package backends owns the pools and nodes of the config: how sidpin reaches each node (Transport:
// dialing, TLS, the pooled HTTP client, health checks, the WebSocket dial), node states (up, down,
// draining, removed) and what counts against them (fault.go), the balancing policies for new sessions
// (one file each behind the Balancer interface), and applying a reloaded config (build, then swap).
//
// It must not route requests of existing sessions: package affinity answers where a sid lives.
package backends
