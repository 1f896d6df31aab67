// Package upgrade relays WebSocket connections between a client and its pinned chat node: it forwards the
// upgrade, watches only the first frames (to learn the sid of a WebSocket-first session and to see the
// upgrade complete), then moves bytes both ways without re-framing. It tracks live tunnels so that it can
// end them, all at once (Shutdown, Close) or those of one node (CloseTarget); the graceful ends send close
// frames with status 1001, put between two frames: the relay follows frame boundaries by their headers only.
//
// It must not decide where a session goes: the caller passes the node.
package upgrade
