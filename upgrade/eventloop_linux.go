package upgrade

import (
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The event loop relays established tunnels without a goroutine or a buffer per connection: both
// sockets of a tunnel are watched by epoll, and one loop goroutine moves whatever becomes readable.
// An idle WebSocket then costs only its sockets and a small struct (measured in bench/: see README).
//
// Ownership: handOver duplicates the two descriptors and closes the net.Conns, which takes them out
// of Go's netpoller (it would otherwise be woken by every message as well). From then on only the
// loop reads, writes and closes the duplicates, always holding its mutex: anyone else who ends a
// tunnel takes the mutex too, so a descriptor is never used after the loop closed it.

// loopBuffer is the one copy buffer of a loop goroutine.
const loopBuffer = 64 << 10

// maxDropReads bounds the reads of one event while a tunnel going away drops what its peers send:
// with nowhere to write, nothing else would stop a peer that floods it.
const maxDropReads = 16

type eventLoop struct {
	epfd int
	poll syscall.RawConn // epfd in Go's own netpoller: the loop parks like any goroutine
	// mu is held by the loop while it takes and handles a batch of events, and by whoever else
	// touches its tunnels: one lock per batch, not per event.
	mu    sync.Mutex
	sides []*side // by descriptor: a slice index, cheaper than a map per event
	buf   []byte
	now   int64 // unix nanos of the batch being handled: one clock read stamps every tunnel it moves
}

// side is one socket of a tunnel as the loop sees it.
type side struct {
	fd      int
	peer    *side
	tunnel  *loopTunnel
	pending []byte         // bytes read from peer that this socket could not take yet
	out     frameCursor    // frames of the bytes sent to this socket (written or pending)
	sent    *atomic.Uint64 // the relay's count of bytes towards this socket
	readEOF bool           // nothing more will be read from this socket
	shut    bool           // its write side is shut: nothing more may be written
	last    bool           // the tunnel is going away: shut the write side once pending is written
}

// loopTunnel is a tunnel handed to a loop; done runs once when both sides are closed. Its fields
// are guarded by loop.mu.
type loopTunnel struct {
	loop    *eventLoop
	a, b    *side // the client's and the node's
	closed  bool
	closing bool // goAway ran: what the peers send is dropped
	done    func()
	active  *atomic.Int64 // unix nanos of the last bytes moved, for the relay's idle check
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
	return &eventLoop{epfd: epfd, poll: poll, buf: make([]byte, loopBuffer)}, nil
}

// dupFD returns a duplicate of a TCP connection's descriptor (close-on-exec, and non-blocking like
// the original: the flag belongs to the shared open file).
func dupFD(c net.Conn) (int, bool) {
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

// handOver gives the loop two TCP connections to relay until either ends, with the frame positions
// of the streams towards each; done runs afterwards and active is stamped whenever bytes move. On
// success the connections are closed (the loop relays duplicates of their descriptors); it returns
// nil, and leaves them alone, when they are not plain TCP or the loop is unavailable.
func handOver(client, node net.Conn, active *atomic.Int64, done func(), toClient, toNode frameCursor, bytes *relayedBytes) *loopTunnel {
	loopsOnce.Do(startLoops)
	if loopsErr != nil || len(loops) == 0 {
		return nil
	}
	cfd, ok := dupFD(client)
	if !ok {
		return nil
	}
	nfd, ok := dupFD(node)
	if !ok {
		unix.Close(cfd)
		return nil
	}
	l := loops[nextLoop.Add(1)%uint64(len(loops))]
	t := &loopTunnel{loop: l, done: done, active: active}
	t.a = &side{fd: cfd, tunnel: t, out: toClient, sent: &bytes.toClient}
	t.b = &side{fd: nfd, tunnel: t, out: toNode, sent: &bytes.toNode}
	t.a.peer, t.b.peer = t.b, t.a
	if !l.add(t) {
		unix.Close(cfd)
		unix.Close(nfd)
		return nil
	}
	loopTunnels.Add(1)
	client.Close()
	node.Close()
	return t
}

// add registers both sides of t.
func (l *eventLoop) add(t *loopTunnel) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range []*side{t.a, t.b} {
		if n := s.fd + 1; n > len(l.sides) {
			l.sides = append(l.sides, make([]*side, n-len(l.sides))...)
		}
		l.sides[s.fd] = s
		// Edge-triggered, registered once: every new readiness is a kernel callback, which also
		// wakes Go's netpoller for the loop; nothing is re-armed per message.
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(s.fd)}
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, s.fd, &ev); err != nil {
			for _, s := range []*side{t.a, t.b} {
				_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, s.fd, nil)
				l.sides[s.fd] = nil
			}
			return false
		}
	}
	return true
}

