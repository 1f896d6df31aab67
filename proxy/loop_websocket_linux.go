//go:build linux

package proxy

import (
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/sidpin/sidpin/affinity"
	"github.com/sidpin/sidpin/internal/evloop"
	"github.com/sidpin/sidpin/upgrade"
)

// A WebSocket-first session opens in the loop as a polling handshake does (loop_handshake: the
// admission, the node's choice, a second node when the first refuses the connection), on a node
// connection of its own. The node's 101 is held with the stream bytes behind it until the first
// frame is whole: its open packet is pinned before the client sees the sid, as openHooks does on the
// goroutine path. Then the client gets the 101 and the frame in one write, and both sockets become a
// tunnel of the relay, in the same loop, without a goroutine, a duplicated descriptor or a net.Conn.
// A node that refuses the upgrade has its answer passed on, and the connection closes after it.

// wsOpen is the state of a WebSocket-first open after the node's 101.
type wsOpen struct {
	held    []byte // the 101 head, then the stream bytes read behind it
	headLen int    // the 101 head's length in held; 0 until the 101
}

// loopWebSocketOpens counts the WebSocket-first sessions the loops opened (the client was sent the 101).
var loopWebSocketOpens atomic.Int64

// upgrading reports whether x is a WebSocket-first open.
func (x *loopExchange) upgrading() bool { return x.hs != nil && x.hs.ws != nil }

// switchedTo reports whether the node answered x's upgrade with 101: its bytes are the stream now.
func (x *loopExchange) switchedTo() bool { return x.upgrading() && x.hs.ws.headLen > 0 }

// switched takes the node's 101 head and the stream bytes that came with it.
func (x *loopExchange) switched(head, rest []byte) {
	w := x.hs.ws
	w.held = append(make([]byte, 0, len(head)+max(len(rest), 256)), head...)
	w.headLen = len(head)
	x.status = 101
	x.c.closeAfter = true // an answer of sidpin's own from here on (a pin refused) ends the connection
	x.readFirstFrame(rest)
}

// readFirstFrame takes stream bytes until the first frame can be judged (at most a frame header and
// a small frame's payload are needed, so what is held stays bounded), then pins its open packet.
// The node's deadline still runs: no frame in time is the node's failure (504), as no 101 would be.
func (x *loopExchange) readFirstFrame(b []byte) {
	w := x.hs.ws
	w.held = append(w.held, b...)
	f, done, err := upgrade.FirstFrame(w.held[w.headLen:], x.s.p.cfg().Limits.MaxBodyBytes)
	switch {
	case err != nil:
		x.s.p.log.Warn("websocket session refused: the node's first frame is over the frame limit", "pool", x.pool.Name, "node", x.node.Name)
		x.answerOwn(answerBadGateway)
	case !done:
	case !f.IsOpen: // passed on unpinned, as on the goroutine path
		x.adoptTunnel("")
	case !x.s.p.pinsInLoop():
		x.pinAway(f.Info, affinity.TransportWebSocket, func() { x.adoptTunnel(f.Info.SID) })
	default:
		if err := x.s.p.pin(x.pool, x.node, f.Info, x.hs.r, clientString(x.hs.client), affinity.TransportWebSocket); err != nil {
			x.refusePin(f.Info, err)
			return
		}
		x.adoptTunnel(f.Info.SID)
	}
}

// adoptTunnel sends the client the 101 and the stream so far, and gives both sockets to the relay;
// sid is the pinned session ("" when the first frame opened none).
func (x *loopExchange) adoptTunnel(sid string) {
	s, c, nc, w := x.s, x.c, x.nc, x.hs.ws
	p := s.p
	loopWebSocketOpens.Add(1) // before the client can read its 101
	written, errno := evloop.WriteAll(c.fd, w.held)
	if errno != 0 && errno != unix.EAGAIN {
		c.abort() // the client is gone: the node sees its connection close
		return
	}
	x.done = true
	x.endHandshake()
	x.observeMetrics()
	c.x, x.nc, nc.x = nil, nil, nil
	c.detach()
	s.detachNodeConn(nc)
	hooks := p.openedHooks(sid)
	err := p.relay.Adopt(upgrade.Adopted{Loop: s.loop, Target: x.node.Addr, Client: c.fd, Node: nc.fd,
		ToClient: w.held[w.headLen:], Unwritten: w.held[written:], Hooks: hooks, Release: c.release,
		// The client's edges came to the client connection, which did not read during the open; the
		// node was read until a short read, unless its reads were paused while the pin was written.
		ClientPending: c.unread || c.gone, NodePending: !x.drained || x.paused})
	if err == nil {
		return
	}
	// The relay stopped (shutdown): the session ends here.
	s.loop.Remove(c.fd)
	s.loop.Remove(nc.fd)
	c.release()
	if hooks.OnClose != nil {
		go hooks.OnClose(upgrade.Ended{})
	}
}

// openedHooks follow a tunnel whose session is pinned already: kicks reach it, its pin is kept alive,
// and its end ends the session.
func (p *Proxy) openedHooks(sid string) upgrade.Hooks {
	if sid == "" {
		return upgrade.Hooks{}
	}
	return upgrade.Hooks{
		OnStart: func(end func()) {
			p.tunnels.add(sid, end)
			p.sessions.Get(sid).TunnelOpen()
		},
		OnClose: func(e upgrade.Ended) {
			p.tunnels.remove(sid)
			p.tunnelEnded(sid, e)
		},
		Touch: func() { p.store.Touch(sid) },
	}
}
