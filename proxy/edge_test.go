package proxy_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/chatnode"
	"github.com/sidpin/sidpin/configs"
)

// headerEcho is a plain HTTP backend (not Engine.IO) that answers with the headers it received, to
// see what the proxy forwards on non-Engine.IO paths.
func headerEcho(t *testing.T) string {
	t.Helper()
	ln := listen(t)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Connection", "X-Private")
		ctx.Response.Header.Set("X-Private", "node-only")
		ctx.Response.Header.Set("Keep-Alive", "timeout=5")
		ctx.SetBody(ctx.Request.Header.Header())
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return "http://" + ln.Addr().String()
}

func TestHeaderHygiene(t *testing.T) {
	p := startProxy(t, []string{headerEcho(t)}, nil)
	r := do(t, "GET", p.base+"/page", "", "", map[string]string{
		"Connection":       "X-Secret, keep-alive",
		"X-Secret":         "hop",
		"Upgrade":          "h2c",
		"Te":               "trailers",
		"X-Forwarded-For":  "10.1.2.3",
		"X-Forwarded-Host": "evil.example.org",
		"Host":             "chat.example.com",
		"Cookie":           "io=abc; sidpin_admin=secret-session; theme=dark",
		"Proxy-Connection": "keep-alive",
	})
	got := strings.ToLower(r.body)
	for _, gone := range []string{"x-secret", "upgrade:", "te:", "proxy-connection", "evil.example.org", "sidpin_admin", "secret-session"} {
		if strings.Contains(got, gone) {
			t.Errorf("hop-by-hop header %q reached the node:\n%s", gone, r.body)
		}
	}
	// A client's own X-Forwarded-For is replaced (no clients.trusted_proxies here): it cannot claim an address.
	if strings.Contains(got, "10.1.2.3") {
		t.Errorf("an untrusted client's X-Forwarded-For reached the node:\n%s", r.body)
	}
	for _, kept := range []string{"cookie: io=abc; theme=dark", "host: chat.example.com", "x-forwarded-for: 127.0.0.1", "x-forwarded-proto: http", "x-forwarded-host: chat.example.com"} {
		if !strings.Contains(got, kept) {
			t.Errorf("missing %q in what the node received:\n%s", kept, r.body)
		}
	}
	if r.header.Get("X-Private") != "" || r.header.Get("Keep-Alive") != "" {
		t.Errorf("hop-by-hop response headers reached the client: %v", r.header)
	}
}

func TestStrayUpgradeHeaderOnPolling(t *testing.T) {
	p := startProxy(t, threeNodes(t, chatnode.NodeConfig{}), nil)
	_, url := openSession(t, p.base, "4")
	r := do(t, "POST", url, "text/plain;charset=UTF-8", "40", map[string]string{"Upgrade": "websocket"})
	if r.status != 200 || r.body != "ok" {
		t.Fatalf("polling POST with a stray Upgrade header: %d %q", r.status, r.body)
	}
	// And the header is gone from what a node receives.
	echo := startProxy(t, []string{headerEcho(t)}, nil)
	r = do(t, "POST", echo.base+"/page", "text/plain", "x", map[string]string{"Upgrade": "websocket"})
	if strings.Contains(strings.ToLower(r.body), "upgrade:") {
		t.Fatalf("the node received the stray Upgrade header:\n%s", r.body)
	}
}

func TestLimits(t *testing.T) {
	p := startProxy(t, threeNodes(t, chatnode.NodeConfig{}), func(c *configs.Config) {
		c.Limits.MaxHeaderBytes = 4096
		c.Limits.MaxBodyBytes = 64 << 10
	})
	_, url := openSession(t, p.base, "4")
	body := "4" + strings.Repeat("x", 70<<10)
	req := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s",
		strings.TrimPrefix(url, p.base), len(body), body)
	// Written while the answer is read: sidpin answers 413 before the body is all sent, and a client
	// that waits to finish writing first may meet the connection's reset instead of the answer.
	if r := sendRaw(t, p.base, req); !strings.HasPrefix(r, "HTTP/1.1 413 ") {
		t.Errorf("oversized body: %.80q", r)
	}
	r := do(t, "GET", p.base+"/socket.io/?EIO=4&transport=polling", "", "", map[string]string{"X-Big": strings.Repeat("y", 8000)})
	if r.status != 431 {
		t.Errorf("oversized header: %d", r.status)
	}
}

