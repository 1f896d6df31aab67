package chatnode

import (
	"context"
	_ "embed"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/valyala/fasthttp"
)

// NodeConfig configures a chat node.
type NodeConfig struct {
	Name           string
	SocketIOPath   string // default "/socket.io/"
	PingInterval   time.Duration
	PingTimeout    time.Duration
	ConnectTimeout time.Duration // Socket.IO: close sessions that join no namespace in time (default 45s)
	MaxPayload     int
	AllowEIO3      bool
	Cookie         string // sid cookie name on the polling handshake ("" = none)
	RedisAddr      string // "" = this node works alone
	RedisChannel   string // default "sidpin:chat"
	// Peers are other nodes' base URLs that get this node's broadcasts by HTTP when there is no
	// Redis (the demo). Best effort; use Redis for anything real.
	Peers    []string
	ClientJS string // path of socket.io-client's browser bundle, served to the chat page
	// Conformance sets the node up like the official protocol test suites' server: an echo Engine.IO
	// endpoint at /engine.io/ and Socket.IO namespaces "/" and "/custom" instead of the chat.
	Conformance bool
	Logger      *slog.Logger
}

// Node is a chat node: Socket.IO chat (or the conformance endpoints), the chat page and /healthz.
type Node struct {
	cfg      NodeConfig
	sio      *Engine
	echo     *Engine // conformance only
	chat     *Chat
	fanout   *RedisFanout
	redis    redis.UniversalClient
	server   *fasthttp.Server
	stopping atomic.Bool
}

//go:embed web/index.html
var chatPage []byte

// NewNode builds a node. With RedisAddr set it tries once to subscribe to the chat channel before
// returning, and keeps trying in the background if Redis is down.
func NewNode(ctx context.Context, cfg NodeConfig) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SocketIOPath == "" {
		cfg.SocketIOPath = "/socket.io/"
	}
	if cfg.RedisChannel == "" {
		cfg.RedisChannel = "sidpin:chat"
	}
	n := &Node{cfg: cfg}
	engineCfg := EngineConfig{
		Path: cfg.SocketIOPath, PingInterval: cfg.PingInterval, PingTimeout: cfg.PingTimeout,
		MaxPayload: cfg.MaxPayload, AllowEIO3: cfg.AllowEIO3, Cookie: cfg.Cookie, Logger: cfg.Logger,
	}
	namespaces := map[string]NamespaceHandler{}
	if cfg.Conformance {
		namespaces["/"], namespaces["/custom"] = conformanceNamespace{}, conformanceNamespace{}
		echoCfg := engineCfg
		echoCfg.Path = "/engine.io/"
		n.echo = NewEngine(echoCfg, echoEngine{})
	} else {
		n.chat = NewChat(cfg.Name)
		namespaces["/"] = n.chat
	}
	n.sio = NewEngine(engineCfg, NewSocketIOServer(namespaces, cfg.ConnectTimeout))
	switch {
	case n.chat == nil:
	case cfg.RedisAddr != "":
		n.startFanout(ctx)
	case len(cfg.Peers) > 0:
		n.chat.SetFanout(NewPeerFanout(cfg.Peers, cfg.Logger))
	}
	n.server = &fasthttp.Server{
		Handler:               n.ServeHTTP,
		Name:                  "chatnode",
		NoDefaultServerHeader: true,
		// The engine answers oversized POSTs with 413 itself; this only bounds what fasthttp reads.
		MaxRequestBodySize: 2*n.sio.cfg.MaxPayload + 64<<10,
		IdleTimeout:        90 * time.Second,
		ReadTimeout:        90 * time.Second,
		CloseOnShutdown:    true,
		Logger:             slogPrintf{cfg.Logger},
	}
	return n, nil
}

// startFanout connects the chat to Redis. It never fails: while Redis is down the node serves its own
// clients and the fan-out keeps retrying in the background.
func (n *Node) startFanout(ctx context.Context) {
	n.redis = redis.NewClient(&redis.Options{
		Addr: n.cfg.RedisAddr, DialTimeout: 2 * time.Second, ReadTimeout: time.Second,
		WriteTimeout: time.Second, ContextTimeoutEnabled: true,
		// One retry: after a Redis restart the first PUBLISH may meet a dead pooled connection.
		MaxRetries: 1,
		// One dial per attempt: the fan-out retries with its own backoff, and go-redis's default (5 dials
		// 100 ms apart) would hold every chat message for half a second while Redis is down.
		DialerRetries: 1,
	})
	firstTry, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	log := n.cfg.Logger.With("redis", n.cfg.RedisAddr)
	n.fanout = StartRedisFanout(firstTry, n.redis, n.cfg.RedisChannel, n.chat, log)
	n.chat.SetFanout(n.fanout)
}

// Serve accepts connections on ln until Shutdown.
func (n *Node) Serve(ln net.Listener) error { return n.server.Serve(ln) }

// Shutdown stops accepting, fails /healthz, ends every session and closes Redis.
func (n *Node) Shutdown(ctx context.Context) error {
	n.stopping.Store(true)
	n.sio.Close()
	if n.echo != nil {
		n.echo.Close()
	}
	err := n.server.ShutdownWithContext(ctx)
	if n.fanout != nil {
		n.fanout.Close()
		n.redis.Close()
	}
	return err
}

// Sessions is the number of open Engine.IO sessions.
func (n *Node) Sessions() int { return n.sio.SessionCount() }

// ServeHTTP routes one request.
func (n *Node) ServeHTTP(ctx *fasthttp.RequestCtx) {
	path := string(ctx.Path())
	switch {
	case underPath(path, n.sio.cfg.Path):
		n.sio.ServeHTTP(ctx)
	case n.echo != nil && underPath(path, n.echo.cfg.Path):
		n.echo.ServeHTTP(ctx)
	case path == "/healthz":
		n.serveHealth(ctx)
	case path == peerPath:
		n.servePeerBroadcast(ctx)
	case path == "/" && n.chat != nil:
		ctx.SetContentType("text/html; charset=utf-8")
		ctx.SetBody(chatPage)
	case path == "/assets/socket.io.min.js":
		n.serveClientJS(ctx)
	default:
		ctx.Error("not found", fasthttp.StatusNotFound)
	}
}

// underPath matches "/socket.io/…" and the trailing-slash-less "/socket.io" clients send when
// addTrailingSlash is false.
func underPath(path, prefix string) bool {
	return strings.HasPrefix(path, prefix) || path == strings.TrimSuffix(prefix, "/")
}

func (n *Node) serveHealth(ctx *fasthttp.RequestCtx) {
	if n.stopping.Load() {
		ctx.Error("shutting down\n", fasthttp.StatusServiceUnavailable)
		return
	}
	ctx.SetContentType("text/plain; charset=utf-8")
	fmt.Fprintf(ctx, "ok %s sessions=%d\n", n.cfg.Name, n.Sessions())
}

func (n *Node) serveClientJS(ctx *fasthttp.RequestCtx) {
	data, err := os.ReadFile(n.cfg.ClientJS)
	if n.cfg.ClientJS == "" || err != nil {
		ctx.Error("socket.io-client bundle not found: run `make e2e-deps` and start chatnode with -client-js", fasthttp.StatusNotFound)
		return
	}
	ctx.SetContentType("application/javascript; charset=utf-8")
	ctx.SetBody(data)
}

// slogPrintf adapts slog to fasthttp's Printf logger.
type slogPrintf struct{ log *slog.Logger }

func (l slogPrintf) Printf(format string, args ...any) {
	l.log.Warn(fmt.Sprintf(format, args...), "component", "fasthttp")
}
