package upgrade

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sidpin/sidpin/internal/testnode"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// echoNode is a WebSocket echo server (the relay moves bytes; Engine.IO is tested in package proxy).
func echoNode(t *testing.T) string {
	t.Helper()
	return wsNode(t, func(c *websocket.Conn) {
		c.SetReadLimit(8 << 20)
		for {
			kind, data, err := c.ReadMessage()
			if err != nil || c.WriteMessage(kind, data) != nil {
				return
			}
		}
	})
}

// wsNode serves WebSockets with serve on loopback until the test ends.
func wsNode(t *testing.T, serve func(*websocket.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := websocket.FastHTTPUpgrader{CheckOrigin: func(*fasthttp.RequestCtx) bool { return true }}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { _ = up.Upgrade(ctx, serve) }}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return ln.Addr().String()
}

// relayFront serves upgrades through a Relay the way sidpin's proxy does.
func relayFront(t *testing.T, node string, opts Options, hooks func() Hooks) (string, *Relay) {
	t.Helper()
	addr, r := routedFront(t, opts, func(string) string { return node }, hooks)
	return "ws://" + addr + "/ws", r
}

func echo(t *testing.T, c *websocket.Conn, msg []byte) {
	t.Helper()
	if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(15 * time.Second)) // a hang guard: -race and parallel packages slow it down
	_, got, err := c.ReadMessage()
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo of %d bytes: got %d bytes, %v", len(msg), len(got), err)
	}
}

func TestRelayModes(t *testing.T) {
	node := echoNode(t)
	for _, mode := range []struct {
		name     string
		opts     Options
		wantLoop bool
	}{{"event loop", Options{}, true}, {"goroutines", Options{NoEventLoop: true}, false}} {
		t.Run(mode.name, func(t *testing.T) {
			var closed sync.WaitGroup
			url, relay := relayFront(t, node, mode.opts, func() Hooks {
				closed.Add(1)
				return Hooks{OnClose: func(Ended) { closed.Done() }}
			})
			before := loopTunnels.Load()
			var wg sync.WaitGroup
			for i := 0; i < 20; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					c, _, err := websocket.DefaultDialer.Dial(url, nil)
					if err != nil {
						t.Error(err)
						return
					}
					defer c.Close()
					echo(t, c, []byte("hello"))
					echo(t, c, bytes.Repeat([]byte{byte(i)}, 3<<20)) // larger than the socket buffers: backpressure
					echo(t, c, []byte(strings.Repeat("x", 1000)))
				}(i)
			}
			wg.Wait()
			if got := loopTunnels.Load() - before; (got == 20) != mode.wantLoop {
				t.Fatalf("%d tunnels went to the event loop", got)
			}
			waitClosed(t, &closed)
			if relay.Count() != 0 {
				t.Fatalf("%d tunnels still tracked", relay.Count())
			}
		})
	}
}

func waitClosed(t *testing.T, wg *sync.WaitGroup) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("OnClose did not run for every tunnel")
	}
}

func TestRelayCloseEndsLoopedTunnels(t *testing.T) {
	node := echoNode(t)
	var closed sync.WaitGroup
	url, relay := relayFront(t, node, Options{}, func() Hooks { closed.Add(1); return Hooks{OnClose: func(Ended) { closed.Done() }} })
	var conns []*websocket.Conn
	for i := 0; i < 5; i++ {
		c, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		echo(t, c, []byte("up"))
		conns = append(conns, c)
	}
	relay.Close()
	waitClosed(t, &closed)
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, _, err := c.ReadMessage(); err == nil {
			t.Fatal("client still connected after Close")
		}
	}
}

func TestRelayRefusalPassesThrough(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetStatusCode(400)
		ctx.SetContentType("text/html")
		ctx.SetBodyString("Session ID unknown")
	}}
	go srv.Serve(ln)
	defer srv.Shutdown()
	var refused string
	url, _ := relayFront(t, ln.Addr().String(), Options{}, func() Hooks {
		return Hooks{OnRefused: func(status int, body []byte) { refused = string(body) }}
	})
	_, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err == nil || resp == nil || resp.StatusCode != 400 {
		t.Fatalf("want the node's 400, got %v %v", err, resp)
	}
	if body, _ := io.ReadAll(resp.Body); string(body) != "Session ID unknown" || refused != "Session ID unknown" {
		t.Fatalf("body %q, hook saw %q", body, refused)
	}
}

func TestReadFrame(t *testing.T) {
	masked := []byte{0x81, 0x81, 1, 2, 3, 4, '5' ^ 1}
	f, err := readFrame(bytes.NewReader(masked), new(frameBuf), 100)
	if err != nil || !f.textIs("5") || !bytes.Equal(f.raw, masked) {
		t.Fatalf("masked 5: %+v %v", f, err)
	}
	long := append([]byte{0x82, 126, 0x01, 0x00}, bytes.Repeat([]byte{7}, 256)...)
	if f, err := readFrame(bytes.NewReader(long), new(frameBuf), 1000); err != nil || len(f.raw) != len(long) || f.opcode != 0x2 {
		t.Fatalf("256-byte binary: %v %v", len(f.raw), err)
	}
	if _, err := readFrame(bytes.NewReader(long), new(frameBuf), 100); err != errFrameTooLarge {
		t.Fatalf("limit: %v", err)
	}
	if _, err := readFrame(bytes.NewReader([]byte{0x81}), new(frameBuf), 100); err == nil {
		t.Fatal("truncated frame accepted")
	}
}

