package upgrade

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/engineio"
	"github.com/sidpin/sidpin/internal/testnode"
)

// closeCodeNode is echoNode that reports how each of its WebSockets ended: the close code it read
// (1006 when the stream ended without a close frame). Its WebSocket library rejects an unmasked
// client frame, so a 1001 is also a correctly masked one.
func closeCodeNode(t *testing.T) (string, <-chan int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	codes := make(chan int, 16)
	up := websocket.FastHTTPUpgrader{CheckOrigin: func(*fasthttp.RequestCtx) bool { return true }}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		_ = up.Upgrade(ctx, func(c *websocket.Conn) {
			for {
				kind, data, err := c.ReadMessage()
				if err != nil {
					var ce *websocket.CloseError
					if !errors.As(err, &ce) {
						ce = &websocket.CloseError{Code: -1}
					}
					codes <- ce.Code
					return
				}
				if c.WriteMessage(kind, data) != nil {
					return
				}
			}
		})
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return ln.Addr().String(), codes
}

// recordingNode answers the upgrade, sends first, and records what it reads until the end of the
// stream; then it closes.
type recordingNode struct {
	addr string
	mu   sync.Mutex
	got  []byte
	done chan struct{}
}

func newRecordingNode(t *testing.T, first []byte) *recordingNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	n := &recordingNode{addr: ln.Addr().String(), done: make(chan struct{})}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer close(n.done)
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		if testnode.ReadHead(br) != nil { // the upgrade request
			return
		}
		c.Write(append([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Accept: x\r\n\r\n"), first...))
		buf := make([]byte, 4096)
		for {
			k, err := br.Read(buf)
			n.mu.Lock()
			n.got = append(n.got, buf[:k]...)
			n.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return n
}

func (n *recordingNode) received() []byte {
	n.mu.Lock()
	defer n.mu.Unlock()
	return bytes.Clone(n.got)
}

// waitReceived waits until the node read want bytes.
func (n *recordingNode) waitReceived(t *testing.T, want int) {
	t.Helper()
	for end := time.Now().Add(3 * time.Second); len(n.received()) < want; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the node read %d bytes, want %d", len(n.received()), want)
		}
	}
}

// routedFront serves upgrades through a Relay, to the node route picks from the request path.
func routedFront(t *testing.T, opts Options, route func(path string) string, hooks func() Hooks) (string, *Relay) {
	t.Helper()
	opts.Logger = quiet
	r := NewRelay(opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{
		ReduceMemoryUsage: true, KeepHijackedConns: true,
		Handler: func(ctx *fasthttp.RequestCtx) {
			addr := route(string(ctx.Path()))
			_ = r.Serve(ctx, Target{Addr: addr, Dial: func() (net.Conn, error) { return net.DialTimeout("tcp", addr, 2*time.Second) }}, hooks())
		},
	}
	go srv.Serve(ln)
	t.Cleanup(func() { r.Close(); srv.Shutdown() })
	return ln.Addr().String(), r
}

// rawClient is a WebSocket client that sees the exact bytes the relay sends.
type rawClient struct {
	net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr, path string) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"))
	rc := &rawClient{Conn: c, br: bufio.NewReader(c)}
	head, status, err := readResponseHead(rc.br)
	if err != nil || status != 101 {
		t.Fatalf("upgrade: %d %v\n%s", status, err, head)
	}
	return rc
}

// echo sends a masked text frame and reads the node's echo.
func (c *rawClient) echo(t *testing.T, msg string) {
	t.Helper()
	c.Write(maskedText(msg))
	f, err := readFrame(c.br, new(frameBuf), 1<<20)
	if err != nil || string(f.payload) != msg {
		t.Fatalf("echo of %q: %q %v", msg, f.payload, err)
	}
}

// rest reads what the relay still sends, up to the end of the stream.
func (c *rawClient) rest(t *testing.T) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	b, err := io.ReadAll(c.br)
	if err != nil {
		t.Fatalf("want the end of the stream after %q: %v", b, err)
	}
	return b
}

func maskedText(msg string) []byte {
	key := []byte{1, 2, 3, 4}
	f := append([]byte{0x81, 0x80 | byte(len(msg))}, key...)
	for i := range len(msg) {
		f = append(f, msg[i]^key[i&3])
	}
	return f
}

