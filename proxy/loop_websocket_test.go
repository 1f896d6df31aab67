//go:build linux

package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/sidpin/sidpin/affinity"
	"github.com/sidpin/sidpin/chatnode"
	"github.com/sidpin/sidpin/configs"
	"github.com/sidpin/sidpin/internal/testnode"
	"github.com/sidpin/sidpin/proxy"
)

// dialFirst opens a WebSocket-first session through base and returns it with its sid.
func dialFirst(t *testing.T, base string) (*websocket.Conn, string) {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(wsURL(base)+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	open := readText(t, c)
	i := strings.Index(open, `"sid":"`)
	if !strings.HasPrefix(open, "0{") || i < 0 {
		t.Fatalf("open frame %q", open)
	}
	sid := open[i+7:]
	return c, sid[:strings.IndexByte(sid, '"')]
}

// TestLoopOpensWebSockets: WebSocket-first sessions open in the loop (a node that refuses the
// connection replaced by another), are pinned before the client reads their sid, relay both ways,
// cost no goroutine once open, and are unpinned when they close; with the pins in memory and in Redis.
func TestLoopOpensWebSockets(t *testing.T) {
	for _, kind := range []string{"memory", "redis"} {
		t.Run(kind, func(t *testing.T) {
			live := startChatNode(t, chatnode.NodeConfig{Name: "node2", PingInterval: 20 * time.Second})
			deadAddr := refusingAddr(t)
			base, store := startProxyOnStore(t, []string{"http://" + deadAddr, live}, kind, loopConfig)
			ctx := context.Background()
			opened := proxy.LoopWebSocketOpens()
			dialFirst(t, base) // warm: the loops and the relay's touch loop start once
			goroutines := proxyGoroutines()
			const n = 40
			conns := make([]*websocket.Conn, n)
			sids := make([]string, n)
			for i := range conns {
				conns[i], sids[i] = dialFirst(t, base)
				pin, ok, err := store.Lookup(ctx, sids[i])
				if err != nil || !ok || pin.Node != "node2" || pin.Transport != affinity.TransportWebSocket || pin.EIO != 4 {
					t.Fatalf("pin of %s when its open frame was read: %+v %v %v", sids[i], pin, ok, err)
				}
			}
			if got := proxy.LoopWebSocketOpens() - opened; got != n+1 {
				t.Fatalf("the loop opened %d of the %d WebSockets", got, n+1)
			}
			if now := proxyGoroutines(); now > goroutines+2 {
				t.Fatalf("%d goroutines in the proxy with %d WebSockets open, %d with one", now, n+1, goroutines)
			}
			for i, c := range conns {
				_ = c.WriteMessage(websocket.TextMessage, []byte("40"))
				if got := readText(t, c); !strings.HasPrefix(got, `40{"sid":`) {
					t.Fatalf("CONNECT answer on %d: %q", i, got)
				}
				if got := readText(t, c); got != `42["welcome",{"node":"node2"}]` {
					t.Fatalf("welcome on %d: %q", i, got)
				}
				_ = c.WriteMessage(websocket.TextMessage, []byte(`421["echo","through the loop"]`))
				if got := readText(t, c); got != `431["through the loop"]` {
					t.Fatalf("echo on %d: %q", i, got)
				}
			}
			for _, c := range conns {
				c.Close()
			}
			for _, sid := range sids {
				waitFor(t, "unpin after the websocket closed", func() bool { _, ok, _ := store.Lookup(ctx, sid); return !ok })
			}
		})
	}
}

// TestLoopWebSocketKickAndShutdown: a WebSocket the loop opened is ended by a kick and by a shutdown
// as any tunnel is: close 1001, then the end of the stream.
func TestLoopWebSocketKickAndShutdown(t *testing.T) {
	node := startChatNode(t, chatnode.NodeConfig{Name: "node1", PingInterval: 20 * time.Second})
	p, base := startProxyToShutDown(t, node)
	opened := proxy.LoopWebSocketOpens()
	kicked, sid := dialFirst(t, base)
	stays, _ := dialFirst(t, base)
	if got := proxy.LoopWebSocketOpens() - opened; got != 2 {
		t.Fatalf("the loop opened %d of 2 WebSockets", got)
	}
	if _, found, err := p.Kick(context.Background(), sid); !found || err != nil {
		t.Fatalf("kick: %v %v", found, err)
	}
	wantGoingAway(t, kicked)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	wantGoingAway(t, stays)
}

// wantGoingAway reads c until it ends, which must be with close 1001.
func wantGoingAway(t *testing.T, c *websocket.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	for {
		_, data, err := c.ReadMessage()
		var ce *websocket.CloseError
		switch {
		case errors.As(err, &ce) && ce.Code == websocket.CloseGoingAway:
			return
		case err != nil:
			t.Fatalf("the WebSocket ended with %v, want close 1001", err)
		case string(data) == "2":
		default:
			t.Fatalf("read %q, want close 1001", data)
		}
	}
}

// oddUpgradeNode answers every request with answer (written whole), and holds the connection.
func oddUpgradeNode(t *testing.T, answer string) string {
	t.Helper()
	return serveEach(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for testnode.ReadHead(br) == nil {
			_, _ = c.Write([]byte(answer))
		}
	})
}

