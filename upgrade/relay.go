package upgrade

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/engineio"
	"github.com/sidpin/sidpin/internal/hophdr"
)

// Target is the node a WebSocket goes to.
type Target struct {
	Addr string                   // host:port, which CloseTarget matches
	Dial func() (net.Conn, error) // the connection to the node, TLS included (the node's transport)
}

// Hooks let the caller follow a tunnel's Engine.IO session without knowing WebSocket framing.
// Every hook may be nil.
type Hooks struct {
	// OnOpen receives the open packet of a WebSocket-first session, read from the node's first frame,
	// before that frame reaches the client. An error closes the tunnel (the client will retry).
	OnOpen func(engineio.OpenInfo) error
	// OnUpgrade runs when the client sends "5" on a probe: the session has moved to this WebSocket.
	// Setting it makes the relay watch the client's frames until then.
	OnUpgrade func()
	// OnRefused receives a node's non-101 answer to the upgrade (passed on to the client unchanged).
	OnRefused func(status int, body []byte)
	// OnStart runs when a tunnel's stream begins (after the 101 and, for WebSocket-first, OnOpen) with
	// a function that ends the tunnel as CloseTarget does (an operator's kick).
	OnStart func(end func())
	// OnClose runs once when a tunnel (the node answered 101) ends, however early, with how it went.
	OnClose func(Ended)
	// Touch runs every TouchEvery while the tunnel is open (it keeps the session's pin alive).
	Touch func()
	// OnNodeFailed hears what the node did wrong after its 101 (no open frame in time); it wraps
	// ErrNoAnswer.
	OnNodeFailed func(err error)
}

// Ended is how a tunnel went: the stream bytes it relayed each way (the 101 not included), and
// whether the node ended it first (its close frame, the end of its stream, or a failure) rather than
// the client. When sidpin ended the tunnel (a kick, a shutdown), NodeFirst tells nothing: the caller
// that ended it knows why.
type Ended struct {
	ToClient, ToNode uint64
	NodeFirst        bool
	Idle             bool // the relay closed it after timeouts.websocket_idle without a byte either way
}

// Options configure a Relay.
type Options struct {
	HandshakeTimeout time.Duration // the node's 101 and, for WebSocket-first, its open frame; default 10s
	ProbeTimeout     time.Duration // a probe's wait for the client's "5" after the 101; default 10s
	MaxFrame         int           // largest frame the watcher reads whole; default 2 MiB
	TouchEvery       time.Duration // default 10s
	// IdleTimeout closes a tunnel that moved no byte either way for that long (0: never). Engine.IO
	// heartbeats cross every pingInterval, so it only ends tunnels whose peers are gone.
	IdleTimeout time.Duration
	// NoEventLoop relays every tunnel with two goroutines instead of handing established tunnels to
	// the epoll event loop (for comparison; TLS clients always use goroutines).
	NoEventLoop bool
	// CloseInLoop says that the hooks' OnClose never waits (no I/O: the memory pin table), so the
	// event loop runs a tunnel's end itself instead of starting a goroutine for it.
	CloseInLoop bool
	Logger      *slog.Logger
}

// Relay forwards WebSocket upgrades to nodes and relays the tunnels; it tracks them for shutdown.
type Relay struct {
	opts atomic.Pointer[Options]

	mu      sync.Mutex
	tunnels map[*tunnel]struct{}
	stop    chan struct{}
	bytes   relayedBytes
}

// Errors of Serve, wrapping the cause, so that the caller can tell what the node did.
var (
	// ErrDial means the node could not be reached; nothing was sent to it.
	ErrDial = errors.New("upgrade: cannot reach the node")
	// ErrNoAnswer means the node took the upgrade request but gave no answer head: the cause is an
	// io.EOF, a reset or a timeout (HandshakeTimeout).
	ErrNoAnswer = errors.New("upgrade: the node did not answer")
	// ErrNotHTTP means the node answered something that is not an HTTP response.
	ErrNotHTTP = errors.New("upgrade: the node's answer is not HTTP")
)

