// Command chatnode runs the reference chat node (package chatnode): flags, signals and wiring only.
//
//	chatnode -listen 127.0.0.1:3101 -name node1 -redis 127.0.0.1:6379
//	chatnode -conformance            # the official protocol test suites' server on 127.0.0.1:3000
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sidpin/sidpin/chatnode"
	"github.com/sidpin/sidpin/internal/redislog"
)

var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("chatnode", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:3101", "address to listen on")
	name := fs.String("name", "", "node name shown to clients (default: the listen address)")
	redisAddr := fs.String("redis", "", "Redis host:port for the chat fan-out between nodes (empty: this node works alone; while Redis is down the node serves its own clients and keeps retrying)")
	channel := fs.String("redis-channel", "sidpin:chat", "Redis pub/sub channel of the chat fan-out")
	peers := fs.String("peers", "", "without Redis: comma-separated base URLs of the other nodes, which get this node's broadcasts by HTTP (for the demo)")
	path := fs.String("path", "/socket.io/", "Socket.IO path")
	pingInterval := fs.Duration("ping-interval", 25*time.Second, "Engine.IO pingInterval")
	pingTimeout := fs.Duration("ping-timeout", 20*time.Second, "Engine.IO pingTimeout")
	maxPayload := fs.Int("max-payload", 1_000_000, "largest POST body / WebSocket message in bytes")
	eio3 := fs.Bool("eio3", true, "accept Engine.IO v3 clients (socket.io-client v2)")
	cookie := fs.String("cookie", "", "set this cookie to the sid on the polling handshake (empty: none)")
	clientJS := fs.String("client-js", "e2e/node_modules/socket.io-client/dist/socket.io.min.js", "socket.io-client browser bundle served to the chat page")
	conformance := fs.Bool("conformance", false, "serve what the official Engine.IO/Socket.IO protocol test suites expect (listen 127.0.0.1:3000 unless -listen is given)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, "chatnode", version)
		return 0
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "chatnode: -log-level: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	redislog.Use(log)

	cfg := chatnode.NodeConfig{
		Name: *name, SocketIOPath: *path, PingInterval: *pingInterval, PingTimeout: *pingTimeout,
		MaxPayload: *maxPayload, AllowEIO3: *eio3, Cookie: *cookie, RedisAddr: *redisAddr,
		RedisChannel: *channel, ClientJS: *clientJS, Logger: log,
	}
	if *peers != "" {
		cfg.Peers = strings.Split(*peers, ",")
	}
	if *conformance {
		applyConformance(fs, &cfg, listen)
	}
	if cfg.Name == "" {
		cfg.Name = *listen
	}
	return serve(cfg, *listen, log)
}

// applyConformance sets the values the official test suites expect, unless given on the command line.
func applyConformance(fs *flag.FlagSet, cfg *chatnode.NodeConfig, listen *string) {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	cfg.Conformance = true
	cfg.ConnectTimeout = time.Second
	if !given["listen"] {
		*listen = "127.0.0.1:3000"
	}
	if !given["ping-interval"] {
		cfg.PingInterval = 300 * time.Millisecond
	}
	if !given["ping-timeout"] {
		cfg.PingTimeout = 200 * time.Millisecond
	}
}

func serve(cfg chatnode.NodeConfig, listen string, log *slog.Logger) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	node, err := chatnode.NewNode(ctx, cfg)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		log.Error("cannot listen", "addr", listen, "err", err)
		return 1
	}
	log.Info("chatnode listening", "addr", ln.Addr().String(), "name", cfg.Name, "redis", cfg.RedisAddr, "conformance", cfg.Conformance)
	done := make(chan error, 1)
	go func() { done <- node.Serve(ln) }()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, net.ErrClosed) {
			log.Error("serve", "err", err)
			return 1
		}
		return 0
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := node.Shutdown(shutdownCtx); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	return 0
}

// redisLog sends go-redis's own messages (a line per failed dial, among others) to slog at debug level:
// the chat fan-out reports Redis outages itself, at a bounded rate.
