//go:build !linux

package upgrade

import (
	"net"
	"sync/atomic"
	"time"
)

var loopTunnels atomic.Int64

// loopTunnel is Linux-only; elsewhere no tunnel is handed over, so none exists.
type loopTunnel struct{}

func (*loopTunnel) goAway(clientLast, nodeLast []byte, wait time.Duration) {}

func (*loopTunnel) endNow() {}

func (*loopTunnel) summary() (toClient, toNode uint64, first whichEnd) { return 0, 0, endNone }

// handOver is Linux-only; elsewhere tunnels are copied by goroutines.
func handOver(client, node net.Conn, active *atomic.Int64, done func(), inline bool, toClient, toNode frameCursor, bytes *relayedBytes) *loopTunnel {
	return nil
}