func TestRelayIdleTimeout(t *testing.T) {
	node := echoNode(t)
	for _, mode := range []struct {
		name string
		opts Options
	}{{"event loop", Options{IdleTimeout: 300 * time.Millisecond}}, {"goroutines", Options{IdleTimeout: 300 * time.Millisecond, NoEventLoop: true}}} {
		t.Run(mode.name, func(t *testing.T) {
			var closed sync.WaitGroup
			url, _ := relayFront(t, node, mode.opts, func() Hooks { closed.Add(1); return Hooks{OnClose: func(Ended) { closed.Done() }} })
			busy, _, err := websocket.DefaultDialer.Dial(url, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer busy.Close()
			quiet, _, err := websocket.DefaultDialer.Dial(url, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer quiet.Close()
			echo(t, quiet, []byte("once"))
			for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
				echo(t, busy, []byte("still here")) // traffic keeps this one open
			}
			_ = quiet.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, _, err := quiet.ReadMessage(); err == nil || strings.Contains(err.Error(), "timeout") {
				t.Fatalf("the idle tunnel is still open: %v", err)
			}
			echo(t, busy, []byte("after"))
		})
	}
}

// halfClosingNode answers the upgrade, sends one frame, then shuts its write side and keeps the socket.
func halfClosingNode(t *testing.T) string {
	t.Helper()
	return testnode.Serve(t, func(c *net.TCPConn) {
		buf := make([]byte, 4096)
		c.Read(buf) // the upgrade request
		c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: x\r\n\r\n\x81\x02hi"))
		c.CloseWrite()
		time.Sleep(10 * time.Second) // never closes its read side on its own
		c.Close()
	})
}

func TestRelayEndsHalfClosedTunnels(t *testing.T) {
	node := halfClosingNode(t)
	for _, mode := range []struct {
		name string
		opts Options
	}{{"event loop", Options{}}, {"goroutines", Options{NoEventLoop: true}}} {
		t.Run(mode.name, func(t *testing.T) {
			ended := make(chan struct{})
			url, _ := relayFront(t, node, mode.opts, func() Hooks { return Hooks{OnClose: func(Ended) { close(ended) }} })
			c, err := net.Dial("tcp", strings.TrimPrefix(strings.TrimSuffix(url, "/ws"), "ws://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close() // the client never closes before the end: only the grace can end it
			c.Write([]byte("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"))
			select {
			case <-ended:
			case <-time.After(5 * time.Second):
				t.Fatal("a tunnel whose node half-closed never ended")
			}
		})
	}
}

// oneEchoNode echoes one message, then closes its WebSocket when closeAfter, else keeps echoing.
func oneEchoNode(t *testing.T, closeAfter bool) string {
	t.Helper()
	return wsNode(t, func(c *websocket.Conn) {
		defer c.Close()
		for {
			kind, data, err := c.ReadMessage()
			if err != nil || c.WriteMessage(kind, data) != nil || closeAfter {
				return
			}
		}
	})
}

// TestTunnelEndedSays checks what OnClose hears: the bytes each way, and which peer ended first.
func TestTunnelEndedSays(t *testing.T) {
	msg := bytes.Repeat([]byte("x"), 1000)
	for _, mode := range []struct {
		name string
		opts Options
	}{{"event loop", Options{}}, {"goroutines", Options{NoEventLoop: true}}} {
		for _, how := range []string{"client closes", "node closes", "client's close frame, then the node closes"} {
			nodeFirst := how == "node closes"
			t.Run(mode.name+"/"+how, func(t *testing.T) {
				ended := make(chan Ended, 1)
				url, _ := relayFront(t, oneEchoNode(t, nodeFirst), mode.opts, func() Hooks {
					return Hooks{OnClose: func(e Ended) { ended <- e }}
				})
				ws, _, err := websocket.DefaultDialer.Dial(url, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer ws.Close()
				time.Sleep(50 * time.Millisecond) // the loop takes the tunnel
				echo(t, ws, msg)
				switch how {
				case "client closes":
					ws.Close()
				case "client's close frame, then the node closes":
					// The node answers it by closing its TCP connection first: the client still ended it.
					_ = ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
				}
				var e Ended
				select {
				case e = <-ended:
				case <-time.After(10 * time.Second):
					t.Fatal("OnClose did not run")
				}
				// The client's frames are masked (1000 bytes + a 8-byte header), the node's are not.
				if e.NodeFirst != nodeFirst || e.ToNode < 1008 || e.ToClient < 1004 || e.ToNode > 1200 || e.ToClient > 1200 {
					t.Fatalf("OnClose heard %+v; want NodeFirst %v and about 1000 bytes each way", e, nodeFirst)
				}
			})
		}
	}
}