// goAwayModes are the ways a tunnel is relayed when it is closed.
var goAwayModes = []struct {
	name     string
	opts     Options
	hooks    Hooks
	upgrade  bool // the client sends "5" first: the probe's watcher hands the tunnel over
	wantLoop bool
}{
	{"event loop", Options{}, Hooks{}, false, true},
	{"goroutines", Options{NoEventLoop: true}, Hooks{}, false, false},
	{"watching a probe", Options{}, Hooks{OnUpgrade: func() {}}, false, false}, // no "5": still watched
	{"probe handed over", Options{}, Hooks{OnUpgrade: func() {}}, true, true},
}

// waitLooped waits until the event loop took a tunnel since before (a probe hands over just after
// its "5" went through, so maybe after the echo came back).
func waitLooped(before int64) bool {
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if loopTunnels.Load() > before {
			return true
		}
	}
	return false
}

func TestShutdownSendsGoingAway(t *testing.T) {
	for _, mode := range goAwayModes {
		t.Run(mode.name, func(t *testing.T) {
			node, codes := closeCodeNode(t)
			var closes atomic.Int32
			addr, relay := routedFront(t, mode.opts, func(string) string { return node }, func() Hooks {
				h := mode.hooks
				h.OnClose = func(Ended) { closes.Add(1) }
				return h
			})
			before := loopTunnels.Load()
			c := dialRaw(t, addr, "/ws")
			if mode.upgrade {
				c.echo(t, "5")
			}
			c.echo(t, "before")
			if mode.wantLoop && !waitLooped(before) || !mode.wantLoop && loopTunnels.Load() > before {
				t.Fatalf("handed to the event loop: %v, want %v", !mode.wantLoop, mode.wantLoop)
			}
			shut := make(chan struct{})
			go func() { relay.Shutdown(); close(shut) }()
			if got := c.rest(t); !bytes.Equal(got, closeGoingAway) {
				t.Fatalf("the client read % x after Shutdown, want close 1001 (% x) then EOF", got, closeGoingAway)
			}
			c.Write(maskedCloseGoingAway()) // a client answers, then closes
			c.Close()
			wantNodeGoingAway(t, codes)
			select {
			case <-shut:
			case <-time.After(3 * time.Second):
				t.Fatal("Shutdown did not return")
			}
			if relay.Count() != 0 || closes.Load() != 1 {
				t.Fatalf("after Shutdown: %d tunnels tracked, OnClose ran %d times", relay.Count(), closes.Load())
			}
			if ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", nil); err == nil {
				ws.Close()
				t.Fatal("a WebSocket opened after Shutdown")
			}
		})
	}
}

func TestShutdownMidFrameInjectsNothing(t *testing.T) {
	nodePart := append([]byte{0x82, 100}, bytes.Repeat([]byte{'n'}, 10)...) // 10 of 100 payload bytes
	clientPart := append([]byte{0x82, 0x80 | 100, 1, 2, 3, 4}, bytes.Repeat([]byte{'c'}, 10)...)
	for _, mode := range goAwayModes {
		t.Run(mode.name, func(t *testing.T) {
			node := newRecordingNode(t, nodePart)
			addr, relay := routedFront(t, mode.opts, func(string) string { return node.addr }, func() Hooks { return mode.hooks })
			before := loopTunnels.Load()
			c := dialRaw(t, addr, "/ws")
			got := make([]byte, len(nodePart))
			if _, err := io.ReadFull(c.br, got); err != nil || !bytes.Equal(got, nodePart) {
				t.Fatalf("the node's partial frame: % x %v", got, err)
			}
			var sent []byte
			if mode.upgrade { // the node's stream stays mid-frame across the hand-over
				sent = maskedText("5")
				c.Write(sent)
				if !waitLooped(before) {
					t.Fatal("not handed over")
				}
			}
			sent = append(sent, clientPart...)
			c.Write(clientPart)
			// A probe's watcher forwards whole frames only: it holds the partial one back, so the
			// node's stream is between two frames and gets the close frame.
			watched := mode.hooks.OnUpgrade != nil && !mode.upgrade
			if !watched {
				node.waitReceived(t, len(sent))
			}
			go relay.Shutdown()
			if rest := c.rest(t); len(rest) != 0 {
				t.Fatalf("the client read % x after a partial frame", rest)
			}
			c.Close()
			select {
			case <-node.done:
			case <-time.After(3 * time.Second):
				t.Fatal("the node's stream did not end")
			}
			got = node.received()
			if watched {
				if f, err := readFrame(bytes.NewReader(got), new(frameBuf), 100); err != nil || len(f.raw) != len(got) ||
					f.opcode != opClose || !bytes.Equal(f.payload, []byte{0x03, 0xe9}) {
					t.Fatalf("the node read % x, want a masked close 1001 only", got)
				}
			} else if !bytes.Equal(got, sent) {
				t.Fatalf("the node read % x, want only what the client sent (% x)", got, sent)
			}
		})
	}
}

