package chatnode

import (
	"errors"
	"sync"
	"time"

	"github.com/sidpin/sidpin/engineio"
)

// ErrSessionClosed is returned when sending on a closed session.
var ErrSessionClosed = errors.New("chatnode: session closed")

type transportKind int

const (
	transportPolling transportKind = iota
	transportWebSocket
)

func (t transportKind) String() string {
	if t == transportWebSocket {
		return "websocket"
	}
	return "polling"
}

// Session is one Engine.IO session. All of its state is guarded by mu; the network work (answering a
// GET, writing WebSocket frames) happens outside the lock.
type Session struct {
	id     string
	ver    engineio.Version
	b64    bool // v3 client cannot take binary polling payloads
	engine *Engine
	remote string
	query  map[string]string

	// Data is free for the handler on top (Socket.IO keeps its connection here).
	Data any

	mu         sync.Mutex
	closed     bool
	transport  transportKind
	upgrading  bool // a probe WebSocket answered 2probe; waiting for 5
	queue      []engineio.Packet
	getWaiting bool
	getWake    chan struct{} // capacity 1: "look at the state again"
	// getAnswer is what a waiting GET must answer when there is nothing queued (noop or close).
	getAnswer *engineio.Packet
	// finalSent: a GET has taken getAnswer; a closed session answers only one GET.
	finalSent  bool
	postActive bool
	probeUntil time.Time // a probe WebSocket holds the session until then, unless it upgrades or fails first
	ws         *wsTransport
	pingTimer  *time.Timer // v4: next ping; v3: heartbeat deadline
	pongTimer  *time.Timer // v4: deadline for the pong

	// handlerMu keeps OnMessage calls of this session in order when POSTs and WebSocket frames race
	// during an upgrade.
	handlerMu sync.Mutex
}

var (
	noopPacket  = engineio.Packet{Type: engineio.Noop}
	closePacket = engineio.Packet{Type: engineio.Close}
	pingPacket  = engineio.Packet{Type: engineio.Ping}
)

func newSession(e *Engine, ver engineio.Version, b64 bool, remote string, query map[string]string, t transportKind) *Session {
	return &Session{
		id: newSID(), ver: ver, b64: b64, engine: e, remote: remote, query: query,
		transport: t, getWake: make(chan struct{}, 1),
	}
}

// ID is the Engine.IO session id.
func (s *Session) ID() string { return s.id }

// Version is the Engine.IO protocol version of the session.
func (s *Session) Version() engineio.Version { return s.ver }

// RemoteAddr is the client address of the handshake.
func (s *Session) RemoteAddr() string { return s.remote }

// Query returns a query parameter of the handshake request.
func (s *Session) Query(key string) string { return s.query[key] }

// Transport is "polling" or "websocket".
func (s *Session) Transport() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.transport.String()
}

// openInfo is the handshake data of this session.
func (s *Session) openInfo() engineio.OpenInfo {
	cfg := &s.engine.cfg
	o := engineio.OpenInfo{
		SID: s.id, Upgrades: []string{},
		PingInterval: int(cfg.PingInterval / time.Millisecond),
		PingTimeout:  int(cfg.PingTimeout / time.Millisecond),
		MaxPayload:   cfg.MaxPayload,
	}
	if s.transport == transportPolling {
		o.Upgrades = []string{"websocket"}
	}
	return o
}

// Send queues packets for the client, in order and as one batch (a binary event and its attachments
// must not be split by a concurrent sender). The packets' data must not change afterwards.
func (s *Session) Send(pkts ...engineio.Packet) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sendLocked(pkts...)
}

func (s *Session) sendLocked(pkts ...engineio.Packet) error {
	if s.closed {
		return ErrSessionClosed
	}
	if s.transport == transportWebSocket {
		if !s.ws.enqueue(s.ver, pkts) {
			s.closeLocked("slow client: websocket send queue full", false)
			return ErrSessionClosed
		}
		return nil
	}
	if len(s.queue)+len(pkts) > s.engine.cfg.MaxQueuedPackets {
		s.closeLocked("slow client: polling send queue full", false)
		return ErrSessionClosed
	}
	s.queue = append(s.queue, pkts...)
	s.wakeGet()
	return nil
}

func (s *Session) wakeGet() {
	select {
	case s.getWake <- struct{}{}:
	default:
	}
}

