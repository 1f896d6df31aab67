package proxy_test

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidpin/sidpin/internal/testnode"

	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/configs"
)

// Bad input from clients: each kind gets a clear answer, and nothing of it reaches a node.

// countingNode is a plain HTTP node that counts the requests it gets.
func countingNode(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	ln := listen(t)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { n.Add(1); ctx.SetBodyString("reached") }}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return "http://" + ln.Addr().String(), &n
}

// TestDotSegmentsAreRefused: a path that routing would normalise differently from what the node gets
// is refused before it reaches a node (Node's engine.io matched the raw "/socket.io/" prefix of
// "/socket.io/../x" and ran a session sidpin never pinned).
func TestDotSegmentsAreRefused(t *testing.T) {
	node, reached := countingNode(t)
	p := startProxy(t, []string{node}, nil)
	for _, path := range []string{
		"/socket.io/../x?EIO=4&transport=polling", "/socket.io/./?EIO=4&transport=polling",
		"/socket.io//?EIO=4&transport=polling", "/socket.io/%2e%2e/x?EIO=4&transport=polling",
		"/x/%2F../socket.io/?EIO=4", `/socket.io\..\x?EIO=4`,
	} {
		for _, upgrade := range []bool{false, true} {
			r := rawRequest(t, p.base, path, upgrade)
			if !strings.HasPrefix(r, "HTTP/1.1 400 ") || !strings.Contains(r, "normal form") {
				t.Errorf("%s (upgrade %v): %.120q", path, upgrade, r)
			}
		}
	}
	if n := reached.Load(); n != 0 {
		t.Fatalf("%d refused requests reached the node", n)
	}
	if r := rawRequest(t, p.base, "/page/x.js", false); !strings.Contains(r, "reached") {
		t.Fatalf("a normal path: %.120q", r)
	}
}

// rawRequest sends a request target exactly as given (Go's client would clean it) and returns the
// answer's first bytes.
func rawRequest(t *testing.T, base, target string, upgrade bool) string {
	t.Helper()
	return rawRequestWith(t, base, target, upgrade, "")
}

// rawRequestWith is rawRequest with one more header line, sent as it is.
func rawRequestWith(t *testing.T, base, target string, upgrade bool, header string) string {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	req := "GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
	if upgrade {
		req = "GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	}
	if header != "" {
		req += header + "\r\n"
	}
	_, _ = io.WriteString(c, req+"\r\n")
	b, _ := io.ReadAll(io.LimitReader(c, 4096))
	return string(b)
}

// TestMalformedHeadersAreRefused: a header name that is not a token, or a value with a control
// character, is refused by sidpin on every kind of request, never forwarded for a node to read its own way.
func TestMalformedHeadersAreRefused(t *testing.T) {
	node, reached := countingNode(t)
	p := startProxy(t, []string{node}, nil)
	for _, hdr := range []string{"X Bad: 1", "X\x01: 1", "X-Ctl: a\x00b", "Transfer Encoding: chunked"} {
		for _, target := range []string{"/page", "/socket.io/?EIO=4&transport=polling", "/socket.io/?EIO=4&transport=websocket"} {
			for _, upgrade := range []bool{false, true} {
				r := rawRequestWith(t, p.base, target, upgrade, hdr)
				if !strings.HasPrefix(r, "HTTP/1.1 400 ") {
					t.Errorf("%q on %s (upgrade %v): %.120q", hdr, target, upgrade, r)
				}
			}
		}
	}
	if n := reached.Load(); n != 0 {
		t.Fatalf("%d refused requests reached the node", n)
	}
}

// recordingHTTPNode answers every read with a 200 and records the raw bytes it received.
func recordingHTTPNode(t *testing.T) (string, func() string) {
	t.Helper()
	var mu sync.Mutex
	var all strings.Builder
	addr := testnode.Serve(t, func(c *net.TCPConn) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			mu.Lock()
			all.Write(buf[:n])
			mu.Unlock()
			if n > 0 {
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}
			if err != nil {
				return
			}
		}
	})
	return "http://" + addr, func() string { mu.Lock(); defer mu.Unlock(); return all.String() }
}

