package chatnode

import (
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"sync"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/engineio"
	"github.com/sidpin/sidpin/internal/eioanswer"
)

// EngineConfig configures one Engine.IO endpoint. Zero fields take Node's defaults.
type EngineConfig struct {
	Path           string        // URL path prefix, e.g. "/socket.io/"
	PingInterval   time.Duration // default 25s
	PingTimeout    time.Duration // default 20s
	UpgradeTimeout time.Duration // default 10s
	MaxPayload     int           // largest POST body and WebSocket message, bytes; default 1e6
	AllowEIO3      bool
	// MaxQueuedPackets bounds the packets waiting for a slow client; past it the session is closed.
	MaxQueuedPackets int // default 1024
	// Cookie, when set, is the name of a cookie carrying the sid on the polling handshake answer
	// (what cookie-based sticky balancers use).
	Cookie string
	Logger *slog.Logger
}

func (c *EngineConfig) setDefaults() {
	if c.Path == "" {
		c.Path = "/engine.io/"
	}
	if c.PingInterval == 0 {
		c.PingInterval = 25 * time.Second
	}
	if c.PingTimeout == 0 {
		c.PingTimeout = 20 * time.Second
	}
	if c.UpgradeTimeout == 0 {
		c.UpgradeTimeout = 10 * time.Second
	}
	if c.MaxPayload == 0 {
		c.MaxPayload = 1_000_000
	}
	if c.MaxQueuedPackets == 0 {
		c.MaxQueuedPackets = 1024
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// EngineHandler is what runs on top of Engine.IO (Socket.IO, or the conformance echo).
// Its methods are called from request goroutines; OnMessage calls of one session never overlap.
type EngineHandler interface {
	OnOpen(s *Session)
	// OnMessage receives one message packet; p.Data is owned by the handler.
	OnMessage(s *Session, p engineio.Packet)
	OnClose(s *Session, reason string)
}

// Engine is an Engine.IO v4 (and optionally v3) server endpoint.
type Engine struct {
	cfg      EngineConfig
	handler  EngineHandler
	upgrader websocket.FastHTTPUpgrader

	mu       sync.RWMutex
	sessions map[string]*Session
	// lingering holds sessions a client closed by POST while no GET was held, for the one GET it may
	// have sent together with the close (see Session.owesNoopLocked).
	lingering map[string]*Session
	lingerFor time.Duration // how long a session lingers; guarded by mu
	closed    bool
}

// defaultLingerFor bounds how long a closed session waits for the GET sent together with its close.
// That GET left the client with the POST, so it normally comes within milliseconds; the margin covers a
// loaded machine and a lost SYN (retransmitted after 1 s, then 2 s more). Until then the sid answers one
// GET with a noop instead of a 400, both of which end a closing client's poll.
const defaultLingerFor = 5 * time.Second

// NewEngine returns an endpoint serving cfg.Path with handler on top.
func NewEngine(cfg EngineConfig, handler EngineHandler) *Engine {
	cfg.setDefaults()
	e := &Engine{cfg: cfg, handler: handler, sessions: map[string]*Session{}, lingering: map[string]*Session{},
		lingerFor: defaultLingerFor}
	e.upgrader = websocket.FastHTTPUpgrader{
		ReadBufferSize:  4096,
		WriteBufferSize: 4096,
		// Origin policy belongs to the application (Socket.IO's cors); a chat node accepts any origin.
		CheckOrigin: func(*fasthttp.RequestCtx) bool { return true },
	}
	return e
}

// Path is the URL prefix the engine serves.
func (e *Engine) Path() string { return e.cfg.Path }

// SessionCount is the number of open sessions.
func (e *Engine) SessionCount() int {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return len(e.sessions)
}

// Close ends every session and refuses new ones.
func (e *Engine) Close() {
	e.mu.Lock()
	e.closed = true
	all := make([]*Session, 0, len(e.sessions))
	for _, s := range e.sessions {
		all = append(all, s)
	}
	e.mu.Unlock()
	for _, s := range all {
		s.Close("server shutting down")
	}
}

func (e *Engine) lookup(sid string) *Session {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.sessions[sid]
}

func (e *Engine) register(s *Session) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	e.sessions[s.id] = s
	return true
}

// unregister forgets a closed session. With linger, lookupLingering still finds it for lingerFor, or
// until a GET takes its last answer (forget); both maps change under one lock, so that a request never
// finds the session in neither.
func (e *Engine) unregister(s *Session, linger bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.sessions, s.id)
	if linger {
		e.lingering[s.id] = s
		time.AfterFunc(e.lingerFor, func() { e.forget(s) })
	}
}

func (e *Engine) forget(s *Session) {
	e.mu.Lock()
	if e.lingering[s.id] == s {
		delete(e.lingering, s.id)
	}
	e.mu.Unlock()
}

func (e *Engine) lookupLingering(sid string) *Session {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.lingering[sid]
}

// newSID makes a 20-character id from [A-Za-z0-9_-], the shape Node uses.
func newSID() string {
	var b [15]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// writeError answers like an Engine.IO server (see package eioanswer).
func writeError(ctx *fasthttp.RequestCtx, code int, upgrade bool) {
	eioanswer.Write(ctx, code, upgrade)
}

// Short names of the Engine.IO error codes used by the engine.
const (
	errTransportUnknown   = engineio.ErrCodeTransportUnknown
	errUnknownSID         = engineio.ErrCodeUnknownSID
	errBadHandshakeMethod = engineio.ErrCodeBadHandshakeMethod
	errBadRequest         = engineio.ErrCodeBadRequest
	errUnsupportedVersion = engineio.ErrCodeUnsupportedVersion
)
