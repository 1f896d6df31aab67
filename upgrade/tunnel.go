package upgrade

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sidpin/sidpin/engineio"
	"github.com/sidpin/sidpin/internal/hijacked"
)

// closeGrace is how long the second direction may keep flowing after the first one ended (a close
// frame answering a close frame).
const closeGrace = 2 * time.Second

// tunnel is one relayed WebSocket: client <-> node.
type tunnel struct {
	relay  *Relay
	target string        // the node's address, for CloseTarget
	client net.Conn      // fasthttp's hijacked conn: reads may go through its buffered reader
	node   net.Conn      // the node, written directly
	nodeR  *bufio.Reader // the node, read through the reader that parsed the 101
	hooks  Hooks

	// Until the event loop takes the tunnel, every write goes through these, which follow the frames
	// so that goAway can end each direction with a close frame.
	toClient, toNode flow

	mu    sync.Mutex  // orders goAway with the hand-over to the event loop
	going bool        // goAway ran: the tunnel is not handed over any more
	loop  *loopTunnel // set once the event loop owns both sockets
	// probing: a probe waits for the client's "5". A shutdown then waits for it too (awayAfterProbe):
	// engine.io-client freezes a session whose probe closes between "3probe" and "5".
	probing        bool
	awayAfterProbe bool

	nodeEOF    atomic.Bool  // the node ended its stream (not merely a stopped copy)
	firstEnd   atomic.Int32 // the whichEnd whose stream ended (or failed) first, while goroutines copy
	idleClosed atomic.Bool  // the relay closed it for moving nothing (Options.IdleTimeout)
	active     atomic.Int64 // unix nanos of the last bytes moved either way, for the idle timeout
	finishing  sync.Once
	// released ends what the client connection's wrapper counts (a per-client connection cap) once
	// the event loop has taken the socket and closed the wrapper's connection under it.
	released func()
}

// handOffer is a client connection wrapper that counts the connection until it ends (see
// clientlimits.Conn): HandOff moves that end from its Close to the returned function.
type handOffer interface{ HandOff() (release func()) }

func newTunnel(r *Relay, target string, client, node net.Conn, nodeR *bufio.Reader, hooks Hooks) *tunnel {
	t := &tunnel{relay: r, target: target, client: client, node: node, nodeR: nodeR, hooks: hooks,
		probing: hooks.OnUpgrade != nil}
	t.toClient.dst = t.clientRaw() // writes skip fasthttp's wrapper; only its reads are buffered
	t.toNode.dst = node
	t.toClient.sent, t.toNode.sent = &r.bytes.toClient, &r.bytes.toNode
	t.toNode.open = true // the node's 101 is behind: its stream starts with the tunnel
	t.toClient.closedBy = func() { t.endedFirst(false, endClient, endNode) }
	t.toNode.closedBy = func() { t.endedFirst(false, endNode, endClient) }
	return t
}

// run forwards the 101, watches the first frames the hooks ask for, then relays: by the event loop
// when it can take the sockets, else by two copying goroutines.
func (t *tunnel) run(head []byte) {
	t.active.Store(time.Now().UnixNano())
	if !t.relay.track(t, true) || !t.start(head) {
		t.finish()
		return
	}
	if t.hooks.OnStart != nil {
		t.hooks.OnStart(func() { t.goAway(false) })
	}
	if t.hooks.OnUpgrade != nil {
		t.runProbe()
		return
	}
	if t.handOver() {
		return
	}
	t.copyBothWays()
	t.finish()
}

// start writes the 101 and, for a WebSocket-first session, the node's open frame after OnOpen.
func (t *tunnel) start(head []byte) bool {
	if err := t.toClient.begin(head); err != nil {
		return false
	}
	if t.hooks.OnOpen != nil && !t.watchOpen() {
		return false
	}
	flushed := t.flushNodeBuffer()
	putNodeReader(t.nodeR) // flushed: the rest is read from the raw connection
	t.nodeR = nil
	return flushed
}

// runProbe relays a probe: node->client flows while the client's frames are watched for "5"; then
// the tunnel goes to the event loop (or keeps copying).
func (t *tunnel) runProbe() {
	stopped := make(chan struct{})
	go func() { t.copyNodeToClient(); close(stopped) }()
	upgraded := t.watchUpgrade()
	away := t.probeDecided()
	if !upgraded {
		t.endFlow(&t.toNode)
		t.waitOther(stopped)
		t.finish()
		return
	}
	if away { // the relay shut down while the probe waited: now that "5" passed, go away with 1001
		t.goAway(true)
		t.copyClientToNode()
		t.waitOther(stopped)
		t.finish()
		return
	}
	// Stop the node->client copy at a clean point (a read deadline only interrupts the wait for
	// data), then hand both sockets over.
	if !t.relay.options().NoEventLoop && t.loopable() {
		_ = t.node.SetReadDeadline(time.Now())
		<-stopped
		_ = t.node.SetReadDeadline(time.Time{})
		if t.nodeStillOpen() && t.handOver() {
			return
		}
		stopped = make(chan struct{})
		go func() { t.copyNodeToClient(); close(stopped) }()
	}
	t.copyClientToNode()
	t.waitOther(stopped)
	t.finish()
}

