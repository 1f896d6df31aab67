package proxy_test

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/sidpin/sidpin/chatnode"
	"github.com/sidpin/sidpin/configs"
)

// clientFrom returns an HTTP client whose connections come from the loopback address ip.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
}

// countingChatNode is a real chat node behind a front that counts the handshakes it is sent.
func countingChatNode(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	return countingFront(t, startChatNode(t, chatnode.NodeConfig{Name: "node1"}), func(line string) bool {
		return strings.Contains(line, "transport=") && !strings.Contains(line, "sid=")
	})
}

// countingFront relays connections to the node at url, counting the request lines that match.
func countingFront(t *testing.T, url string, match func(requestLine string) bool) (string, *atomic.Int64) {
	t.Helper()
	front, n, _ := killableFront(t, url, match)
	return front, n
}

// killableFront is countingFront with a kill: the front's listener and every connection it relays
// close at once, as when a node's process dies (a node shut down gracefully may still answer on the
// connections it has).
func killableFront(t *testing.T, url string, match func(requestLine string) bool) (string, *atomic.Int64, func()) {
	t.Helper()
	var n atomic.Int64
	var mu sync.Mutex
	var conns []net.Conn
	front := listen(t)
	go func() {
		for {
			c, err := front.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go countRequests(c, strings.TrimPrefix(url, "http://"), match, &n)
		}
	}()
	kill := func() {
		front.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}
	return "http://" + front.Addr().String(), &n, kill
}

// countRequests relays one connection to the node, counting the request lines that match.
func countRequests(c net.Conn, node string, match func(string) bool, n *atomic.Int64) {
	defer c.Close()
	up, err := net.Dial("tcp", node)
	if err != nil {
		return
	}
	defer up.Close()
	go func() { _, _ = bufio.NewReader(up).WriteTo(c); c.Close() }()
	var line []byte // the line being read, kept up to 8 KiB: request lines are short
	buf := make([]byte, 16<<10)
	for {
		k, err := c.Read(buf)
		for _, b := range buf[:k] { // every byte is relayed as it comes; lines are only watched
			if b == '\n' {
				l := string(line)
				if (strings.HasPrefix(l, "GET ") || strings.HasPrefix(l, "POST ")) && match(l) {
					n.Add(1)
				}
				line = line[:0]
			} else if len(line) < 8<<10 {
				line = append(line, b)
			}
		}
		if _, werr := up.Write(buf[:k]); werr != nil || err != nil {
			return
		}
	}
}

// TestHandshakeRatePerClient: an address over its handshake rate gets 429 with Retry-After before any
// node sees the handshake; another address is not affected, and the sessions already open go on.
func TestHandshakeRatePerClient(t *testing.T) {
	node, opened := countingChatNode(t)
	p := startProxy(t, []string{node}, func(c *configs.Config) {
		c.Limits.PerClient.HandshakeRate = 0.5
		c.Limits.PerClient.HandshakeBurst = 4
	})
	url := p.base + "/socket.io/?EIO=4&transport=polling"
	a := clientFrom("127.0.0.1")
	for i := range 6 {
		resp, err := a.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := 200
		if i >= 4 {
			want = 429
		}
		if resp.StatusCode != want {
			t.Fatalf("handshake %d: %d, want %d", i, resp.StatusCode, want)
		}
		if ra := resp.Header.Get("Retry-After"); want == 429 && (ra == "" || ra == "0") {
			t.Fatalf("429 without a useful Retry-After: %q", ra)
		}
	}
	if n := opened.Load(); n != 4 {
		t.Fatalf("the node saw %d handshakes for a burst of 4", n)
	}
	b := clientFrom("127.0.0.2")
	if resp, err := b.Get(url); err != nil || resp.StatusCode != 200 {
		t.Fatalf("another address: %v %v", resp, err)
	}
}

// TestEstablishedSessionsAreNeverRateLimited: with the bucket empty, the address's open sessions keep
// polling and posting.
func TestEstablishedSessionsAreNeverRateLimited(t *testing.T) {
	p := startProxy(t, []string{startChatNode(t, chatnode.NodeConfig{Name: "node1"})}, func(c *configs.Config) {
		c.Limits.PerClient.HandshakeRate = 0.1
		c.Limits.PerClient.HandshakeBurst = 2
	})
	var urls []string
	for range 2 {
		_, url := openSession(t, p.base, "4")
		connectChat(t, url)
		urls = append(urls, url)
	}
	if r := get(t, p.base+"/socket.io/?EIO=4&transport=polling"); r.status != 429 {
		t.Fatalf("a third handshake: %d", r.status)
	}
	for i := range 20 {
		for _, url := range urls {
			if r := post(t, url, `42["echo","x"]`); r.status != 200 {
				t.Fatalf("request %d of an open session: %d %q", i, r.status, r.body)
			}
		}
	}
}

// TestConnectionCapPerClient: an address's connections over limits.per_client.max_connections are
// refused with 429 before anything is read; its open ones work, another address is not affected,
// and a closed connection frees its slot. WebSockets count for as long as they are open, also once
// the event loop relays them.
func TestConnectionCapPerClient(t *testing.T) {
	p := startProxy(t, threeNodes(t, chatnode.NodeConfig{}), func(c *configs.Config) {
		c.Limits.PerClient.MaxConnections = 4
	})
	addr := strings.TrimPrefix(p.base, "http://")
	var held []*websocket.Conn
	for range 4 {
		ws, _, err := websocket.DefaultDialer.Dial(wsURL(p.base)+"/socket.io/?EIO=4&transport=websocket", nil)
		if err != nil {
			t.Fatal(err)
		}
		readText(t, ws) // the open packet: the tunnel is up, then handed to the event loop
		held = append(held, ws)
	}
	time.Sleep(100 * time.Millisecond) // let the tunnels reach the event loop
	if r := rawOn(t, addr, "127.0.0.1"); !strings.HasPrefix(r, "HTTP/1.1 429 ") {
		t.Fatalf("a fifth connection: %.80q", r)
	}
	if r := rawOn(t, addr, "127.0.0.3"); !strings.HasPrefix(r, "HTTP/1.1 200 ") {
		t.Fatalf("another address: %.80q", r)
	}
	held[0].Close()
	waitFor(t, "a slot freed by the closed WebSocket", func() bool {
		return strings.HasPrefix(rawOn(t, addr, "127.0.0.1"), "HTTP/1.1 200 ")
	})
	for _, ws := range held[1:] {
		ws.Close()
	}
}

// rawOn sends one request for the chat page from the loopback address ip and returns the answer.
func rawOn(t *testing.T, addr, ip string) string {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
	b := make([]byte, 200)
	n, _ := c.Read(b)
	return string(b[:n])
}