// TestRequestSmuggling: ambiguous framing never lets a second request ride inside the first one's
// body to a node. Requests with two Content-Lengths or an unknown Transfer-Encoding are refused; one
// with both Content-Length and chunked is read as chunked and its connection closed (RFC 9112 §6.1).
func TestRequestSmuggling(t *testing.T) {
	const smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	cases := []struct {
		name, req string
		refused   bool // 400, nothing forwarded
	}{
		{"CL.TE", "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, false},
		{"TE.CL", "POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n" + smuggled, false},
		{"two different CLs", "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nabcd" + smuggled, true},
		{"two equal CLs", "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd" + smuggled, true},
		{"signed CL", "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: +4\r\n\r\nabcd" + smuggled, true},
		{"obfuscated TE", "POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\nContent-Length: 4\r\n\r\nabcd" + smuggled, true},
		{"TE list", "POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + smuggled, true},
		{"two TEs", "POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n" + smuggled, true},
		{"TE with a space before the colon", "POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + smuggled, true},
		{"TE on HTTP/1.0", "POST /p HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			node, seen := recordingHTTPNode(t)
			p := startProxy(t, []string{node}, nil)
			conn, err := net.Dial("tcp", strings.TrimPrefix(p.base, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
			_, _ = io.WriteString(conn, c.req)
			answer, err := io.ReadAll(conn) // the connection must end: nothing after the first request is read
			if err != nil {
				t.Fatalf("the connection stayed open: %v (answer %.80q)", err, answer)
			}
			got := seen()
			if strings.Contains(got, "/smuggled") {
				t.Fatalf("the smuggled request reached the node:\n%s", got)
			}
			if c.refused && (!strings.HasPrefix(string(answer), "HTTP/1.1 400 ") || got != "") {
				t.Fatalf("not refused: %.80q; the node got %q", answer, got)
			}
			if strings.Count(string(answer), "HTTP/1.1 ") != 1 {
				t.Fatalf("more than one answer: %q", answer)
			}
		})
	}
}

// TestOversizeRequests: every size limit answers with its own status and nothing reaches the node.
func TestOversizeRequests(t *testing.T) {
	node, seen := recordingHTTPNode(t)
	p := startProxy(t, []string{node}, func(c *configs.Config) {
		c.Limits.MaxHeaderBytes = 4096
		c.Limits.MaxBodyBytes = 64 << 10
	})
	chunk := fmt.Sprintf("%x\r\n%s\r\n", 32<<10, strings.Repeat("c", 32<<10))
	cases := []struct{ name, req, status string }{
		{"URL", "GET /" + strings.Repeat("u", 8000) + " HTTP/1.1\r\nHost: x\r\n\r\n", "431"},
		{"headers", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("h", 8000) + "\r\n\r\n", "431"},
		{"body", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\n" + strings.Repeat("b", 70000), "413"},
		{"chunked body", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + strings.Repeat(chunk, 3) + "0\r\n\r\n", "413"},
	}
	for _, c := range cases {
		if answer := sendRaw(t, p.base, c.req); !strings.HasPrefix(answer, "HTTP/1.1 "+c.status+" ") {
			t.Errorf("%s: %.80q, want %s", c.name, answer, c.status)
		}
	}
	if got := seen(); got != "" {
		t.Fatalf("the node got:\n%.300s", got)
	}
}

// sendRaw writes req on a new connection while it reads the answer's first 512 bytes.
func sendRaw(t *testing.T, base, req string) string {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	go func() { _, _ = io.WriteString(conn, req) }()
	answer, _ := io.ReadAll(io.LimitReader(conn, 512))
	return string(answer)
}

// TestSlowloris: connections that send their request a byte at a time are closed after
// timeouts.client_read, and meanwhile other clients are served.
func TestSlowloris(t *testing.T) {
	node, _ := recordingHTTPNode(t)
	p := startProxy(t, []string{node}, func(c *configs.Config) { c.Timeouts.ClientRead = configs.Duration(500 * time.Millisecond) })
	addr := strings.TrimPrefix(p.base, "http://")
	const slow = 200
	ended := make(chan time.Duration, slow)
	start := time.Now()
	for i := range slow {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		go func() {
			req := fmt.Sprintf("GET /slow%d HTTP/1.1\r\nHost: x\r\nX-Drip: %s", i, strings.Repeat("d", 100))
			for j := 0; j < len(req); j++ { // one byte every 50 ms: 6 s for the whole head, never finished in time
				if _, err := c.Write([]byte{req[j]}); err != nil {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			ended <- time.Since(start)
		}()
	}
	for range 5 {
		if r := get(t, p.base+"/normal"); r.status != 200 {
			t.Fatalf("a normal request during the attack: %d", r.status)
		}
	}
	var last time.Duration
	for range slow {
		select {
		case d := <-ended:
			last = max(last, d)
		case <-time.After(10 * time.Second):
			t.Fatal("a slow connection was never closed")
		}
	}
	t.Logf("%d slow connections all closed within %v (client_read 500ms)", slow, last)
	if last > 4*time.Second {
		t.Fatalf("slow connections lived %v", last)
	}
}
