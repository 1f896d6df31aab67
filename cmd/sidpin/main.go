// Command sidpin is the sticky-session reverse proxy for Socket.IO / Engine.IO chat clusters.
//
//	sidpin -config FILE                               run with a config file
//	sidpin -listen 127.0.0.1:3200 -to URL,URL [-path /socket.io/]   quick start without a file
//	sidpin -check -config FILE                        validate, print a one-line summary, exit 0 or 1
//	sidpin -version                                   print the version
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

	"github.com/redis/go-redis/v9"

	"github.com/sidpin/sidpin/admin"
	"github.com/sidpin/sidpin/affinity"
	"github.com/sidpin/sidpin/clientlimits"
	"github.com/sidpin/sidpin/configs"
	"github.com/sidpin/sidpin/internal/redislog"
	"github.com/sidpin/sidpin/proxy"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type flags struct {
	config, listen, to, path string
	check, version           bool
}

func parseFlags(args []string, stderr io.Writer) (flags, error) {
	var f flags
	fs := flag.NewFlagSet("sidpin", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.config, "config", "", "path of the YAML config file")
	fs.BoolVar(&f.check, "check", false, "validate the config, print a summary and exit")
	fs.BoolVar(&f.version, "version", false, "print the version and exit")
	fs.StringVar(&f.listen, "listen", "", "client listener host:port (overrides the config's listen)")
	fs.StringVar(&f.to, "to", "", "quick start without a config: comma-separated chat node URLs, e.g. http://127.0.0.1:3101,http://127.0.0.1:3102")
	fs.StringVar(&f.path, "path", "/socket.io/", "quick start: the Engine.IO path")
	return f, fs.Parse(args)
}

