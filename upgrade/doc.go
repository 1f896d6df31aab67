// Package upgrade relays WebSocket connections between a client and its pinned chat node: it forwards the
// upgrade, watches only the first frames (to learn the sid of a WebSocket-first session and to see the
// upgrade complete), then moves bytes both ways without re-framing, and tracks live tunnels for shutdown.
//
// It must not decide where a session goes: the caller passes the node.
package upgrade