// probeDecided ends the probe's wait and says whether a shutdown came meanwhile.
func (t *tunnel) probeDecided() (away bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.probing = false
	return t.awayAfterProbe
}

// shutDown ends the tunnel as the relay shuts down; a probe still waiting for its "5" goes on for up
// to probeShutdownWait: it goes away once the "5" passed, or when that wait ends without it.
func (t *tunnel) shutDown() {
	t.mu.Lock()
	if t.probing {
		t.awayAfterProbe = true
		t.mu.Unlock()
		time.AfterFunc(probeShutdownWait, func() {
			if t.isProbing() {
				t.goAway(true)
			}
		})
		return
	}
	t.mu.Unlock()
	t.goAway(true)
}

// isProbing reports whether the tunnel is a probe still waiting for its "5".
func (t *tunnel) isProbing() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.probing
}

func (t *tunnel) waitOther(done <-chan struct{}) {
	select { // let the other direction finish a close handshake, then cut it
	case <-done:
	case <-time.After(closeGrace):
	}
}

// nodeStillOpen is false when the node->client copy ended because the node closed, not because it
// was stopped.
func (t *tunnel) nodeStillOpen() bool { return !t.nodeEOF.Load() }

// loopable reports whether the event loop can take this tunnel's sockets.
func (t *tunnel) loopable() bool {
	_, isTCP := t.clientTCP().(*net.TCPConn)
	_, nodeTCP := t.node.(*net.TCPConn)
	return isTCP && nodeTCP && hijacked.ReadsRaw(t.client)
}

// handOver gives the tunnel to the event loop, with the frame positions of both directions; false
// when it cannot take it or the tunnel is going away (goAway ended the flows: goroutines drain them).
func (t *tunnel) handOver() bool {
	if t.relay.options().NoEventLoop || !t.loopable() {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.going {
		return false
	}
	if h, ok := t.clientRaw().(handOffer); ok && t.released == nil {
		t.released = h.HandOff() // the loop closes the socket's Go side now; the client stays
	}
	t.loop = handOver(t.clientTCP(), t.node, &t.active, t.finish, t.relay.options().CloseInLoop, t.toClient.cursor(), t.toNode.cursor(), &t.relay.bytes)
	return t.loop != nil
}

// clientRaw is the client connection under fasthttp's hijack wrapper (maybe a counting wrapper).
func (t *tunnel) clientRaw() net.Conn {
	return hijacked.Raw(t.client)
}

// clientTCP is the client's TCP connection itself, under every wrapper: what the event loop takes.
func (t *tunnel) clientTCP() net.Conn {
	c := t.clientRaw()
	if nc, ok := c.(interface{ NetConn() net.Conn }); ok {
		return nc.NetConn()
	}
	return c
}

// copyBothWays relays with two goroutines (TLS clients, or when the event loop cannot be used).
func (t *tunnel) copyBothWays() {
	done := make(chan struct{})
	go func() { t.copyNodeToClient(); close(done) }()
	t.copyClientToNode()
	t.waitOther(done)
}

// finish ends the tunnel once: sockets closed, OnClose run, tracking dropped.
func (t *tunnel) finish() {
	t.finishing.Do(func() {
		t.close()
		if t.released != nil {
			t.released()
		}
		if t.hooks.OnClose != nil {
			t.hooks.OnClose(t.summary())
		}
		t.relay.track(t, false)
	})
}

// watchOpen reads the node's first frame, hands its open packet to OnOpen (the pin is stored before
// the client sees the sid), then forwards the frame. A node that sends no frame within the handshake
// timeout is reported to OnNodeFailed.
func (t *tunnel) watchOpen() bool {
	b := frameBufs.Get().(*frameBuf)
	defer frameBufs.Put(b)
	_ = t.node.SetReadDeadline(time.Now().Add(t.relay.options().HandshakeTimeout))
	f, err := readFrame(t.nodeR, b, t.relay.options().MaxFrame)
	_ = t.node.SetReadDeadline(time.Time{})
	if err != nil {
		if t.hooks.OnNodeFailed != nil && !errors.Is(err, errFrameTooLarge) {
			t.hooks.OnNodeFailed(fmt.Errorf("%w: no open frame: %w", ErrNoAnswer, err))
		}
		return false
	}
	if f.opcode == opText && f.fin && !f.rsv1 && len(f.payload) > 1 && f.payload[0] == '0' {
		if info, err := engineio.ParseOpen(f.payload[1:]); err == nil {
			if err := t.hooks.OnOpen(info); err != nil {
				t.relay.options().Logger.Warn("websocket session not pinned; closing it", "err", err)
				return false
			}
		}
	}
	return f.forward(t.nodeR, t.toClient.write, b) == nil
}

// flushNodeBuffer writes what the node reader holds already, so the rest can be copied from the raw
// connection.
func (t *tunnel) flushNodeBuffer() bool {
	n := t.nodeR.Buffered()
	if n == 0 {
		return true
	}
	b, _ := t.nodeR.Peek(n)
	err := t.toClient.write(b)
	_, _ = t.nodeR.Discard(n)
	return err == nil
}

// copyNodeToClient moves the node's bytes to the client. Writes to the raw client connection are
// safe: only reads go through fasthttp's buffered reader. It records whether the node ended the
// stream (or the copy failed), as opposed to the read deadline a probe uses to stop it.
func (t *tunnel) copyNodeToClient() {
	err := t.pump(t.node, &t.toClient)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return // stopped on purpose (the probe hands its sockets to the event loop)
	}
	t.endedFirst(err == nil, endClient, endNode)
	t.nodeEOF.Store(true)
	t.endFlow(&t.toClient)
	// The client may still answer (a close frame), but not forever: one that vanished without a FIN
	// would keep the other copy blocked.
	time.AfterFunc(closeGrace, t.close)
}