func (l *eventLoop) run() {
	events := make([]unix.EpollEvent, 256)
	failed := false
	// Drain every ready event, then park until the epoll descriptor is readable again.
	drain := func(uintptr) bool {
		for {
			l.mu.Lock()
			n, errno := rawEpollWait(l.epfd, events)
			if n > 0 {
				l.dispatch(events[:n])
			}
			l.mu.Unlock()
			switch {
			case errno == unix.EINTR:
			case errno != 0:
				failed = true
				return true
			case n < len(events):
				return false // all ready events handled; new ones will wake the netpoller
			}
		}
	}
	for !failed && l.poll.Read(drain) == nil {
	}
}

// dispatch handles a batch of events; l.mu is held.
func (l *eventLoop) dispatch(events []unix.EpollEvent) {
	l.now = time.Now().UnixNano()
	for _, ev := range events {
		if fd := int(ev.Fd); fd < len(l.sides) {
			if s := l.sides[fd]; s != nil {
				l.handle(s, ev.Events)
			}
		}
	}
}

func (l *eventLoop) handle(s *side, ev uint32) {
	t := s.tunnel
	if ev&unix.EPOLLOUT != 0 && s.pending != nil {
		if !l.flush(s) {
			return
		}
		if s.pending == nil && !s.peer.readEOF {
			l.read(s.peer, true) // the peer was paused while s could not take more: its bytes wait unread
		}
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 && !s.readEOF &&
		(s.peer.pending == nil || t.closing) {
		// A hang-up reported with the data means the end is queued behind it: read up to it.
		l.read(s, ev&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0)
	}
}

// read moves bytes from s to its peer until s has no more (edge-triggered: nothing may be left
// behind unannounced), the peer cannot take more (the rest waits in peer.pending, and s is read
// again once the peer drained), or s ended. A short read means s is drained, unless toEnd says that
// an end of stream is queued (or unknown) and must be read too: it brings no new edge. A tunnel
// going away drops what it reads.
func (l *eventLoop) read(s *side, toEnd bool) {
	t := s.tunnel
	for i := 0; !t.closed && !s.readEOF; i++ {
		n, errno := rawRead(s.fd, l.buf)
		switch {
		case errno == unix.EAGAIN:
			return
		case errno == unix.EINTR:
			continue
		case errno != 0:
			l.end(t)
			return
		case n == 0:
			l.readEnd(s)
			return
		}
		t.active.Store(l.now)
		if t.closing {
			if i >= maxDropReads {
				return // the deadline of goAway ends the tunnel
			}
			continue
		}
		s.peer.out.advance(l.buf[:n])
		s.peer.sent.Add(uint64(n))
		if !l.write(s.peer, l.buf[:n]) {
			return
		}
		if n < len(l.buf) && !toEnd {
			return // drained: more data will come with a new edge
		}
	}
}

// readEnd handles the end of s's stream: the tunnel ends when both streams ended; otherwise the
// half-close is passed on, and the other stream has closeGrace to end too.
func (l *eventLoop) readEnd(s *side) {
	t := s.tunnel
	s.readEOF = true
	if s.peer.readEOF {
		l.end(t)
		return
	}
	if t.closing {
		return // goAway shuts the write sides after its close frames, and ends the tunnel in time
	}
	l.shutWrite(s.peer) // s.peer has nothing pending: s is only read when it has not
	// The other side may still answer (a close frame), but not forever: a peer that vanished
	// without a FIN would keep the tunnel open.
	time.AfterFunc(closeGrace, t.endNow)
}

// write sends b to s; what does not fit is kept in s.pending (false: stop reading the peer).
func (l *eventLoop) write(s *side, b []byte) bool {
	for len(b) > 0 {
		w, errno := rawWrite(s.fd, b)
		switch errno {
		case 0:
			b = b[w:]
		case unix.EINTR:
		case unix.EAGAIN:
			s.pending = append([]byte(nil), b...)
			return false
		default:
			l.end(s.tunnel)
			return false
		}
	}
	return true
}

// flush writes a side's pending bytes, and shuts its write side after them when the tunnel is going
// away; false when the tunnel ended.
func (l *eventLoop) flush(s *side) bool {
	for len(s.pending) > 0 {
		w, errno := rawWrite(s.fd, s.pending)
		switch errno {
		case 0:
			s.pending = s.pending[w:]
		case unix.EINTR:
		case unix.EAGAIN:
			return true // the next EPOLLOUT edge continues
		default:
			l.end(s.tunnel)
			return false
		}
	}
	s.pending = nil
	if s.last {
		l.shutWrite(s)
	}
	return true
}

func (l *eventLoop) shutWrite(s *side) {
	if !s.shut {
		s.shut = true
		_ = unix.Shutdown(s.fd, unix.SHUT_WR)
	}
}

// end closes both sides once and runs the tunnel's done; l.mu is held.
func (l *eventLoop) end(t *loopTunnel) {
	if t.closed {
		return
	}
	t.closed = true
	for _, s := range []*side{t.a, t.b} {
		_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, s.fd, nil)
		l.sides[s.fd] = nil
		_ = unix.Close(s.fd)
	}
	if t.done != nil {
		go t.done()
	}
}

