package upgrade

import (
	"errors"

	"github.com/sidpin/sidpin/internal/evloop"
)

// Adopted is a WebSocket that a caller upgraded in an event loop itself (the proxy's loop front
// opens WebSocket-first sessions there): the node answered 101, its first frame went to the client,
// and both sockets are registered in Loop. Adopt makes it a tunnel of the relay, relayed by that
// loop from where the caller left it: no goroutine, no duplicated descriptor, no net.Conn.
type Adopted struct {
	Loop         *evloop.Loop
	Target       string // the node's host:port, which CloseTarget matches
	Client, Node int    // the two sockets, registered in Loop; the tunnel owns them from Adopt on
	// ToClient are the stream bytes after the 101 that the client was sent (its first frame, and
	// whatever came behind it); Unwritten is the tail of what it was sent, the 101 included, that its
	// socket has not taken yet.
	ToClient, Unwritten []byte
	Hooks               Hooks  // OnOpen and OnUpgrade are not used: the caller watched the first frame
	Release             func() // ends the client connection's count when the tunnel ends (nil: none)
	// ClientPending and NodePending say that bytes (or an end of stream) may wait unread in that
	// socket, their edge already spent: the kernel is asked to report them anew (an epoll_ctl).
	// Otherwise the socket was read dry and its registration (In, Out, RdHup, Edge) is kept as it is.
	ClientPending, NodePending bool
}

// ErrStopped is Adopt's answer once the relay is stopped (Close, Shutdown).
var ErrStopped = errors.New("upgrade: the relay is stopped")

// Adopt takes the WebSocket a; the loop's lock must be held. On an error the sockets are still the
// caller's to close (with the loop's Remove), and OnClose is not run.
func (r *Relay) Adopt(a Adopted) error {
	t := &tunnel{relay: r, target: a.Target, hooks: a.Hooks, released: a.Release}
	t.active.Store(a.Loop.Now())
	lt := &loopTunnel{loop: a.Loop, done: t.finish, inline: r.options().CloseInLoop, active: &t.active}
	lt.a = &side{fd: a.Client, tunnel: lt, sent: &r.bytes.toClient}
	lt.b = &side{fd: a.Node, tunnel: lt, sent: &r.bytes.toNode}
	lt.a.peer, lt.b.peer = lt.b, lt.a
	lt.a.out.advance(a.ToClient)
	if len(a.Unwritten) > 0 {
		lt.a.pending = append([]byte(nil), a.Unwritten...)
	}
	// The loop owns the tunnel before anyone can find it (Shutdown, CloseTarget): they end it
	// through the loop, which does not run its events before this returns (its lock is held).
	t.loop = lt
	if err := lt.rebind(a.ClientPending, a.NodePending); err != nil {
		return err
	}
	if !r.track(t, true) {
		return ErrStopped
	}
	r.bytes.toClient.Add(uint64(len(a.ToClient)))
	lt.a.own += uint64(len(a.ToClient))
	loopTunnels.Add(1)
	if t.hooks.OnStart != nil {
		t.hooks.OnStart(func() { t.goAway(false) })
	}
	return nil
}

// rebind gives both sockets to the tunnel's sides, registered as add registers them: what came while
// the caller did not read a socket is reported anew; a socket read dry keeps its registration.
func (t *loopTunnel) rebind(clientPending, nodePending bool) error {
	for _, s := range []struct {
		side    *side
		pending bool
	}{{t.a, clientPending}, {t.b, nodePending}} {
		if !s.pending {
			t.loop.Swap(s.side.fd, s.side)
			continue
		}
		if err := t.loop.Rebind(s.side.fd, s.side, evloop.In|evloop.Out|evloop.RdHup|evloop.Edge); err != nil {
			return err
		}
	}
	return nil
}

// Loops reports whether established tunnels go to the event loops (Options.NoEventLoop unset):
// only then may a caller adopt one.
func (r *Relay) Loops() bool { return !r.options().NoEventLoop }