// Close ends the session from the server side.
func (s *Session) Close(reason string) {
	s.mu.Lock()
	s.closeLocked(reason, false)
	s.mu.Unlock()
}

// closeLocked ends the session once. byClient tells a client's close packet (a waiting GET then gets a
// noop) from a server-side end (a waiting GET gets the close packet).
func (s *Session) closeLocked(reason string, byClient bool) {
	if s.closed {
		return
	}
	s.closed = true
	stopTimer(s.pingTimer)
	stopTimer(s.pongTimer)
	if byClient {
		s.getAnswer = &noopPacket
	} else {
		s.getAnswer = &closePacket
	}
	s.wakeGet()
	if s.ws != nil {
		s.ws.shutdown()
	}
	// Unregister now (lock order: session, then engine) so no later request finds a closed session,
	// except the GET owed a noop (see owesNoopLocked).
	s.engine.unregister(s, byClient && s.owesNoopLocked())
	go s.finish(reason)
}

// owesNoopLocked tells whether a client's close leaves a GET unanswered that the client may have sent
// together with the close. A client sending both at once (the official suite's Promise.all) sends the
// GET first, on its pooled connection, and Node handles requests one at a time in arrival order: the GET
// is held when Node reads the close, and gets the noop. Here requests run in parallel and the POST may
// be handled first: the session then lingers for that one GET (Engine.unregister), which gets the same noop.
// Over WebSocket there is no GET to answer.
func (s *Session) owesNoopLocked() bool {
	return s.transport == transportPolling && !s.getWaiting
}

// takeFinalLocked hands a closed session's last answer to one GET; later GETs find the session gone.
func (s *Session) takeFinalLocked() (engineio.Packet, bool) {
	if s.finalSent {
		return engineio.Packet{}, false
	}
	s.finalSent = true
	s.engine.forget(s)
	return *s.getAnswer, true
}

// finish runs the close callbacks outside the session lock.
func (s *Session) finish(reason string) {
	s.engine.handler.OnClose(s, reason)
	s.engine.cfg.Logger.Debug("engine.io session closed", "sid", s.id, "reason", reason)
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}

// startHeartbeat arms the timers of a new session: v4 servers ping, v3 servers wait for the client's ping.
func (s *Session) startHeartbeat() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.armHeartbeatLocked()
}

func (s *Session) armHeartbeatLocked() {
	cfg := &s.engine.cfg
	if s.closed {
		return
	}
	if s.ver == engineio.V3 {
		stopTimer(s.pingTimer)
		s.pingTimer = time.AfterFunc(cfg.PingInterval+cfg.PingTimeout, func() { s.Close("ping timeout") })
		return
	}
	stopTimer(s.pingTimer)
	s.pingTimer = time.AfterFunc(cfg.PingInterval, s.sendPing)
}

// sendPing sends the v4 heartbeat and starts waiting for the pong. As in Node, the wait starts when the
// ping is queued, even if no GET is there to carry it.
func (s *Session) sendPing() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	stopTimer(s.pongTimer)
	s.pongTimer = time.AfterFunc(s.engine.cfg.PingTimeout, func() { s.Close("ping timeout") })
	_ = s.sendLocked(pingPacket)
}

// onPacket handles one packet from the client, on any transport. It returns false when the packet was
// a protocol error (the session is then closed).
func (s *Session) onPacket(p engineio.Packet) bool {
	switch p.Type {
	case engineio.Message:
		p.Data = append([]byte(nil), p.Data...) // request and frame buffers are reused after we return
		s.handlerMu.Lock()
		s.engine.handler.OnMessage(s, p)
		s.handlerMu.Unlock()
	case engineio.Ping:
		if s.ver != engineio.V3 {
			s.Close("invalid heartbeat direction")
			return false
		}
		s.mu.Lock()
		_ = s.sendLocked(engineio.Packet{Type: engineio.Pong, Data: append([]byte(nil), p.Data...)})
		s.armHeartbeatLocked()
		s.mu.Unlock()
	case engineio.Pong:
		if s.ver == engineio.V3 {
			s.Close("invalid heartbeat direction")
			return false
		}
		s.mu.Lock()
		stopTimer(s.pongTimer)
		s.armHeartbeatLocked()
		s.mu.Unlock()
	case engineio.Close:
		s.mu.Lock()
		s.closeLocked("transport close", true)
		s.mu.Unlock()
	default:
		// open, upgrade and noop mean nothing coming from a client on an established transport.
	}
	return true
}
