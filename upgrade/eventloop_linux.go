package upgrade

import (
	"errors"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The event loop relays established tunnels without a goroutine or a buffer per connection: both
// sockets of a tunnel are watched by epoll, and one loop goroutine moves whatever becomes readable.
// An idle WebSocket then costs only its sockets and a small struct (measured in bench/: see README).
//
// Ownership: once handed over, only the loop reads, writes and closes the two file descriptors. To
// end a tunnel from outside, shut its sockets down; the loop sees the end and closes them itself,
// so a descriptor number is never reused under the loop's feet.

// loopBuffer is the one copy buffer of a loop goroutine.
const loopBuffer = 64 << 10

type eventLoop struct {
	epfd  int
	poll  syscall.RawConn // epfd in Go's own netpoller: the loop parks like any goroutine
	mu    sync.Mutex
	sides map[int32]*side
	buf   []byte
}

// side is one socket of a tunnel as the loop sees it.
type side struct {
	fd      int
	conn    net.Conn // closed by the loop when the tunnel ends
	peer    *side
	pending []byte // bytes read from peer that this socket could not take yet
	readEOF bool   // nothing more will be read from this socket
	tunnel  *loopTunnel
}

// loopTunnel is a tunnel handed to a loop; done runs once when both sides are closed.
type loopTunnel struct {
	a, b   *side
	closed atomic.Bool
	done   func()
	active *atomic.Int64 // unix nanos of the last bytes moved, for the relay's idle check
}

var (
	loopsOnce sync.Once
	loops     []*eventLoop
	loopsErr  error
	nextLoop  atomic.Uint64
	// loopTunnels counts the tunnels the loops have taken, for tests and diagnostics.
	loopTunnels atomic.Int64
)

func startLoops() {
	for i := 0; i < loopCount(); i++ {
		l, err := newEventLoop()
		if err != nil {
			loopsErr = err
			return
		}
		loops = append(loops, l)
		go l.run()
	}
}

// loopCount is how many loop goroutines share the tunnels: one per four CPUs. Fewer loops handle
// more events per wake-up, and the wake-ups (the Go scheduler's part) are what a relayed message
// costs beyond its read and write: on 2 CPUs one loop took WebSocket echoes from 0.161 to 0.146 s
// of CPU per 10k (bench/run.sh). SIDPIN_RELAY_LOOPS overrides it, for measurements.
func loopCount() int {
	if n, err := strconv.Atoi(os.Getenv("SIDPIN_RELAY_LOOPS")); err == nil && n > 0 {
		return n
	}
	return max(1, runtime.GOMAXPROCS(0)/4)
}

// newEventLoop makes an epoll instance and registers it, non-blocking, with Go's netpoller: waiting
// for events then parks the goroutine instead of blocking an OS thread in epoll_wait, which would
// make the runtime hand its processor to another thread at every wake.
func newEventLoop() (*eventLoop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, err
	}
	poll, err := os.NewFile(uintptr(epfd), "sidpin-epoll").SyscallConn()
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	return &eventLoop{epfd: epfd, poll: poll, sides: map[int32]*side{}, buf: make([]byte, loopBuffer)}, nil
}

// rawFD returns the socket descriptor of a TCP connection.
func rawFD(c net.Conn) (int, bool) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return 0, false
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return 0, false
	}
	fd := -1
	if raw.Control(func(f uintptr) { fd = int(f) }) != nil || fd < 0 {
		return 0, false
	}
	return fd, true
}

// handOver gives the loop two TCP connections to relay until either ends; done runs afterwards and
// active is stamped whenever bytes move. It returns false (and does nothing) when they are not plain
// TCP or the loop is unavailable.
func handOver(client, node net.Conn, active *atomic.Int64, done func()) bool {
	cfd, ok1 := rawFD(client)
	nfd, ok2 := rawFD(node)
	if !ok1 || !ok2 {
		return false
	}
	loopsOnce.Do(startLoops)
	if loopsErr != nil || len(loops) == 0 {
		return false
	}
	l := loops[nextLoop.Add(1)%uint64(len(loops))]
	loopTunnels.Add(1)
	t := &loopTunnel{done: done, active: active}
	t.a = &side{fd: cfd, conn: client, tunnel: t}
	t.b = &side{fd: nfd, conn: node, tunnel: t}
	t.a.peer, t.b.peer = t.b, t.a
	l.mu.Lock()
	l.sides[int32(cfd)] = t.a
	l.sides[int32(nfd)] = t.b
	l.mu.Unlock()
	for _, s := range []*side{t.a, t.b} {
		// Edge-triggered, registered once: every new readiness is a kernel callback, which also
		// wakes Go's netpoller for the loop; nothing is re-armed per message.
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(s.fd)}
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, s.fd, &ev); err != nil {
			l.mu.Lock()
			delete(l.sides, int32(cfd))
			delete(l.sides, int32(nfd))
			l.mu.Unlock()
			_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, cfd, nil)
			return false
		}
	}
	return true
}