// TestLoopWebSocketOddNodes: a node that refuses the upgrade has its answer passed on, closing the
// connection; one that answers 101 and sends no frame gets the client a 504 at the handshake timeout;
// one that sends a first frame over the frame limit gets it a 502. Nothing is pinned.
func TestLoopWebSocketOddNodes(t *testing.T) {
	const upgradeReq = "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: sidpin.test\r\nConnection: Upgrade\r\n" +
		"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	const switching = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
	cases := []struct {
		name, answer string
		status       int
		body         string
	}{
		{"refused", "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nno", 403, "no"},
		{"silent after 101", switching, 504, "sidpin: the chat node did not answer in time"},
		{"first frame too large", switching + "\x81\x7f\x00\x00\x00\x00\x00\x10\x00\x00", 502, "sidpin: the chat node cannot be reached"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, []string{oddUpgradeNode(t, tc.answer)}, func(c *configs.Config) {
				loopConfig(c)
				c.Timeouts.Handshake = configs.Duration(300 * time.Millisecond)
				c.Limits.MaxBodyBytes = 64 << 10 // the third node's frame announces 1 MiB
			})
			c := dialRaw(t, p.base)
			exchanges := proxy.LoopExchanges()
			if _, err := c.Write([]byte(upgradeReq)); err != nil {
				t.Fatal(err)
			}
			status, body, closing, err := c.answer(3 * time.Second)
			if err != nil || status != tc.status || body != tc.body || !closing {
				t.Fatalf("answer %d %q close=%v %v, want %d %q closing", status, body, closing, err, tc.status, tc.body)
			}
			if proxy.LoopExchanges() == exchanges {
				t.Fatal("the upgrade was not served by the loop")
			}
			if n := p.store.Len(); n != 0 {
				t.Fatalf("%d pins after a failed open", n)
			}
		})
	}
}

// TestLoopWebSocketBytesDuringOpen: a client that sends a frame while its upgrade is still with the
// node (its edge spent on the client connection, which does not read then) has it delivered once the
// tunnel takes the sockets.
func TestLoopWebSocketBytesDuringOpen(t *testing.T) {
	const open = `0{"sid":"early-bytes","upgrades":[],"pingInterval":25000,"pingTimeout":20000}`
	got := make(chan []byte, 1)
	node := serveEach(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if testnode.ReadHead(br) != nil {
			return
		}
		time.Sleep(300 * time.Millisecond) // the client's frame arrives meanwhile
		_, _ = c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x81" + string(rune(len(open))) + open))
		b := make([]byte, 64)
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, _ := io.ReadAtLeast(br, b, 8)
		got <- b[:n]
	})
	p := startProxy(t, []string{node}, loopConfig)
	c := dialRaw(t, p.base)
	opened := proxy.LoopWebSocketOpens()
	_, _ = c.Write([]byte("GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: sidpin.test\r\nConnection: Upgrade\r\n" +
		"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"))
	time.Sleep(100 * time.Millisecond)                        // the request is with the node
	frame := []byte{0x81, 0x82, 1, 2, 3, 4, '4' ^ 1, '0' ^ 2} // "40", masked
	_, _ = c.Write(frame)
	select {
	case b := <-got:
		if !bytes.Equal(b, frame) {
			t.Fatalf("the node got % x, want the client's early frame % x", b, frame)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the client's frame sent during the open never reached the node")
	}
	if proxy.LoopWebSocketOpens() == opened {
		t.Fatal("the open was not the loop's")
	}
}
