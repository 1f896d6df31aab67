package chatnode

import (
	"sync"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/engineio"
)

const wsWriteTimeout = 10 * time.Second

// wsFrame is one encoded Engine.IO packet waiting to be written.
type wsFrame struct {
	binary bool
	data   []byte
}

// wsTransport owns one WebSocket: a bounded queue drained by one writer goroutine, so that a slow
// client fills its own queue (and is disconnected) instead of blocking the sender. The queue is a
// slice that grows only as frames wait: an idle session holds no queue memory (a buffered channel
// of the bound would hold 32 KiB per session).
type wsTransport struct {
	conn     *websocket.Conn
	limit    int
	mu       sync.Mutex
	queue    []wsFrame
	wake     chan struct{} // capacity 1: frames are waiting
	done     chan struct{} // closed by shutdown
	finished chan struct{} // closed when writeLoop has returned
	stopOnce sync.Once
}

func newWSTransport(conn *websocket.Conn, limit int) *wsTransport {
	return &wsTransport{conn: conn, limit: limit, wake: make(chan struct{}, 1), done: make(chan struct{}), finished: make(chan struct{})}
}

// enqueue encodes packets into frames; false means the queue is full (or the transport is closed).
func (t *wsTransport) enqueue(ver engineio.Version, pkts []engineio.Packet) bool {
	select {
	case <-t.done:
		return false
	default:
	}
	t.mu.Lock()
	if len(t.queue)+len(pkts) > t.limit {
		t.mu.Unlock()
		return false
	}
	for _, p := range pkts {
		f := wsFrame{binary: p.Binary}
		if p.Binary {
			f.data = engineio.AppendBinaryFrame(ver, nil, p)
		} else {
			f.data = engineio.AppendPacket(nil, p)
		}
		t.queue = append(t.queue, f)
	}
	t.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
	return true
}

// take returns the waiting frames and empties the queue.
func (t *wsTransport) take() []wsFrame {
	t.mu.Lock()
	defer t.mu.Unlock()
	frames := t.queue
	t.queue = nil
	return frames
}

// shutdown asks the writer to flush what is queued, send a close frame and close the connection.
func (t *wsTransport) shutdown() {
	t.stopOnce.Do(func() { close(t.done) })
}

func (t *wsTransport) writeLoop() {
	defer close(t.finished)
	defer t.conn.Close()
	for {
		select {
		case <-t.wake:
			if !t.writeAll(t.take()) {
				return
			}
		case <-t.done:
			if t.writeAll(t.take()) {
				msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
				_ = t.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
			}
			return
		}
	}
}

func (t *wsTransport) writeAll(frames []wsFrame) bool {
	for _, f := range frames {
		if t.write(f) != nil {
			return false
		}
	}
	return true
}

func (t *wsTransport) write(f wsFrame) error {
	_ = t.conn.SetWriteDeadline(time.Now().Add(wsWriteTimeout))
	kind := websocket.TextMessage
	if f.binary {
		kind = websocket.BinaryMessage
	}
	return t.conn.WriteMessage(kind, f.data)
}

// serveDirectWebSocket opens a session whose first transport is WebSocket: the open packet is its
// first frame, with no upgrades.
func (e *Engine) serveDirectWebSocket(ctx *fasthttp.RequestCtx, ver engineio.Version, r request) {
	remote, query := ctx.RemoteAddr().String(), queryMap(ctx)
	_ = e.upgrader.Upgrade(ctx, func(conn *websocket.Conn) {
		s := newSession(e, ver, r.b64, remote, query, transportWebSocket)
		t := newWSTransport(conn, e.cfg.MaxQueuedPackets)
		s.ws = t
		if !e.register(s) {
			conn.Close()
			return
		}
		go t.writeLoop()
		open := engineio.Packet{Type: engineio.Open, Data: engineio.AppendOpen(nil, s.openInfo())}
		_ = s.Send(open)
		e.handler.OnOpen(s)
		s.startHeartbeat()
		s.readLoop(t)
	})
}

// serveProbe runs the polling -> WebSocket upgrade: 2probe/3probe, then 5 switches the session over.
// A probe that fails or closes before 5 leaves polling as it was.
func (e *Engine) serveProbe(ctx *fasthttp.RequestCtx, s *Session) {
	// Claim the session before the 101 goes out: the client may open a second WebSocket as soon as it
	// has the first one's 101, before the upgrade handler below runs.
	claimed := s.startProbe()
	err := e.upgrader.Upgrade(ctx, func(conn *websocket.Conn) {
		if !claimed || !s.probe(conn) {
			// Already upgraded, being probed or closed (accepted, then closed at once), or a failed probe.
			conn.Close()
			return
		}
		t := newWSTransport(conn, e.cfg.MaxQueuedPackets)
		if !s.switchToWebSocket(t) {
			conn.Close()
			return
		}
		go t.writeLoop()
		s.readLoop(t)
	})
	if err != nil && claimed {
		s.endProbe() // refused handshake: no handler will run
	}
}