// NewRelay returns a relay; Shutdown or Close ends its tunnels.
func NewRelay(opts Options) *Relay {
	r := &Relay{tunnels: map[*tunnel]struct{}{}, stop: make(chan struct{})}
	r.Reconfigure(opts)
	go r.touchLoop()
	return r
}

// Reconfigure applies new options (a reloaded config): tunnels read them when they next need one,
// so a probe or an open frame already being waited for keeps its deadline.
func (r *Relay) Reconfigure(opts Options) {
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = 10 * time.Second
	}
	if opts.ProbeTimeout <= 0 {
		opts.ProbeTimeout = 10 * time.Second
	}
	if opts.MaxFrame <= 0 {
		opts.MaxFrame = 2 << 20
	}
	if opts.TouchEvery <= 0 {
		opts.TouchEvery = 10 * time.Second
	}
	if opts.IdleTimeout > 0 {
		opts.TouchEvery = min(opts.TouchEvery, max(opts.IdleTimeout/4, 10*time.Millisecond))
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	r.opts.Store(&opts)
}

// options are the options in force.
func (r *Relay) options() *Options { return r.opts.Load() }

// Serve forwards the upgrade request in ctx to target. On a 101 it hijacks the client connection
// and relays until either side ends; otherwise the node's answer goes to the client as it is.
// It returns ErrDial (wrapped) when the node cannot be reached, after answering 502.
func (r *Relay) Serve(ctx *fasthttp.RequestCtx, target Target, hooks Hooks) error {
	node, err := target.Dial()
	if err != nil {
		ctx.Error("sidpin: the chat node cannot be reached", fasthttp.StatusBadGateway)
		return fmt.Errorf("%w %s: %w", ErrDial, target.Addr, err)
	}
	_ = node.SetDeadline(time.Now().Add(r.options().HandshakeTimeout))
	req := requestBuffers.Get().(*bytes.Buffer)
	req.Reset()
	writeUpgradeRequest(req, &ctx.Request)
	_, err = node.Write(req.Bytes())
	requestBuffers.Put(req)
	if err != nil {
		node.Close()
		ctx.Error("sidpin: the chat node failed during the upgrade", fasthttp.StatusBadGateway)
		return fmt.Errorf("%w: write to %s: %w", ErrNoAnswer, target.Addr, err)
	}
	br := nodeReaders.Get().(*bufio.Reader)
	br.Reset(node)
	head, status, err := readResponseHead(br)
	if err != nil {
		putNodeReader(br)
		node.Close()
		ctx.Error("sidpin: the chat node failed during the upgrade", fasthttp.StatusBadGateway)
		return fmt.Errorf("answer of %s: %w", target.Addr, err)
	}
	if status != fasthttp.StatusSwitchingProtocols {
		defer node.Close()
		defer putNodeReader(br)
		return r.passRefusal(ctx, br, head, status, hooks)
	}
	_ = node.SetDeadline(time.Time{})
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(client net.Conn) {
		// The server keeps hijacked connections (KeepHijackedConns), so this callback returns at once
		// and fasthttp frees the request context; the tunnel lives in its own two goroutines.
		go newTunnel(r, target.Addr, client, node, br, hooks).run(head)
	})
	return nil
}

