package upgrade

import (
	"bufio"
	"io"
	"net"
	"sync"
	"time"

	"github.com/sidpin/sidpin/engineio"
)

// closeGrace is how long the second direction may keep flowing after the first one ended (a close
// frame answering a close frame).
const closeGrace = 2 * time.Second

// tunnel is one relayed WebSocket: client <-> node.
type tunnel struct {
	relay  *Relay
	client net.Conn      // fasthttp's hijacked conn: reads go through its buffered reader
	node   net.Conn      // the node, written directly
	nodeR  *bufio.Reader // the node, read through the reader that parsed the 101
	hooks  Hooks

	closeOnce sync.Once
}

// run forwards the 101, watches the first frames the hooks ask for, then copies bytes both ways. It
// returns when the tunnel is over: fasthttp recycles the client connection after that.
func (t *tunnel) run(head []byte) {
	t.relay.track(t, true)
	defer t.relay.track(t, false)
	defer t.close()
	if t.hooks.OnClose != nil {
		defer t.hooks.OnClose()
	}
	if _, err := t.client.Write(head); err != nil {
		return
	}
	if t.hooks.OnOpen != nil && !t.watchOpen() {
		return
	}
	if !t.flushNodeBuffer() {
		return
	}
	t.nodeR = nil // flushed: the rest is read from the raw connection; let its buffer go
	done := make(chan struct{})
	go func() { t.copyNodeToClient(); close(done) }()
	t.copyClientToNode()
	select { // let the other direction finish a close handshake, then cut it
	case <-done:
	case <-time.After(closeGrace):
	}
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

// rawConn is fasthttp's hijacked connection's way to the *net.TCPConn underneath.
type rawConn interface{ UnsafeConn() net.Conn }

// copyNodeToClient moves the node's bytes to the client. Both ends being TCP, the kernel splices them
// (no copy through user space). Writes to the raw client connection are safe: only reads go through
// fasthttp's buffered reader.
func (t *tunnel) copyNodeToClient() {
	dst := t.client
	if rc, ok := dst.(rawConn); ok {
		dst = rc.UnsafeConn()
	}
	_, _ = io.Copy(dst, t.node)
	closeWrite(dst)
}

// copyClientToNode moves the client's bytes to the node, first frame by frame until the client sends
// "5" when OnUpgrade asks for it. It reads through fasthttp's reader, which may hold bytes already.
func (t *tunnel) copyClientToNode() {
	if t.hooks.OnUpgrade != nil && !t.watchUpgrade() {
		closeWrite(t.node)
		return
	}
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

// copyBuffers hold the client-to-node copy buffers, only while bytes are moving.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// close ends both connections once.
func (t *tunnel) close() {
	t.closeOnce.Do(func() {
		t.node.Close()
		if rc, ok := t.client.(rawConn); ok {
			rc.UnsafeConn().Close()
		}
		t.client.Close()
	})
}