// probe answers 2probe with 3probe and waits for 5, within the upgrade timeout. A failed probe
// releases the session's claim.
func (s *Session) probe(conn *websocket.Conn) bool {
	if !s.runProbe(conn) {
		s.endProbe()
		return false
	}
	return true
}

func (s *Session) runProbe(conn *websocket.Conn) bool {
	_ = conn.SetReadDeadline(time.Now().Add(s.engine.cfg.UpgradeTimeout))
	if !readTextPacket(conn, engineio.Packet{Type: engineio.Ping, Data: []byte("probe")}) {
		return false
	}
	_ = conn.SetWriteDeadline(time.Now().Add(wsWriteTimeout))
	if conn.WriteMessage(websocket.TextMessage, []byte("3probe")) != nil {
		return false
	}
	if !s.beginUpgrade() || !readTextPacket(conn, engineio.Packet{Type: engineio.Upgrade}) {
		return false
	}
	_ = conn.SetReadDeadline(time.Time{})
	return true
}

// beginUpgrade follows the 3probe: a waiting GET is released with a noop so the client can pause polling.
func (s *Session) beginUpgrade() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.upgrading || s.transport != transportPolling {
		return false // an expired claim let another probe in, and it got here first
	}
	s.upgrading = true
	if s.ver == engineio.V3 {
		// The v3 suite wants exactly one noop: on the poll if one takes it, else first on the WebSocket.
		s.queue = append(s.queue, noopPacket)
	}
	s.wakeGet()
	return true
}

// startProbe claims the session for one probe WebSocket. As in Node (Socket._maybeUpgrade), the claim
// starts when the WebSocket is accepted, not at 2probe: a second WebSocket for the sid that arrives
// meanwhile is closed at once instead of waiting out the upgrade timeout. The claim lapses after the
// upgrade timeout, as Node's upgrade timer does, in case fasthttp never runs the upgrade handler (the
// 101 could not be written).
func (s *Session) startProbe() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if s.closed || s.transport != transportPolling || now.Before(s.probeUntil) {
		return false
	}
	s.probeUntil = now.Add(s.engine.cfg.UpgradeTimeout)
	return true
}

// endProbe releases the session after a failed probe: polling goes on as before.
func (s *Session) endProbe() {
	s.mu.Lock()
	s.probeUntil, s.upgrading = time.Time{}, false
	s.mu.Unlock()
}

// readTextPacket reads one frame and reports whether it is exactly the packet want.
func readTextPacket(conn *websocket.Conn, want engineio.Packet) bool {
	kind, data, err := conn.ReadMessage()
	if err != nil || kind != websocket.TextMessage {
		return false
	}
	p, err := engineio.DecodeTextPacket(data)
	return err == nil && p.Type == want.Type && string(p.Data) == string(want.Data)
}

// switchToWebSocket makes t the session's transport and moves the polling queue onto it.
func (s *Session) switchToWebSocket(t *wsTransport) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.upgrading, s.probeUntil = false, time.Time{}
	if s.closed {
		return false
	}
	s.transport = transportWebSocket
	s.ws = t
	queued := s.queue
	s.queue = nil
	s.wakeGet()
	if !t.enqueue(s.ver, queued) {
		s.closeLocked("slow client: websocket send queue full", false)
		return false
	}
	return true
}

// closeGrace is how long a closing WebSocket may take to flush its queue and close frame.
const closeGrace = time.Second

// readLoop feeds the client's frames to the session until the socket ends, which ends the session.
// It returns only after the writer has stopped: fasthttp recycles the hijacked connection as soon as
// the upgrade handler returns.
func (s *Session) readLoop(t *wsTransport) {
	t.conn.SetReadLimit(int64(s.engine.cfg.MaxPayload)) // larger messages close the socket with 1009
	defer func() {
		t.shutdown()
		select {
		case <-t.finished:
		case <-time.After(closeGrace):
			t.conn.Close() // unblocks a writer stuck on a client that stopped reading
			<-t.finished
		}
	}()
	for {
		kind, data, err := t.conn.ReadMessage()
		if err != nil {
			break
		}
		var p engineio.Packet
		if kind == websocket.BinaryMessage {
			p, err = engineio.DecodeBinaryFrame(s.ver, data)
		} else {
			p, err = engineio.DecodeTextPacket(data)
		}
		if err != nil {
			s.Close("parse error")
			break
		}
		if !s.onPacket(p) {
			break
		}
	}
	s.Close("transport close")
}