// shutdownConn makes the loop end a tunnel: the socket reads EOF and the loop closes both sides.
func shutdownConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseRead()
		_ = tc.CloseWrite()
	}
}

func (l *eventLoop) run() {
	events := make([]unix.EpollEvent, 256)
	for {
		// Drain every ready event, then park until the epoll descriptor is readable again.
		err := l.poll.Read(func(uintptr) bool {
			for {
				n, err := unix.EpollWait(l.epfd, events, 0)
				if err != nil && !errors.Is(err, unix.EINTR) {
					return true
				}
				if n <= 0 {
					return false
				}
				l.dispatch(events[:n])
				if n < len(events) {
					return false // all ready events handled; new ones will wake the netpoller
				}
			}
		})
		if err != nil {
			return
		}
	}
}

func (l *eventLoop) dispatch(events []unix.EpollEvent) {
	for _, ev := range events {
		l.mu.Lock()
		s := l.sides[ev.Fd]
		l.mu.Unlock()
		if s != nil && !s.tunnel.closed.Load() {
			l.handle(s, ev.Events)
		}
	}
}

func (l *eventLoop) handle(s *side, ev uint32) {
	if ev&unix.EPOLLOUT != 0 && s.pending != nil {
		if !l.flush(s) {
			return
		}
		if s.pending == nil && !s.peer.readEOF {
			l.read(s.peer, true) // the peer was paused while s could not take more: its bytes wait unread
		}
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 && !s.readEOF && s.peer.pending == nil {
		// A hang-up reported with the data means the end is queued behind it: read up to it.
		l.read(s, ev&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0)
	}
}

// read moves bytes from s to its peer until s has no more (edge-triggered: nothing may be left
// behind unannounced), the peer cannot take more (the rest waits in peer.pending, and s is read
// again once the peer drained), or s ended. A short read means s is drained, unless toEnd says that
// an end of stream is queued (or unknown) and must be read too: it brings no new edge.
func (l *eventLoop) read(s *side, toEnd bool) {
	for !s.tunnel.closed.Load() {
		n, err := unix.Read(s.fd, l.buf)
		switch {
		case errors.Is(err, unix.EAGAIN):
			return
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			l.end(s.tunnel)
			return
		case n == 0:
			s.readEOF = true
			_ = unix.Shutdown(s.peer.fd, unix.SHUT_WR) // pass the half-close on
			if s.peer.readEOF {
				l.end(s.tunnel)
				return
			}
			// The other side may still answer (a close frame), but not forever: a peer that
			// vanished without a FIN would keep the tunnel open.
			t := s.tunnel
			time.AfterFunc(closeGrace, func() { shutdownConn(t.a.conn); shutdownConn(t.b.conn) })
			return
		}
		s.tunnel.active.Store(time.Now().UnixNano())
		if !l.write(s.peer, l.buf[:n]) {
			return
		}
		if n < len(l.buf) && !toEnd {
			return // drained: more data will come with a new edge
		}
	}
}

// write sends b to s; what does not fit is kept in s.pending (false: stop reading the peer).
func (l *eventLoop) write(s *side, b []byte) bool {
	for len(b) > 0 {
		w, err := unix.Write(s.fd, b)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN):
			s.pending = append([]byte(nil), b...)
			return false
		case err != nil:
			l.end(s.tunnel)
			return false
		}
		b = b[w:]
	}
	return true
}

// flush writes a side's pending bytes; false when the tunnel ended.
func (l *eventLoop) flush(s *side) bool {
	for len(s.pending) > 0 {
		w, err := unix.Write(s.fd, s.pending)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN):
			return true // the next EPOLLOUT edge continues
		case err != nil:
			l.end(s.tunnel)
			return false
		}
		s.pending = s.pending[w:]
	}
	s.pending = nil
	return true
}

// end closes both sides once and runs the tunnel's done.
func (l *eventLoop) end(t *loopTunnel) {
	if !t.closed.CompareAndSwap(false, true) {
		return
	}
	for _, s := range []*side{t.a, t.b} {
		_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, s.fd, nil)
		l.mu.Lock()
		delete(l.sides, int32(s.fd))
		l.mu.Unlock()
		s.conn.Close()
	}
	if t.done != nil {
		go t.done()
	}
}