// copyClientToNode moves the client's bytes to the node until the client ends.
func (t *tunnel) copyClientToNode() {
	err := t.pump(t.client, &t.toNode)
	t.endedFirst(err == nil, endNode, endClient)
	t.endFlow(&t.toNode)
}

// whichEnd names a tunnel's peer.
type whichEnd int32

const (
	endNone whichEnd = iota
	endClient
	endNode
)

// endedFirst notes which peer went away when a copy stopped (the writer's when its write failed,
// else the reader's), unless one went first.
func (t *tunnel) endedFirst(writeFailed bool, writer, reader whichEnd) {
	gone := reader
	if writeFailed {
		gone = writer
	}
	t.firstEnd.CompareAndSwap(int32(endNone), int32(gone))
}

// summary tells OnClose how the tunnel went: bytes each way, and which peer ended first.
func (t *tunnel) summary() Ended {
	e := Ended{ToClient: t.toClient.own.Load(), ToNode: t.toNode.own.Load(), Idle: t.idleClosed.Load()}
	first := whichEnd(t.firstEnd.Load())
	t.mu.Lock()
	lt := t.loop
	t.mu.Unlock()
	if lt != nil { // the loop ended it (finish runs after its end): its fields are settled
		toClient, toNode, loopFirst := lt.summary()
		e.ToClient += toClient
		e.ToNode += toNode
		if first == endNone {
			first = loopFirst
		}
	}
	e.NodeFirst = first == endNode
	return e
}

// pump copies src into f until src ends, and returns the read error (nil after a failed write). It
// holds no buffer while src is quiet: it waits on a one-byte read, then drains what arrived with a
// pooled buffer. An idle WebSocket thus costs no copy buffer; the price is one extra read per burst
// of frames. Once the tunnel goes away, what src still sends is read and dropped, so that its peer
// ends the stream with a FIN and not a reset.
func (t *tunnel) pump(src io.Reader, f *flow) error {
	var first [1]byte
	for {
		if _, err := io.ReadFull(src, first[:]); err != nil {
			return err
		}
		buf := copyBuffers.Get().(*[]byte)
		b := *buf
		b[0] = first[0]
		// A frame is never one byte long, so the rest is on its way: this read does not wait idle.
		m, _ := src.Read(b[1:])
		t.active.Store(time.Now().UnixNano())
		err := f.write(b[:1+m])
		copyBuffers.Put(buf)
		if err != nil && err != errEnded {
			return nil
		}
	}
}

// watchUpgrade forwards client frames until "5"; false when the client left first, or sent no "5"
// within the probe timeout (the probe then ends and the session stays on polling). Frames are read
// into one fixed buffer: what a frame announces never decides what the watch holds.
func (t *tunnel) watchUpgrade() bool {
	b := frameBufs.Get().(*frameBuf)
	defer frameBufs.Put(b)
	_ = t.clientRaw().SetReadDeadline(time.Now().Add(t.relay.options().ProbeTimeout))
	defer func() { _ = t.clientRaw().SetReadDeadline(time.Time{}) }()
	for {
		f, err := readFrame(t.client, b, t.relay.options().MaxFrame)
		if err != nil {
			return false
		}
		if err := f.forward(t.client, t.toNode.write, b); err != nil {
			return false // errEnded too: the client's "5" after a close frame upgrades nothing
		}
		if f.textIs("5") {
			t.hooks.OnUpgrade()
			return true
		}
	}
}

// copyBuffers hold the copy buffers of the goroutine paths, only while bytes are moving.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// close ends both connections: directly, or through the event loop when it owns them.
func (t *tunnel) close() {
	t.mu.Lock()
	lt := t.loop
	t.mu.Unlock()
	if lt != nil {
		lt.endNow()
		return
	}
	t.node.Close()
	t.clientRaw().Close()
	t.client.Close()
}