// run is main without the process exit, so it can be tested.
func run(args []string, stdout, stderr io.Writer) int {
	f, err := parseFlags(args, stderr)
	if err != nil {
		return 2
	}
	if f.version {
		fmt.Fprintln(stdout, "sidpin", version)
		return 0
	}
	cfg, err := loadConfig(f)
	if err != nil {
		printConfigError(stderr, err)
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	if f.check {
		fmt.Fprintln(stdout, cfg.Summary())
		return 0
	}
	log := newLogger(cfg.Log, stderr)
	var sessions *slog.Logger
	if cfg.Log.Sessions { // INFO lines, whatever log.level says
		sessions = newLogger(configs.Log{Level: "info", Format: cfg.Log.Format}, stderr)
	}
	return serve(cfg, f.listen, log, sessions)
}

var errUsage = errors.New("sidpin: give -config FILE, or -listen ADDR -to URL[,URL...] (see configs/reference.yaml)")

func loadConfig(f flags) (*configs.Config, error) {
	switch {
	case f.config != "" && f.to != "":
		return nil, fmt.Errorf("%w: -config and -to cannot be combined", errUsage)
	case f.to != "":
		listen := f.listen
		if listen == "" {
			listen = configs.Default().Listen
		}
		return configs.QuickStart(listen, strings.Split(f.to, ","), f.path)
	case f.config == "":
		return nil, errUsage
	}
	cfg, err := configs.Load(f.config)
	if err != nil {
		return nil, err
	}
	if f.listen != "" {
		cfg.Listen = f.listen
		if err := configs.Validate(cfg); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

func printConfigError(w io.Writer, err error) {
	var errs *configs.Errors
	if errors.As(err, &errs) {
		fmt.Fprintln(w, errs.Error())
		return
	}
	fmt.Fprintln(w, err)
}

func newLogger(c configs.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // validated with the config
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// newStore builds the pin table; with Redis it also returns the proxy options that share the
// per-client limits through the same Redis.
func newStore(ctx context.Context, cfg *configs.Config, log *slog.Logger) (affinity.Store, []proxy.Option, func(), error) {
	if cfg.Store.Kind == configs.StoreMemory {
		s, err := affinity.NewMemoryStore(affinity.MemoryOptions{MaxPins: cfg.Store.Memory.MaxPins})
		return s, nil, func() {}, err
	}
	rc := cfg.Store.Redis
	redislog.Use(log)
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs: rc.Addrs, MasterName: rc.MasterName, IsClusterMode: rc.Cluster,
		Username: rc.Username, Password: os.Getenv(rc.PasswordEnv), DB: rc.DB,
		DialTimeout: rc.DialTimeout.D(), ReadTimeout: rc.ReadTimeout.D(), WriteTimeout: rc.WriteTimeout.D(),
		PoolSize: rc.PoolSize,
		// A dead Redis must not hold requests: no retries that stack up, contexts bound every call.
		MaxRetries: -1, ContextTimeoutEnabled: true,
	})
	pctx, cancel := context.WithTimeout(ctx, rc.DialTimeout.D())
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		// Not fatal: sidpin serves from its cache and pins new sessions locally until Redis answers.
		log.Warn("redis does not answer at start; running degraded until it does", "addrs", rc.Addrs, "err", err)
	}
	s := affinity.NewRedisStore(rdb, affinity.RedisOptions{
		Prefix: rc.KeyPrefix, OpTimeout: rc.ReadTimeout.D() + rc.WriteTimeout.D(), Logger: log,
	})
	shared := proxy.WithSharedLimits(clientlimits.NewShared(rdb, rc.KeyPrefix, ""))
	return s, []proxy.Option{shared}, func() { rdb.Close() }, nil
}

// serve runs sidpin with cfg; listenFlag is the -listen override, kept across reloads.
func serve(cfg *configs.Config, listenFlag string, log, sessions *slog.Logger) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	store, opts, closeStore, err := newStore(ctx, cfg, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	defer closeStore()
	defer store.Close()
	if sessions != nil {
		opts = append(opts, proxy.WithSessionLog(sessions))
	}
	p, err := proxy.New(cfg, store, log, opts...)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		log.Error("cannot listen", "addr", cfg.Listen, "err", err)
		return 1
	}
	adm, err := startAdmin(cfg, p, log)
	if err != nil {
		ln.Close()
		log.Error("cannot start the admin listener", "addr", cfg.Admin.Listen, "err", err)
		return 1
	}
	p.Start(ctx)
	if cfg.File != "" && cfg.File != configs.QuickStartFile {
		r := &reloader{file: cfg.File, apply: p.Reload, log: log, listen: listenFlag}
		go r.run(ctx)
	}
	log.Info("sidpin listening", "addr", ln.Addr().String(), "config", cfg.File, "store", cfg.Store.Kind, "pools", len(cfg.Pools), "version", version)
	done := make(chan error, 1)
	go func() { done <- p.Serve(ln) }()
	select {
	case err := <-done:
		log.Error("serve", "err", err)
		return 1
	case <-ctx.Done():
	}
	grace := p.Config().Timeouts.ShutdownGrace.D()
	log.Info("shutting down: no new connections, websockets closed with 1001, held polls answered", "grace", grace)
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if adm != nil {
		go adm.Shutdown(sctx)
	}
	if err := p.Shutdown(sctx); err != nil {
		log.Warn("shutdown grace ended with requests still open; they were closed", "err", err)
	}
	log.Info("stopped")
	return 0
}

// startAdmin starts the admin listener when the config has one.
func startAdmin(cfg *configs.Config, p *proxy.Proxy, log *slog.Logger) (*admin.Server, error) {
	if cfg.Admin.Listen == "" {
		return nil, nil
	}
	token := ""
	if cfg.Admin.TokenEnv != "" {
		if token = os.Getenv(cfg.Admin.TokenEnv); token == "" {
			return nil, fmt.Errorf("admin.token_env names %s, which is empty or unset", cfg.Admin.TokenEnv)
		}
	}
	ln, err := net.Listen("tcp", cfg.Admin.Listen)
	if err != nil {
		return nil, err
	}
	s := admin.New(p, p.Pins(), token, log)
	go func() {
		if err := s.Serve(ln); err != nil {
			log.Error("admin listener stopped", "err", err)
		}
	}()
	log.Info("admin listening", "addr", ln.Addr().String(), "token", token != "")
	return s, nil
}