// writeUpgradeRequest writes the client's upgrade request for the node: the same method, URI and headers
// (Host kept, hop-by-hop dropped, Connection/Upgrade restored), without Sec-WebSocket-Extensions, so
// that frames stay uncompressed and the relay can read the Engine.IO packets it watches.
func writeUpgradeRequest(b *bytes.Buffer, req *fasthttp.Request) {
	b.Write(req.Header.Method())
	b.WriteByte(' ')
	b.Write(req.Header.RequestURI())
	b.WriteString(" HTTP/1.1\r\nHost: ")
	b.Write(req.Header.Host())
	b.WriteString("\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n")
	for k, v := range req.Header.All() {
		if skipUpgradeHeader(k) {
			continue
		}
		b.Write(k)
		b.WriteString(": ")
		b.Write(v)
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
}

// requestBuffers hold the upgrade requests being written to nodes: no garbage per upgrade.
var requestBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// upgradeSkipped are the client headers not copied into the node's upgrade request besides the
// hop-by-hop ones (Connection and Upgrade among them, written first as the upgrade needs them): Host
// is written first too, Content-Length means nothing here, and Sec-WebSocket-Extensions would
// enable compression, which would hide the frames the relay watches.
var upgradeSkipped = []string{"Host", "Sec-Websocket-Extensions", "Content-Length"}

func skipUpgradeHeader(name []byte) bool {
	if hophdr.Is(name) {
		return true
	}
	for _, skip := range upgradeSkipped {
		if bytes.EqualFold(name, []byte(skip)) {
			return true
		}
	}
	return false
}

// nodeReaders hold the readers that parse a node's answer to an upgrade. A tunnel gives its reader
// back once the bytes it holds are forwarded, so thousands of upgrades leave no garbage behind.
var nodeReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}

func putNodeReader(br *bufio.Reader) {
	br.Reset(nil)
	nodeReaders.Put(br)
}

// maxHead bounds the node's response head.
const maxHead = 64 << 10

// readResponseHead reads the status line and headers, returning their exact bytes and the status.
func readResponseHead(br *bufio.Reader) ([]byte, int, error) {
	var head []byte
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if len(head) == 0 && len(line) == 0 {
				return nil, 0, fmt.Errorf("%w: %w", ErrNoAnswer, err)
			}
			if !mayBeHTTP(append(head, line...)) {
				return nil, 0, fmt.Errorf("%w: %w", ErrNotHTTP, err)
			}
			return nil, 0, fmt.Errorf("upgrade: the node's answer head: %w", err)
		}
		head = append(head, line...)
		if len(head) > maxHead {
			return nil, 0, errors.New("response head too large")
		}
		if len(line) <= 2 && len(head) > len(line) { // the blank line after the headers
			break
		}
	}
	if len(head) < 12 || !bytes.HasPrefix(head, []byte("HTTP/1.")) || head[8] != ' ' {
		return nil, 0, fmt.Errorf("%w: %.40q", ErrNotHTTP, head)
	}
	status, err := strconv.Atoi(string(head[9:12]))
	if err != nil || status < 100 {
		return nil, 0, fmt.Errorf("%w: status line %.40q", ErrNotHTTP, head)
	}
	return head, status, nil
}

// mayBeHTTP reports whether b is the start of an HTTP response, as far as it goes.
func mayBeHTTP(b []byte) bool {
	n := min(len(b), 5)
	return string(b[:n]) == "HTTP/"[:n]
}

// passRefusal gives the client the node's non-101 answer (status, content type and a bounded body).
func (r *Relay) passRefusal(ctx *fasthttp.RequestCtx, br *bufio.Reader, head []byte, status int, hooks Hooks) error {
	var resp fasthttp.Response
	if err := resp.Header.Read(bufio.NewReader(bytes.NewReader(head))); err != nil {
		return fmt.Errorf("upgrade: parse refusal: %w", err)
	}
	n := resp.Header.ContentLength()
	if n < 0 || n > maxHead {
		n = 0
	}
	body := make([]byte, n)
	_, _ = io.ReadFull(br, body)
	ctx.SetStatusCode(status)
	ctx.Response.Header.SetContentTypeBytes(resp.Header.ContentType())
	ctx.SetConnectionClose()
	ctx.SetBody(body)
	if hooks.OnRefused != nil {
		hooks.OnRefused(status, body)
	}
	return nil
}

// relayedBytes counts the bytes a relay moved each way on its tunnels.
type relayedBytes struct{ toClient, toNode atomic.Uint64 }