// endNow ends the tunnel from outside the loop.
func (t *loopTunnel) endNow() {
	t.loop.mu.Lock()
	defer t.loop.mu.Unlock()
	t.loop.end(t)
}

// goAway puts clientLast and nodeLast (nil: none) in the streams towards the client and the node,
// each only where its stream is between two frames, shuts each write side once everything before it
// is written, and drops what the peers still send until both ended their streams; the tunnel ends
// then, or after wait.
func (t *loopTunnel) goAway(clientLast, nodeLast []byte, wait time.Duration) {
	l := t.loop
	l.mu.Lock()
	defer l.mu.Unlock()
	if t.closed || t.closing {
		return
	}
	t.closing = true
	l.sendLast(t.a, clientLast)
	l.sendLast(t.b, nodeLast)
	time.AfterFunc(wait, t.endNow)
}

// sendLast queues last behind the bytes sent to s, when they end with a whole frame, and has the
// write side shut once they are written.
func (l *eventLoop) sendLast(s *side, last []byte) {
	if s.shut || s.tunnel.closed {
		return
	}
	if last != nil && s.out.atBoundary() {
		s.pending = append(s.pending, last...)
	}
	s.last = true
	l.flush(s)
}

// rawRead and rawWrite call read(2) and write(2) directly, without telling the Go scheduler
// (entersyscall and exitsyscall) and without the runtime's error wrapping: the sockets are
// non-blocking, so the calls never wait, and that bookkeeping was a third of the loop's own
// instructions per relayed message (callgrind).
func rawRead(fd int, b []byte) (int, unix.Errno) {
	return rawResult(unix.RawSyscallNoError(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b))))
}

func rawWrite(fd int, b []byte) (int, unix.Errno) {
	return rawResult(unix.RawSyscallNoError(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b))))
}

// rawResult decodes a system call's result: -4095..-1 is a negated errno.
func rawResult(r, _ uintptr) (int, unix.Errno) {
	if r > ^uintptr(4095) {
		return -1, unix.Errno(-r)
	}
	return int(r), 0
}

// rawEpollWait polls the same way (timeout 0: it never waits, the netpoller does). epoll_pwait with
// no signal mask is epoll_wait, and exists on every architecture.
func rawEpollWait(epfd int, events []unix.EpollEvent) (int, unix.Errno) {
	n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(unsafe.SliceData(events))),
		uintptr(len(events)), 0, 0, 0)
	return int(n), errno
}
