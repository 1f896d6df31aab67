//go:build linux

package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sidpin/sidpin/backends"
	"github.com/sidpin/sidpin/internal/evloop"
)

// The loop front serves plain-TCP client connections in the event loops (internal/evloop): it
// accepts them, reads their requests, and serves the polling requests of established sessions
// itself, so that a long-poll held by its node costs no goroutine and no buffer, only its two
// sockets and a few hundred bytes. Every other request (handshakes, WebSocket upgrades, plain
// requests, anything unusual) is handed to the fasthttp server with its connection, which comes back
// to the loop after the answer when the connection is kept alive.
//
// Files: loop_front (accepting, the connections' registry, shutdown), loop_client (one client
// connection: reading requests, writing answers), loop_route (which requests the loop serves, and
// how they are routed), loop_exchange (one request's trip to its node), loop_nodes (the loops' node
// connections), loop_handoff (to fasthttp and back).

// front is the loop front of one Proxy.
type front struct {
	p      *Proxy
	ln     *net.TCPListener // the listener given to Serve; the loops accept on a duplicate of it
	lfd    int
	shards []*shard
	conns  atomic.Int64 // client connections open in the loops (limits.max_connections)

	draining atomic.Bool // Shutdown began: answers close their connections
	stopped  chan struct{}
	lastConn atomic.Int64 // unix nanos of the last connection accepted (the drain's quiet wait)
	rejoined atomic.Uint64
}

// frontDisabled turns the loop front off, for measurements and comparisons (SIDPIN_LOOP_FRONT=0).
func frontDisabled() bool { return os.Getenv("SIDPIN_LOOP_FRONT") == "0" }

// newFront makes the loop front over ln, or returns nil when the loops cannot take it (not TCP).
func newFront(p *Proxy, ln net.Listener) (*front, error) {
	tl, ok := ln.(*net.TCPListener)
	if !ok || frontDisabled() {
		return nil, nil
	}
	loops, err := evloop.Shared()
	if err != nil {
		return nil, fmt.Errorf("proxy: event loops: %w", err)
	}
	raw, err := tl.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("proxy: listener: %w", err)
	}
	lfd, derr := -1, error(nil)
	if err := raw.Control(func(fd uintptr) { lfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil || derr != nil {
		return nil, fmt.Errorf("proxy: listener: %w", errors.Join(err, derr))
	}
	f := &front{p: p, ln: tl, lfd: lfd, stopped: make(chan struct{})}
	for _, l := range loops {
		f.shards = append(f.shards, newShard(f, l))
	}
	return f, nil
}

// serve starts accepting in every loop and returns when the front stops (Shutdown, or the
// listener failing).
func (f *front) serve() error {
	for _, s := range f.shards {
		var err error
		s.loop.Locked(func() {
			// Level-triggered and exclusive: one loop wakes per arrival, and accepts until none is left.
			err = s.loop.Add(f.lfd, &acceptor{s: s}, evloop.In|evloop.Exclusive)
		})
		if err != nil {
			f.closeListener()
			return fmt.Errorf("proxy: listen in the event loop: %w", err)
		}
	}
	// The duplicate keeps the socket listening; the Go listener leaves Go's netpoller.
	f.ln.Close()
	<-f.stopped
	return nil
}

// acceptor is the listening socket's handler in one loop.
type acceptor struct{ s *shard }

// acceptBatch bounds the connections accepted per event, so that a flood of them cannot starve the
// connections already open.
const acceptBatch = 64

// Event accepts what is queued (up to acceptBatch; level-triggered, the rest wakes the loop again).
func (a *acceptor) Event(uint32) {
	f := a.s.f
	for range acceptBatch {
		fd, sa, errno := evloop.Accept4(f.lfd)
		switch {
		case errno == unix.EAGAIN || errno == unix.EBADF:
			return
		case errno == unix.EINTR || errno == unix.ECONNABORTED:
			continue
		case errno != 0:
			a.s.pauseAccept(errno)
			return
		}
		f.lastConn.Store(a.s.loop.Now())
		a.s.accepted(fd, sa)
	}
}

// acceptPause is how long a loop stops accepting after accept failed otherwise than by an empty
// queue (out of descriptors, above all): the queued connections wait instead of spinning the loop.
const acceptPause = 100 * time.Millisecond

func (s *shard) pauseAccept(err error) {
	f := s.f
	if f.draining.Load() && errors.Is(err, unix.EBADF) {
		return
	}
	f.p.log.Warn("accepting client connections failed; pausing", "err", err, "pause", acceptPause)
	s.loop.Forget(f.lfd)
	s.loop.After(acceptPause, func() {
		if !f.draining.Load() {
			_ = s.loop.Add(f.lfd, &acceptor{s: s}, evloop.In|evloop.Exclusive)
		}
	})
}

// closeListener stops accepting in every loop and closes the listening socket.
func (f *front) closeListener() {
	for _, s := range f.shards {
		s.loop.Locked(func() { s.loop.Forget(f.lfd) })
	}
	unix.Close(f.lfd)
}

// shutdown stops accepting once the kernel's queue is empty (as drainingListener does), makes every
// connection close after its answer in flight, closes idle ones once the connections accepted during
// the drain had their first request read, and waits until every connection closed or ctx ends (then
// it closes the rest).
func (f *front) shutdown(ctx context.Context) error {
	f.draining.Store(true)
	f.drainAccepts()
	select {
	case <-time.After(firstRequestWait):
	case <-ctx.Done():
	}
	defer close(f.stopped)
	for {
		for _, s := range f.shards {
			s.loop.Locked(s.closeIdle)
		}
		if f.conns.Load() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			for _, s := range f.shards {
				s.loop.Locked(s.closeAll)
			}
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// drainAccepts goes on accepting until drainQuiet passed without a new connection (or a second
// passed), then closes the listening socket.
func (f *front) drainAccepts() {
	deadline := time.Now().Add(time.Second)
	f.lastConn.Store(time.Now().UnixNano())
	for time.Now().Before(deadline) && time.Since(time.Unix(0, f.lastConn.Load())) < drainQuiet {
		time.Sleep(drainQuiet / 5)
	}
	f.closeListener()
}

// cutNode ends at once every request held on node's connections in the loops (it went down): those
// not answered yet get "Session ID unknown". It returns how many connections it closed.
func (f *front) cutNode(n *backends.Node) int {
	cut := 0
	for _, s := range f.shards {
		s.loop.Locked(func() { cut += s.cutNode(n) })
	}
	return cut
}
