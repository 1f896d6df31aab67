package upgrade

import (
	"net"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sidpin/sidpin/internal/evloop"
)

// The event loop relays established tunnels without a goroutine or a buffer per connection: both
// sockets of a tunnel are watched by epoll, and one loop goroutine moves whatever becomes readable.
// An idle WebSocket then costs only its sockets and a small struct (measured in bench/: see README).
//
// Ownership: handOver duplicates the two descriptors and closes the net.Conns, which takes them out
// of Go's netpoller (it would otherwise be woken by every message as well). From then on only the
// loop reads, writes and closes the duplicates, always holding its mutex: anyone else who ends a
// tunnel takes the mutex too, so a descriptor is never used after the loop closed it.

// maxDropReads bounds the reads of one event while a tunnel going away drops what its peers send:
// with nowhere to write, nothing else would stop a peer that floods it.
const maxDropReads = 16

// side is one socket of a tunnel as the loop sees it.
type side struct {
	fd      int
	peer    *side
	tunnel  *loopTunnel
	pending []byte         // bytes read from peer that this socket could not take yet
	out     frameCursor    // frames of the bytes sent to this socket (written or pending)
	sent    *atomic.Uint64 // the relay's count of bytes towards this socket
	own     uint64         // this tunnel's count of bytes towards this socket
	readEOF bool           // nothing more will be read from this socket
	shut    bool           // its write side is shut: nothing more may be written
	last    bool           // the tunnel is going away: shut the write side once pending is written
}

// loopTunnel is a tunnel handed to a loop; done runs once when both sides are closed. Its fields
// are guarded by the loop's lock.
type loopTunnel struct {
	loop    *evloop.Loop
	a, b    *side // the client's and the node's
	closed  bool
	ended   atomic.Bool // closed, readable without the lock: done need not take it to end the tunnel again
	closing bool        // goAway ran: what the peers send is dropped
	done    func()
	inline  bool          // done may run in the loop (Options.CloseInLoop): it takes no loop lock and never waits
	active  *atomic.Int64 // unix nanos of the last bytes moved, for the relay's idle check
	grace   *evloop.Timer // ends the tunnel when its other stream does not end in time
	first   *side         // the side whose stream ended (or failed) first
}

// loopTunnels counts the tunnels the loops have taken, for tests and diagnostics.
var loopTunnels atomic.Int64

// handOver gives the loop two TCP connections to relay until either ends, with the frame positions
// of the streams towards each; done runs afterwards and active is stamped whenever bytes move. On
// success the connections are closed (the loop relays duplicates of their descriptors); it returns
// nil, and leaves them alone, when they are not plain TCP or no loop is available.
func handOver(client, node net.Conn, active *atomic.Int64, done func(), inline bool, toClient, toNode frameCursor, bytes *relayedBytes) *loopTunnel {
	l, err := evloop.Next()
	if err != nil {
		return nil
	}
	cfd, ok := evloop.DupConn(client)
	if !ok {
		return nil
	}
	nfd, ok := evloop.DupConn(node)
	if !ok {
		unix.Close(cfd)
		return nil
	}
	t := &loopTunnel{loop: l, done: done, inline: inline, active: active}
	t.a = &side{fd: cfd, tunnel: t, out: toClient, sent: &bytes.toClient}
	t.b = &side{fd: nfd, tunnel: t, out: toNode, sent: &bytes.toNode}
	t.a.peer, t.b.peer = t.b, t.a
	added := false
	l.Locked(func() { added = t.add() })
	if !added {
		unix.Close(cfd)
		unix.Close(nfd)
		return nil
	}
	loopTunnels.Add(1)
	client.Close()
	node.Close()
	return t
}

// add registers both sides of t; the loop's lock is held. Edge-triggered, registered once: every new
// readiness is a kernel callback, which also wakes Go's netpoller for the loop; nothing is re-armed
// per message.
func (t *loopTunnel) add() bool {
	if err := t.loop.Add(t.a.fd, t.a, evloop.In|evloop.Out|evloop.RdHup|evloop.Edge); err != nil {
		return false
	}
	if err := t.loop.Add(t.b.fd, t.b, evloop.In|evloop.Out|evloop.RdHup|evloop.Edge); err != nil {
		t.loop.Forget(t.a.fd)
		return false
	}
	return true
}

// Event is the loop's call for one of the side's events.
func (s *side) Event(ev uint32) { s.tunnel.handle(s, ev) }

