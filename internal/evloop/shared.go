//go:build linux

package evloop

import (
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

var (
	sharedOnce sync.Once
	shared     []*Loop
	sharedErr  error
	nextShared atomic.Uint64
)

// Shared returns the process's loops, started on first use: WebSocket tunnels and client
// connections share them.
func Shared() ([]*Loop, error) {
	sharedOnce.Do(func() {
		for range loopCount() {
			l, err := New()
			if err != nil {
				sharedErr = err
				return
			}
			shared = append(shared, l)
			go l.Run()
		}
	})
	return shared, sharedErr
}

// Next returns the next of the shared loops in turn.
func Next() (*Loop, error) {
	loops, err := Shared()
	if err != nil {
		return nil, err
	}
	return loops[nextShared.Add(1)%uint64(len(loops))], nil
}

// loopCount is how many loop goroutines share the work: one per four CPUs. Fewer loops handle more
// events per wake-up, and the wake-ups (the Go scheduler's part) are what a relayed message costs
// beyond its read and write: on 2 CPUs one loop took WebSocket echoes from 0.161 to 0.146 s of CPU
// per 10k (bench/run.sh). SIDPIN_LOOPS overrides it, for measurements.
func loopCount() int {
	if n, err := strconv.Atoi(os.Getenv("SIDPIN_LOOPS")); err == nil && n > 0 {
		return n
	}
	return max(1, runtime.GOMAXPROCS(0)/4)
}

// DupConn returns a duplicate of a TCP connection's descriptor (close-on-exec, and non-blocking like
// the original: the flag belongs to the shared open file). Closing the connection afterwards takes
// the socket out of Go's netpoller and leaves the duplicate its only descriptor.
func DupConn(c net.Conn) (int, bool) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return 0, false
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return 0, false
	}
	fd, derr := -1, error(nil)
	if err := raw.Control(func(f uintptr) { fd, derr = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0) }); err != nil || derr != nil {
		return 0, false
	}
	return fd, true
}