func TestCloseTarget(t *testing.T) {
	for _, mode := range goAwayModes[:2] {
		t.Run(mode.name, func(t *testing.T) {
			nodeA, codesA := closeCodeNode(t)
			nodeB, _ := closeCodeNode(t)
			var closes atomic.Int32
			addr, relay := routedFront(t, mode.opts, func(path string) string {
				if strings.HasSuffix(path, "/a") {
					return nodeA
				}
				return nodeB
			}, func() Hooks { return Hooks{OnClose: func(Ended) { closes.Add(1) }} })
			a1, a2, b := dialRaw(t, addr, "/ws/a"), dialRaw(t, addr, "/ws/a"), dialRaw(t, addr, "/ws/b")
			for _, c := range []*rawClient{a1, a2, b} {
				c.echo(t, "up")
			}
			if n := relay.CloseTarget(nodeA); n != 2 {
				t.Fatalf("CloseTarget closed %d tunnels, want 2", n)
			}
			for _, c := range []*rawClient{a1, a2} {
				if got := c.rest(t); !bytes.Equal(got, closeGoingAway) {
					t.Fatalf("a client of the closed node read % x, want close 1001 then EOF", got)
				}
				c.Close()
			}
			for range 2 {
				select {
				case code := <-codesA:
					if code == websocket.CloseGoingAway {
						t.Fatal("the closed node read a close frame: CloseTarget only closes its socket")
					}
				case <-time.After(3 * time.Second):
					t.Fatal("a WebSocket of the closed node did not end")
				}
			}
			b.echo(t, "still here")
			for end := time.Now().Add(3 * time.Second); closes.Load() < 2 && time.Now().Before(end); {
				time.Sleep(5 * time.Millisecond)
			}
			if closes.Load() != 2 || relay.Count() != 1 {
				t.Fatalf("OnClose ran %d times, %d tunnels tracked; want 2 and 1", closes.Load(), relay.Count())
			}
		})
	}
}

// TestShutdownBeforeTheOpenFrame: a WebSocket-first tunnel still waiting for the node's open frame
// has written only the 101 to the client: its stream is between two frames.
func TestShutdownBeforeTheOpenFrame(t *testing.T) {
	node, codes := closeCodeNode(t) // it never sends an open frame
	ended := make(chan struct{})
	addr, relay := routedFront(t, Options{}, func(string) string { return node }, func() Hooks {
		return Hooks{OnOpen: func(engineio.OpenInfo) error { return nil }, OnClose: func(Ended) { close(ended) }}
	})
	c := dialRaw(t, addr, "/ws") // the tunnel has written the 101 and waits for the open frame
	go relay.Shutdown()
	if got := c.rest(t); !bytes.Equal(got, closeGoingAway) {
		t.Fatalf("the client read % x, want close 1001 then EOF", got)
	}
	wantNodeGoingAway(t, codes)
	select {
	case <-ended:
	case <-time.After(3 * time.Second):
		t.Fatal("OnClose did not run")
	}
}