func TestDeadNode(t *testing.T) {
	dead := listen(t)
	deadURL := "http://" + dead.Addr().String()
	dead.Close() // nothing listens there any more
	live := startChatNode(t, chatnode.NodeConfig{Name: "node2"})
	p := startProxy(t, []string{deadURL, live}, func(c *configs.Config) { c.Pools[0].Balance = configs.BalanceRoundRobin })
	for i := 0; i < 4; i++ { // every handshake lands on the live node: a refused dial is retried once
		_, url := openSession(t, p.base, "4")
		if node := connectChat(t, url); node != "node2" {
			t.Fatalf("session on %s", node)
		}
	}
}

// TestSessionOfADeadNode: a request of a session whose node died gets 502 at once and is never sent
// to another node (which does not know the session).
func TestSessionOfADeadNode(t *testing.T) {
	sidLines := func(line string) bool { return strings.Contains(line, "sid=") }
	dying, _, kill := killableFront(t, startChatNode(t, chatnode.NodeConfig{Name: "node1"}), sidLines)
	other, seen := countingFront(t, startChatNode(t, chatnode.NodeConfig{Name: "node2"}), sidLines)
	p := startProxy(t, []string{dying, other}, func(c *configs.Config) { c.Pools[0].Balance = configs.BalanceRoundRobin })
	var url string
	for range 4 { // a session on node1
		_, u := openSession(t, p.base, "4")
		if connectChat(t, u) == "node1" {
			url = u
			break
		}
	}
	if url == "" {
		t.Fatal("no session landed on node1")
	}
	before := seen.Load()
	kill()
	start := time.Now()
	r := post(t, url, `42["echo","x"]`)
	if r.status != 502 || time.Since(start) > time.Second {
		t.Fatalf("a request of the dead node's session: %d %q after %v", r.status, r.body, time.Since(start))
	}
	if n := seen.Load() - before; n != 0 {
		t.Fatalf("node2 was sent %d requests of node1's session", n)
	}
}

// TestNodeClosedIdleConnection: a node that closes idle keep-alive connections (Node does after 5 s)
// must not cost a request: the one sent on a connection the node already closed is sent again, once.
func TestNodeClosedIdleConnection(t *testing.T) {
	ln := listen(t)
	srv := &fasthttp.Server{IdleTimeout: 200 * time.Millisecond, Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("fine") }}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	p := startProxy(t, []string{"http://" + ln.Addr().String()}, nil)
	for i := 0; i < 3; i++ {
		if r := get(t, p.base+"/page"); r.status != 200 || r.body != "fine" {
			t.Fatalf("request %d: %d %q", i, r.status, r.body)
		}
		time.Sleep(400 * time.Millisecond) // the node closes the idle connection meanwhile
	}
}

// TestUpgradeHeaderHygiene: an upgrade request reaches the node without sidpin's cookie, with the
// client's X-Forwarded-Host replaced.
func TestUpgradeHeaderHygiene(t *testing.T) {
	p := startProxy(t, []string{headerEcho(t)}, nil)
	r := sendRaw(t, p.base, "GET /page HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, X-Secret\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nX-Secret: hop\r\nKeep-Alive: timeout=5\r\n"+
		"Cookie: io=abc; sidpin_admin=secret-session\r\nX-Forwarded-Host: evil.example.org\r\n\r\n")
	got := strings.ToLower(r)
	if strings.Contains(got, "secret-session") || strings.Contains(got, "evil.example.org") || !strings.Contains(got, "io=abc") ||
		strings.Contains(got, "x-secret") || strings.Contains(got, "keep-alive") {
		t.Fatalf("the node received:\n%s", r)
	}
}
