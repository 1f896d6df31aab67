// Package backends owns the pools and nodes of the config: per-node HTTP clients, health checks, node
// states (up, down, draining), the balancing policy for new sessions, and applying a reloaded config.
//
// It must not route requests of existing sessions: package affinity answers where a sid lives.
package backends