func (t *loopTunnel) handle(s *side, ev uint32) {
	if ev&unix.EPOLLOUT != 0 && s.pending != nil {
		if !t.flush(s) {
			return
		}
		if s.pending == nil && !s.peer.readEOF {
			t.read(s.peer, true) // the peer was paused while s could not take more: its bytes wait unread
		}
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 && !s.readEOF &&
		(s.peer.pending == nil || t.closing) {
		// A hang-up reported with the data means the end is queued behind it: read up to it.
		t.read(s, ev&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0)
	}
}

// read moves bytes from s to its peer until s has no more (edge-triggered: nothing may be left
// behind unannounced), the peer cannot take more (the rest waits in peer.pending, and s is read
// again once the peer drained), or s ended. A short read means s is drained, unless toEnd says that
// an end of stream is queued (or unknown) and must be read too: it brings no new edge. A tunnel
// going away drops what it reads.
func (t *loopTunnel) read(s *side, toEnd bool) {
	buf := t.loop.Scratch()
	for i := 0; !t.closed && !s.readEOF; i++ {
		n, errno := evloop.Read(s.fd, buf)
		switch {
		case errno == unix.EAGAIN:
			return
		case errno != 0:
			t.gone(s)
			t.end()
			return
		case n == 0:
			t.readEnd(s)
			return
		}
		t.active.Store(t.loop.Now())
		if t.closing {
			if i >= maxDropReads {
				return // the deadline of goAway ends the tunnel
			}
			continue
		}
		s.peer.out.advance(buf[:n])
		if s.peer.out.closed {
			t.gone(s) // s sent a close frame: it ended the WebSocket, unless the other one did first
		}
		s.peer.sent.Add(uint64(n))
		s.peer.own += uint64(n)
		if !t.write(s.peer, buf[:n]) {
			return
		}
		if n < len(buf) && !toEnd {
			return // drained: more data will come with a new edge
		}
	}
}

// readEnd handles the end of s's stream: the tunnel ends when both streams ended; otherwise the
// half-close is passed on, and the other stream has closeGrace to end too.
func (t *loopTunnel) readEnd(s *side) {
	s.readEOF = true
	t.gone(s)
	if s.peer.readEOF {
		t.end()
		return
	}
	if t.closing {
		return // goAway shuts the write sides after its close frames, and ends the tunnel in time
	}
	shutWrite(s.peer) // s.peer has nothing pending: s is only read when it has not
	// The other side may still answer (a close frame), but not forever: a peer that vanished
	// without a FIN would keep the tunnel open. The loop's own timer: no goroutine, and stopped
	// when the tunnel ends first, as it mostly does.
	t.endAfter(closeGrace)
}

// endAfter ends the tunnel after d unless it ended before; the loop's lock is held.
func (t *loopTunnel) endAfter(d time.Duration) {
	if t.grace == nil {
		t.grace = t.loop.After(d, t.end)
	}
}

// write sends b to s; what does not fit is kept in s.pending (false: stop reading the peer).
func (t *loopTunnel) write(s *side, b []byte) bool {
	w, errno := evloop.WriteAll(s.fd, b)
	switch errno {
	case 0:
		return true
	case unix.EAGAIN:
		s.pending = append([]byte(nil), b[w:]...)
	default:
		t.gone(s)
		t.end()
	}
	return false
}

// gone notes that s's peer went away (its stream ended, or a read or write failed), unless the
// other one went first or sidpin is ending the tunnel.
func (t *loopTunnel) gone(s *side) {
	if t.first == nil && !t.closing {
		t.first = s
	}
}

// summary is what the loop relayed each way and which side ended first; read once it ended.
func (t *loopTunnel) summary() (toClient, toNode uint64, first whichEnd) {
	switch t.first {
	case t.a:
		first = endClient
	case t.b:
		first = endNode
	}
	return t.a.own, t.b.own, first
}

// flush writes a side's pending bytes, and shuts its write side after them when the tunnel is going
// away; false when the tunnel ended.
func (t *loopTunnel) flush(s *side) bool {
	w, errno := evloop.WriteAll(s.fd, s.pending)
	switch errno {
	case 0:
	case unix.EAGAIN:
		s.pending = s.pending[w:]
		return true // the next EPOLLOUT edge continues
	default:
		t.gone(s)
		t.end()
		return false
	}
	s.pending = nil
	if s.last {
		shutWrite(s)
	}
	return true
}

func shutWrite(s *side) {
	if !s.shut {
		s.shut = true
		evloop.ShutdownWrite(s.fd)
	}
}

// end closes both sides once and runs the tunnel's done; the loop's lock is held.
func (t *loopTunnel) end() {
	if t.closed {
		return
	}
	t.closed = true
	t.ended.Store(true)
	t.loop.Stop(t.grace)
	t.grace = nil
	t.loop.Remove(t.a.fd)
	t.loop.Remove(t.b.fd)
	switch {
	case t.done == nil:
	case t.inline:
		t.done()
	default:
		go t.done()
	}
}

// endNow ends the tunnel from outside the loop. After the loop ended it (the common case: done runs
// then), it returns without the loop's lock, which a busy loop holds most of the time.
func (t *loopTunnel) endNow() {
	if !t.ended.Load() {
		t.loop.Locked(t.end)
	}
}

// goAway puts clientLast and nodeLast (nil: none) in the streams towards the client and the node,
// each only where its stream is between two frames, shuts each write side once everything before it
// is written, and drops what the peers still send until both ended their streams; the tunnel ends
// then, or after wait.
func (t *loopTunnel) goAway(clientLast, nodeLast []byte, wait time.Duration) {
	t.loop.Locked(func() {
		if t.closed || t.closing {
			return
		}
		t.closing = true
		t.sendLast(t.a, clientLast)
		t.sendLast(t.b, nodeLast)
		if !t.closed {
			t.loop.Stop(t.grace) // the going-away wait replaces a half-close's grace
			t.grace = t.loop.After(wait, t.end)
		}
	})
}

// sendLast queues last behind the bytes sent to s, when they end with a whole frame, and has the
// write side shut once they are written.
func (t *loopTunnel) sendLast(s *side, last []byte) {
	if s.shut || s.tunnel.closed {
		return
	}
	if last != nil && s.out.atBoundary() {
		s.pending = append(s.pending, last...)
	}
	s.last = true
	t.flush(s)
}
