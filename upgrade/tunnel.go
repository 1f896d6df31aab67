package upgrade

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sidpin/sidpin/engineio"
)

// closeGrace is how long the second direction may keep flowing after the first one ended (a close
// frame answering a close frame).
const closeGrace = 2 * time.Second

// tunnel is one relayed WebSocket: client <-> node.
type tunnel struct {
	relay  *Relay
	client net.Conn      // fasthttp's hijacked conn: reads may go through its buffered reader
	node   net.Conn      // the node, written directly
	nodeR  *bufio.Reader // the node, read through the reader that parsed the 101
	hooks  Hooks

	looped    atomic.Bool  // handed to the event loop, which then owns both sockets
	nodeEOF   atomic.Bool  // the node ended its stream (not merely a stopped copy)
	active    atomic.Int64 // unix nanos of the last bytes moved either way, for the idle timeout
	finishing sync.Once
}

// run forwards the 101, watches the first frames the hooks ask for, then relays: by the event loop
// when it can take the sockets, else by two copying goroutines.
func (t *tunnel) run(head []byte) {
	t.active.Store(time.Now().UnixNano())
	t.relay.track(t, true)
	if !t.start(head) {
		t.finish()
		return
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
	if _, err := t.client.Write(head); err != nil {
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
	if !t.watchUpgrade() {
		closeWrite(t.node)
		t.waitOther(stopped)
		t.finish()
		return
	}
	// Stop the node->client copy at a clean point (a read deadline only interrupts the wait for
	// data), then hand both sockets over.
	if !t.relay.opts.NoEventLoop && t.loopable() {
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
	_, isTCP := t.clientRaw().(*net.TCPConn)
	_, nodeTCP := t.node.(*net.TCPConn)
	return isTCP && nodeTCP && readsRaw(t.client)
}

// handOver gives the tunnel to the event loop; false when it cannot take it.
func (t *tunnel) handOver() bool {
	if t.relay.opts.NoEventLoop || !t.loopable() {
		return false
	}
	t.looped.Store(true)
	if !handOver(t.clientRaw(), t.node, &t.active, t.finish) {
		t.looped.Store(false)
		return false
	}
	return true
}

func (t *tunnel) clientRaw() net.Conn {
	if rc, ok := t.client.(rawConn); ok {
		return rc.UnsafeConn()
	}
	return t.client
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
		if t.hooks.OnClose != nil {
			t.hooks.OnClose()
		}
		t.relay.track(t, false)
	})
}

// watchOpen reads the node's first frame, hands its open packet to OnOpen (the pin is stored before
// the client sees the sid), then forwards the frame.
func (t *tunnel) watchOpen() bool {
	_ = t.node.SetReadDeadline(time.Now().Add(t.relay.opts.HandshakeTimeout))
	f, err := readFrame(t.nodeR, nil, t.relay.opts.MaxFrame)
	_ = t.node.SetReadDeadline(time.Time{})
	if err != nil {
		return false
	}
	if f.opcode == opText && f.fin && !f.rsv1 && len(f.payload) > 1 && f.payload[0] == '0' {
		if info, err := engineio.ParseOpen(f.payload[1:]); err == nil {
			if err := t.hooks.OnOpen(info); err != nil {
				t.relay.opts.Logger.Warn("websocket session not pinned; closing it", "err", err)
				return false
			}
		}
	}
	_, err = t.client.Write(f.raw)
	return err == nil
}

// flushNodeBuffer writes what the node reader holds already, so the rest can be copied from the raw
// connection.
func (t *tunnel) flushNodeBuffer() bool {
	n := t.nodeR.Buffered()
	if n == 0 {
		return true
	}
	b, _ := t.nodeR.Peek(n)
	_, err := t.client.Write(b)
	_, _ = t.nodeR.Discard(n)
	return err == nil
}

// copyNodeToClient moves the node's bytes to the client. Both ends being TCP, the kernel splices them
// (no copy through user space). Writes to the raw client connection are safe: only reads go through
// fasthttp's buffered reader. It records whether the node ended the stream (err nil or a failure,
// not the read deadline a probe uses to stop it).
func (t *tunnel) copyNodeToClient() {
	src := io.Reader(t.node)
	if t.relay.opts.IdleTimeout > 0 {
		src = activeReader{t.node, &t.active} // gives up splice: only where the loop cannot be used
	}
	_, err := io.Copy(t.clientRaw(), src)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return // stopped on purpose (the probe hands its sockets to the event loop)
	}
	t.nodeEOF.Store(true)
	closeWrite(t.clientRaw())
	// The client may still answer (a close frame), but not forever: one that vanished without a FIN
	// would keep the other copy blocked.
	time.AfterFunc(closeGrace, t.close)
}

// copyClientToNode moves the client's bytes to the node until the client ends.
func (t *tunnel) copyClientToNode() {
	t.copyWithoutIdleBuffer()
	closeWrite(t.node)
}

// copyWithoutIdleBuffer copies client bytes to the node holding no buffer while the client is
// quiet: it waits on a one-byte read, then drains what arrived with a pooled buffer. An idle
// WebSocket thus costs no copy buffer; the price is one extra read per burst of frames.
func (t *tunnel) copyWithoutIdleBuffer() {
	var first [1]byte
	for {
		if _, err := io.ReadFull(t.client, first[:]); err != nil {
			return
		}
		buf := copyBuffers.Get().(*[]byte)
		b := *buf
		b[0] = first[0]
		// A frame is never one byte long, so the rest is on its way: this read does not wait idle.
		m, _ := t.client.Read(b[1:])
		t.active.Store(time.Now().UnixNano())
		_, err := t.node.Write(b[:1+m])
		copyBuffers.Put(buf)
		if err != nil {
			return
		}
	}
}

// watchUpgrade forwards client frames until "5"; false when the client left first.
func (t *tunnel) watchUpgrade() bool {
	var buf []byte
	for {
		f, err := readFrame(t.client, buf, t.relay.opts.MaxFrame)
		if err != nil {
			return false
		}
		if _, err := t.node.Write(f.raw); err != nil {
			return false
		}
		if f.textIs("5") {
			t.hooks.OnUpgrade()
			return true
		}
		buf = f.raw
	}
}

// activeReader stamps a tunnel's activity as bytes pass.
type activeReader struct {
	r      io.Reader
	active *atomic.Int64
}

func (a activeReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		a.active.Store(time.Now().UnixNano())
	}
	return n, err
}

// copyBuffers hold the client-to-node copy buffers, only while bytes are moving.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// close ends both connections: directly, or through the event loop when it owns them.
func (t *tunnel) close() {
	if t.looped.Load() {
		shutdownConn(t.clientRaw())
		shutdownConn(t.node)
		return
	}
	t.node.Close()
	t.clientRaw().Close()
	t.client.Close()
}
