//go:build !linux

package upgrade

import (
	"net"
	"sync/atomic"
)

var loopTunnels atomic.Int64

// handOver is Linux-only; elsewhere tunnels are copied by goroutines.
func handOver(client, node net.Conn, active *atomic.Int64, done func()) bool { return false }

func shutdownConn(net.Conn) {}