// Relayed returns the bytes relayed so far towards the nodes and towards the clients.
func (r *Relay) Relayed() (toNode, toClient uint64) {
	return r.bytes.toNode.Load(), r.bytes.toClient.Load()
}

// Count is the number of open tunnels.
func (r *Relay) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.tunnels)
}

// Close ends every open tunnel at once, closing its sockets, and stops the relay: later upgrades
// are closed as soon as the node accepts them. Shutdown is the graceful way.
func (r *Relay) Close() {
	for _, t := range r.stopAndList() {
		t.close() // the copies or the event loop see the end and finish the tunnel
	}
}

// Shutdown ends every open tunnel as a server going away and stops the relay: the client reads a
// close frame with status 1001, the node a masked one (each only if its stream is between two
// frames), then both sockets end. A probe still waiting for the client's "5" gets it first (up to
// probeShutdownWait): engine.io-client leaves a session frozen when its probe closes between "3probe"
// and "5". It returns once every tunnel finished (OnClose ran), or a little after closeWait (plus that
// wait) if some did not.
func (r *Relay) Shutdown() {
	wait := closeWait + 250*time.Millisecond
	for _, t := range r.stopAndList() {
		if t.isProbing() {
			wait = closeWait + 250*time.Millisecond + probeShutdownWait
		}
		t.shutDown()
	}
	r.waitEmpty(time.Now().Add(wait))
}

// probeShutdownWait bounds how long a shutdown lets a probe wait for its "5", which engine.io-client
// sends as soon as its poll in flight returns (the node answers it at once with a noop on "2probe").
const probeShutdownWait = time.Second

// CloseTarget ends the tunnels to the node at addr (gone or removed): their clients read a close
// frame with status 1001 (when between two frames) and both sockets end, at most closeWait later.
// It returns how many tunnels it ends, without waiting for them.
func (r *Relay) CloseTarget(addr string) int {
	var ending []*tunnel
	r.mu.Lock()
	for t := range r.tunnels {
		if t.target == addr {
			ending = append(ending, t)
		}
	}
	r.mu.Unlock()
	for _, t := range ending {
		t.goAway(false)
	}
	return len(ending)
}

// stopAndList stops the relay (no new tunnel, no more touches) and lists the open tunnels.
func (r *Relay) stopAndList() []*tunnel {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	all := make([]*tunnel, 0, len(r.tunnels))
	for t := range r.tunnels {
		all = append(all, t)
	}
	return all
}

// waitEmpty waits until no tunnel is tracked, or until deadline.
func (r *Relay) waitEmpty(deadline time.Time) {
	for r.Count() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

func (r *Relay) touchLoop() {
	for {
		select {
		case <-r.stop:
			return
		case <-time.After(r.options().TouchEvery): // re-read each round: a reload may change it
		}
		r.mu.Lock()
		touches := make([]func(), 0, len(r.tunnels))
		var idle []*tunnel
		cutoff := time.Now().Add(-r.options().IdleTimeout).UnixNano()
		for t := range r.tunnels {
			if t.hooks.Touch != nil {
				touches = append(touches, t.hooks.Touch)
			}
			if r.options().IdleTimeout > 0 && t.active.Load() < cutoff {
				idle = append(idle, t)
			}
		}
		r.mu.Unlock()
		for _, touch := range touches {
			touch()
		}
		for _, t := range idle {
			r.options().Logger.Debug("closing an idle websocket tunnel", "idle_timeout", r.options().IdleTimeout)
			t.idleClosed.Store(true)
			t.close()
		}
	}
}

// track adds or removes a tunnel; adding fails once the relay is stopped, so that a tunnel whose
// upgrade raced with Close or Shutdown does not escape them.
func (r *Relay) track(t *tunnel, open bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !open {
		delete(r.tunnels, t)
		return true
	}
	select {
	case <-r.stop:
		return false
	default:
	}
	r.tunnels[t] = struct{}{}
	return true
}