// TestShutdownUnderLoad ends tunnels while frames of every size cross them both ways: a close frame
// put anywhere but between two frames would be a protocol error for the client's WebSocket library.
func TestShutdownUnderLoad(t *testing.T) {
	for _, mode := range goAwayModes[:2] {
		t.Run(mode.name, func(t *testing.T) {
			node, _ := closeCodeNode(t)
			var closes atomic.Int32
			addr, relay := routedFront(t, mode.opts, func(string) string { return node }, func() Hooks {
				return Hooks{OnClose: func(Ended) { closes.Add(1) }}
			})
			const clients = 10
			var conns []*websocket.Conn
			for range clients {
				ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", nil)
				if err != nil {
					t.Fatal(err)
				}
				defer ws.Close()
				conns = append(conns, ws)
			}
			ends := make(chan error, clients)
			for i, ws := range conns {
				go func() { ends <- echoUntilEnd(ws, i) }()
			}
			time.Sleep(200 * time.Millisecond)
			start := time.Now()
			relay.Shutdown()
			goingAway := 0
			for range clients {
				select {
				case err := <-ends:
					var ce *websocket.CloseError
					switch {
					case errors.As(err, &ce) && ce.Code == websocket.CloseGoingAway:
						goingAway++
					case errors.As(err, &ce) && ce.Code == websocket.CloseAbnormalClosure, errors.Is(err, errWriteEnded):
					default:
						t.Fatalf("a client's WebSocket ended with %v", err)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("a client's WebSocket did not end")
				}
			}
			// Shutdown waits for the tunnels to finish only up to closeWait: on a loaded machine some
			// finish after it returned (and after their clients saw the end). None may be left behind.
			for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
				if relay.Count() == 0 && closes.Load() == clients {
					break
				}
			}
			if relay.Count() != 0 || closes.Load() != clients {
				t.Fatalf("%d tunnels tracked, OnClose ran %d times, 5 s after Shutdown", relay.Count(), closes.Load())
			}
			t.Logf("%d of %d clients read close 1001; Shutdown returned after %v", goingAway, clients, time.Since(start))
			// A stream cut mid-frame gets no 1001 by design. These clients write frames of up to 70 KB
			// back to back, so how many are between two frames at the cut depends on the machine's load:
			// 9 or 10 of 10 on a quiet box, 4 of 10 under -race with other packages' tests running (seen
			// twice in make test). What must hold is above: no client saw a protocol error; and one 1001
			// at least, or the relay never says going away under load.
			if goingAway < 1 {
				t.Fatalf("none of %d clients read close 1001", clients)
			}
		})
	}
}

var errWriteEnded = errors.New("write failed")

// echoUntilEnd writes frames of growing sizes and reads what comes back until the WebSocket ends;
// it returns the read error (errWriteEnded when a write failed first).
func echoUntilEnd(ws *websocket.Conn, seed int) error {
	read := make(chan error, 1)
	go func() {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				read <- err
				return
			}
		}
	}()
	for i := 0; i < 100000; i++ {
		msg := bytes.Repeat([]byte{byte(seed)}, (i*7919+seed)%70000)
		_ = ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if err := ws.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			select {
			case err := <-read:
				return err
			case <-time.After(5 * time.Second):
				return errWriteEnded
			}
		}
		select {
		case err := <-read:
			return err
		default:
		}
	}
	return errors.New("never ended")
}

// TestOnStartEndsOneTunnel: the function OnStart hands over ends that tunnel only (an operator's kick),
// and the relayed byte counts follow the echoes.
func TestOnStartEndsOneTunnel(t *testing.T) {
	for _, mode := range goAwayModes[:2] {
		t.Run(mode.name, func(t *testing.T) {
			node, _ := closeCodeNode(t)
			ends := make(chan func(), 2)
			addr, relay := routedFront(t, mode.opts, func(string) string { return node },
				func() Hooks { return Hooks{OnStart: func(end func()) { ends <- end }} })
			kicked, kept := dialRaw(t, addr, "/ws/a"), dialRaw(t, addr, "/ws/b")
			kicked.echo(t, "hello")
			kept.echo(t, "hello")
			toNode, toClient := relay.Relayed()
			if toNode < 2*uint64(len(maskedText("hello"))) || toClient < 2*uint64(len("hello")+2) {
				t.Fatalf("relayed %d bytes to the node and %d to the clients after two echoes", toNode, toClient)
			}
			(<-ends)() // the first tunnel to start: kicked's
			if got := kicked.rest(t); !bytes.Equal(got, closeGoingAway) {
				t.Fatalf("the kicked client read % x, want close 1001 then EOF", got)
			}
			kicked.Close()
			kept.echo(t, "still here")
		})
	}
}

// wantNodeGoingAway waits (≤ 3 s) for the node's WebSocket to end, with close code 1001.
func wantNodeGoingAway(t *testing.T, codes <-chan int) {
	t.Helper()
	select {
	case code := <-codes:
		if code != websocket.CloseGoingAway {
			t.Fatalf("the node read close code %d, want 1001", code)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the node's WebSocket did not end")
	}
}
