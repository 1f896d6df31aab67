// Command loadgen is the load generator of the whole-process proxy benchmark (bench/run.sh).
//
// It speaks Engine.IO v4 to an echo endpoint (`chatnode -conformance`, directly or through a proxy)
// and only ever to a loopback address. Every mode is bounded in count and in time.
//
//	loadgen -mode polling -addr 127.0.0.1:PORT -c 50 -n 2000   # C clients × N HTTP requests (POST/GET pairs)
//	loadgen -mode ws      -addr 127.0.0.1:PORT -c 50 -n 2000   # C WebSockets × N echo round trips
//	loadgen -mode idle    -addr 127.0.0.1:PORT -c 3000 -hold 30s # C idle WebSockets held for -hold
//	loadgen -mode held    -addr 127.0.0.1:PORT -c 3000 -hold 10s # C polling GETs held by the node, then released
//	loadgen -mode handshake -addr 127.0.0.1:PORT -c 50 -n 6000   # N new sessions (new connection, handshake, POST), C at a time
//	loadgen -mode freeport -c 3                                  # print C free loopback TCP ports
//
// The last line of a run is machine-readable: `RESULT key=value ...` (see README.md). In idle mode a
// `READY opened=N failed=F` line is printed as soon as every dial has finished, so that a driver can
// sample the proxy's memory while the connections are held; held mode prints it once every held GET is sent.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

type config struct {
	mode     string
	addr     string
	path     string
	c        int
	n        int
	size     int
	maxDur   time.Duration
	hold     time.Duration
	dialC    int
	timeout  time.Duration
	maxErrLg int
	sources  int
	tls      bool
}

func main() {
	var cfg config
	flag.StringVar(&cfg.mode, "mode", "", "polling | ws | idle | held | handshake | freeport")
	flag.StringVar(&cfg.addr, "addr", "127.0.0.1:3000", "target host:port (loopback only)")
	flag.StringVar(&cfg.path, "path", "/engine.io/", "Engine.IO path")
	flag.IntVar(&cfg.c, "c", 50, "polling: virtual clients; ws: connections; idle: WebSockets to hold; held: polling GETs to hold; handshake: concurrent new clients; freeport: ports to print")
	flag.IntVar(&cfg.n, "n", 2000, "polling: HTTP requests per client after the handshake (POST+GET pairs, rounded up to even); ws: echo round trips per connection; handshake: new sessions in all")
	flag.IntVar(&cfg.size, "size", 64, "message payload bytes (after the Engine.IO type digit '4')")
	flag.DurationVar(&cfg.maxDur, "max-duration", 2*time.Minute, "hard cap on the load phase; clients stop when it is reached (counted as timed_out)")
	flag.DurationVar(&cfg.hold, "hold", 30*time.Second, "idle, held: how long to hold the WebSockets or polls once all are open (held: keep it below the node's pingInterval)")
	flag.IntVar(&cfg.dialC, "dial-concurrency", 64, "idle, held: parallel dials while opening (held: also the connections of the release POSTs)")
	flag.DurationVar(&cfg.timeout, "timeout", 60*time.Second, "per HTTP request / per WebSocket read or dial")
	flag.IntVar(&cfg.maxErrLg, "log-errors", 5, "print at most this many distinct errors to stderr")
	flag.BoolVar(&cfg.tls, "tls", false, "speak TLS to the target (any certificate accepted: the bench's own, on loopback)")
	flag.IntVar(&cfg.sources, "sources", 1, "spread connections over this many loopback source addresses (127.0.1.1, 127.0.1.2, ...; 1: 127.0.0.1), as many clients would come from")
	flag.Parse()

	if cfg.mode == "freeport" {
		if err := freePorts(cfg.c); err != nil {
			fatalf("%v", err)
		}
		return
	}
	if err := checkLoopback(cfg.addr); err != nil {
		fatalf("%v", err)
	}
	if cfg.c < 1 || cfg.n < 1 || cfg.size < 0 || cfg.size > 1<<20 {
		fatalf("bad -c/-n/-size")
	}
	if cfg.maxDur <= 0 || cfg.maxDur > 30*time.Minute {
		fatalf("-max-duration must be in (0, 30m]")
	}
	if cfg.hold < 0 || cfg.hold > 30*time.Minute {
		fatalf("-hold must be in [0, 30m]")
	}
	if !strings.HasPrefix(cfg.path, "/") {
		cfg.path = "/" + cfg.path
	}

	var err error
	switch cfg.mode {
	case "polling":
		err = runPolling(cfg)
	case "ws":
		err = runWS(cfg)
	case "idle":
		err = runIdle(cfg)
	case "held":
		err = runHeld(cfg)
	case "handshake":
		err = runHandshake(cfg)
	default:
		fatalf("unknown -mode %q (polling | ws | idle | held | handshake | freeport)", cfg.mode)
	}
	if err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "loadgen: "+format+"\n", a...)
	os.Exit(1)
}

// checkLoopback refuses any target that is not on this machine's loopback.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %v", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-addr %q: only loopback addresses (127.0.0.0/8, ::1, localhost) are allowed", addr)
	}
	return nil
}

// freePorts prints n distinct free TCP ports on 127.0.0.1 (held open together so they differ).
func freePorts(n int) error {
	if n < 1 || n > 100 {
		return errors.New("freeport: -c must be 1..100")
	}
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		lns = append(lns, ln)
		fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	}
	return nil
}

// payloadPacket is the Engine.IO message packet sent by every mode: '4' followed by size bytes.
func payloadPacket(size int) []byte {
	p := make([]byte, 1+size)
	p[0] = '4'
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	for i := 1; i < len(p); i++ {
		p[i] = alphabet[i%len(alphabet)]
	}
	return p
}

// deadlineCtx bounds the load phase.
func deadlineCtx(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
