//go:build linux

package proxy_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/affinity"
	"github.com/sidpin/sidpin/chatnode"
	"github.com/sidpin/sidpin/configs"
	"github.com/sidpin/sidpin/internal/testredis"
	"github.com/sidpin/sidpin/proxy"
)

// rawClient is one client connection driven by hand: requests written whole, answers read one by
// one, and no goroutine of its own while it waits.
type rawClient struct {
	net.Conn
	br *bufio.Reader
}

func dialRaw(t testing.TB, base string) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{Conn: c, br: bufio.NewReader(c)}
}

// send writes one request for path (and body, for a POST).
func (c *rawClient) send(t testing.TB, method, path, body string) {
	t.Helper()
	c.sendWith(t, method, path, "", body)
}

// sendWith is send with extra header lines (each ending in CRLF).
func (c *rawClient) sendWith(t testing.TB, method, path, header, body string) {
	t.Helper()
	req := method + " " + path + " HTTP/1.1\r\nHost: sidpin.test\r\n" + header
	if method == "POST" {
		req += fmt.Sprintf("Content-Type: text/plain;charset=UTF-8\r\nContent-Length: %d\r\n", len(body))
	}
	if _, err := c.Write([]byte(req + "\r\n" + body)); err != nil {
		t.Fatal(err)
	}
}

// answer reads one answer: status, body, and whether it closes the connection.
func (c *rawClient) answer(wait time.Duration) (int, string, bool, error) {
	_ = c.SetReadDeadline(time.Now().Add(wait))
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	if err := resp.Read(c.br); err != nil {
		return 0, "", false, err
	}
	return resp.StatusCode(), string(resp.Body()), resp.ConnectionClose(), nil
}

// sessionPath is the polling URL path of sid.
func sessionPath(sid string) string { return "/socket.io/?EIO=4&transport=polling&sid=" + sid }

// openSessions opens n polling sessions through the proxy on one keep-alive connection.
func openSessions(t *testing.T, base string, n int) []string {
	t.Helper()
	c := dialRaw(t, base)
	sids := make([]string, 0, n)
	for range n {
		c.send(t, "GET", "/socket.io/?EIO=4&transport=polling", "")
		status, body, _, err := c.answer(5 * time.Second)
		i := strings.Index(body, `"sid":"`)
		if err != nil || status != 200 || i < 0 {
			t.Fatalf("handshake: %d %q %v", status, body, err)
		}
		sid := body[i+7:]
		sids = append(sids, sid[:strings.IndexByte(sid, '"')])
	}
	return sids
}

// holdPolls sends a GET for every session, each on its own connection, and waits until the proxy
// has them all in flight (the node holds them: nothing is queued for the sessions).
func holdPolls(t *testing.T, base string, sids []string) []*rawClient {
	t.Helper()
	clients := make([]*rawClient, len(sids))
	for i, sid := range sids {
		clients[i] = dialRaw(t, base)
		clients[i].send(t, "GET", sessionPath(sid), "")
	}
	time.Sleep(300 * time.Millisecond) // the requests cross the proxy to the node
	return clients
}

// proxyGoroutines counts the goroutines inside the proxy's request handling (fasthttp's server
// goroutines serving sidpin's handler): a held poll on the fasthttp path is one of them.
func proxyGoroutines() int {
	buf := make([]byte, 16<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte("sidpin/proxy.(*Proxy).")) {
			n++
		}
	}
	return n
}

func loopConfig(c *configs.Config) {
	c.Limits.PerClient.MaxConnections = 0
	c.Limits.PerClient.HandshakeRate = 0
}

// TestHeldPollsCostNoGoroutine: polls the node holds wait in the event loop, not in a goroutine
// each, and are answered there when the node answers.
func TestHeldPollsCostNoGoroutine(t *testing.T) {
	node := startChatNode(t, chatnode.NodeConfig{Name: "node1", PingInterval: 2 * time.Second, PingTimeout: 5 * time.Second})
	tp := startProxy(t, []string{node}, loopConfig)
	const n = 200
	sids := openSessions(t, tp.base, n)
	before, served := proxyGoroutines(), proxy.LoopExchanges()
	clients := holdPolls(t, tp.base, sids)
	held := proxyGoroutines() - before
	t.Logf("%d polls held: %d more goroutines in the proxy's handling", n, held)
	if held > n/20 {
		t.Fatalf("%d held polls took %d goroutines in the proxy", n, held)
	}
	for i, c := range clients {
		status, body, _, err := c.answer(5 * time.Second)
		if err != nil || status != 200 || !strings.HasPrefix(body, "2") {
			t.Fatalf("held poll %d: %d %q %v, want the node's ping", i, status, body, err)
		}
	}
	if got := proxy.LoopExchanges() - served; got < n {
		t.Fatalf("the loop served %d of the %d polls", got, n)
	}
}

// TestFrozenNodeCutsManyHeldPolls: a node that stops answering (a frozen process) is taken down by
// its checks, and every poll held on it ends at once with "Session ID unknown".
func TestFrozenNodeCutsManyHeldPolls(t *testing.T) {
	frozen := serveEach(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) }) // reads, never answers
	live := startStoppableNode(t, "node2")
	_, base, store := startManagedProxy(t, []string{frozen, live.url}, func(c *configs.Config) {
		loopConfig(c)
		c.Pools[0].Health.Interval = configs.Duration(300 * time.Millisecond)
		c.Pools[0].Health.Timeout = configs.Duration(200 * time.Millisecond)
		c.Pools[0].Health.Fall = 2
		c.Pools[0].Health.Rise = 100 // it stays down
	})
	const n = 200
	var sids []string
	for i := range n {
		sid := fmt.Sprintf("frozen-%03d", i)
		if _, _, err := store.Pin(context.Background(), affinity.Pin{SID: sid, Pool: "default", Node: "node1",
			Transport: affinity.TransportPolling, EIO: 4, TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
		sids = append(sids, sid)
	}
	start := time.Now()
	clients := holdPolls(t, base, sids)
	for i, c := range clients {
		status, body, _, err := c.answer(5 * time.Second)
		if err != nil || status != 400 || !strings.Contains(body, `"code":1`) {
			t.Fatalf("held poll %d on the frozen node: %d %q %v, want 400 code 1", i, status, body, err)
		}
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("the held polls ended after %v; the node was down after about 0.6s", took)
	}
}

// TestShutdownAnswersHeldPolls: a shutdown with 1000 polls held answers every one of them (the node
// answers within its ping interval), each answer closing its connection, and loses none.
func TestShutdownAnswersHeldPolls(t *testing.T) {
	// The node pings every session 3 s after its handshake: the polls are held when the shutdown begins.
	node := startChatNode(t, chatnode.NodeConfig{Name: "node1", PingInterval: 3 * time.Second, PingTimeout: 5 * time.Second})
	p, base := startProxyToShutDown(t, node)
	const n = 1000
	clients := holdPolls(t, base, openSessions(t, base, n))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	start := time.Now()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with %d held polls: %v", n, err)
	}
	t.Logf("shutdown with %d held polls took %v", n, time.Since(start))
	for i, c := range clients {
		status, body, closing, err := c.answer(time.Second)
		if err != nil || status != 200 || !strings.HasPrefix(body, "2") || !closing {
			t.Fatalf("held poll %d: %d %q close=%v %v, want the node's ping closing the connection", i, status, body, closing, err)
		}
		if _, err := c.br.ReadByte(); err != io.EOF {
			t.Fatalf("held poll %d: after the answer, %v, want the connection closed", i, err)
		}
	}
}

// refusingAddr is an address where connections are refused (a port just closed).
func refusingAddr(t *testing.T) string {
	dead := listen(t)
	addr := dead.Addr().String()
	dead.Close()
	return addr
}

// serveEach is a tiny misbehaving node: handle serves each connection accepted on a new listener
// (closed when handle returns, or when the test ends). It returns the listener's URL.
func serveEach(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln := listen(t)
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// startProxyToShutDown runs a loop-front proxy in front of node, for a test that shuts it down
// itself (at once: no shutdown delay).
func startProxyToShutDown(t *testing.T, node string) (*proxy.Proxy, string) {
	t.Helper()
	cfg, err := configs.QuickStart("127.0.0.1:0", []string{node}, "/socket.io/")
	if err != nil {
		t.Fatal(err)
	}
	loopConfig(cfg)
	cfg.Timeouts.ShutdownDelay = 0
	store, _ := affinity.NewMemoryStore(affinity.MemoryOptions{})
	t.Cleanup(func() { store.Close() })
	p, err := proxy.New(cfg, store, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	go p.Serve(ln)
	return p, "http://" + ln.Addr().String()
}

// TestMixedSessionsOnOneConnection: a browser sends requests of several sessions on one kept-alive
// connection while their polls are held on others; each request reaches its own session's node.
func TestMixedSessionsOnOneConnection(t *testing.T) {
	tp := startProxy(t, threeNodes(t, chatnode.NodeConfig{PingInterval: 20 * time.Second}), loopConfig)
	sids := openSessions(t, tp.base, 6)
	polls := holdPolls(t, tp.base, sids)
	mixed := dialRaw(t, tp.base)
	for _, sid := range sids {
		mixed.send(t, "POST", sessionPath(sid), "40")
		if status, body, _, err := mixed.answer(5 * time.Second); err != nil || status != 200 || body != "ok" {
			t.Fatalf("POST 40 for %s on the shared connection: %d %q %v", sid, status, body, err)
		}
	}
	for i, c := range polls {
		status, body, _, err := c.answer(5 * time.Second)
		if err != nil || status != 200 || !strings.HasPrefix(body, "40{") {
			t.Fatalf("held poll of %s: %d %q %v, want the CONNECT answer from its node", sids[i], status, body, err)
		}
	}
}

// TestHeldPollClientGoneClosesNodeConnection: a client that goes away while its poll is held has
// the node see its connection close, as it would without a proxy in between.
func TestHeldPollClientGoneClosesNodeConnection(t *testing.T) {
	nodeLn := listen(t)
	gotRequest, closed := make(chan struct{}, 1), make(chan struct{}, 1)
	go func() {
		c, err := nodeLn.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		var req fasthttp.Request
		if req.Read(br) != nil {
			return
		}
		gotRequest <- struct{}{}
		if _, err := br.ReadByte(); err != nil { // holds the poll until the connection ends
			closed <- struct{}{}
		}
	}()
	tp := startProxy(t, []string{"http://" + nodeLn.Addr().String()}, loopConfig)
	if _, _, err := tp.store.Pin(context.Background(), affinity.Pin{SID: "held-sid", Pool: "default", Node: "node1",
		Transport: affinity.TransportPolling, EIO: 4, TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, tp.base)
	c.send(t, "GET", sessionPath("held-sid"), "")
	select {
	case <-gotRequest:
	case <-time.After(3 * time.Second):
		t.Fatal("the poll did not reach the node")
	}
	c.Close()
	select {
	case <-closed:
	case <-time.After(3 * time.Second):
		t.Fatal("the client went away, but the node's connection stayed open")
	}
}

// TestLoopLooksUpRedisAway: a session opened through one instance is polled through another that
// shares its Redis: the second has not cached the pin, looks it up away from the loop, and serves
// the poll in the loop.
func TestLoopLooksUpRedisAway(t *testing.T) {
	node := startChatNode(t, chatnode.NodeConfig{Name: "node1", PingInterval: 20 * time.Second})
	prefix := fmt.Sprintf("looptest:%d:", time.Now().UnixNano())
	var bases []string
	for range 2 {
		cfg, err := configs.QuickStart("127.0.0.1:0", []string{node}, "/socket.io/")
		if err != nil {
			t.Fatal(err)
		}
		loopConfig(cfg)
		cfg.Store.Kind = configs.StoreRedis
		rdb := redis.NewClient(&redis.Options{Addr: testredis.Addr(t), MaxRetries: -1, ContextTimeoutEnabled: true})
		t.Cleanup(func() { rdb.Close() })
		bases = append(bases, serveProxy(t, cfg, affinity.NewRedisStore(rdb, affinity.RedisOptions{Prefix: prefix, OpTimeout: time.Second})))
	}
	opened := proxy.LoopExchanges()
	sids := openSessions(t, bases[0], 20) // admitted and pinned away from the loop, sent by it
	served := proxy.LoopExchanges()
	if served-opened < int64(len(sids)) {
		t.Fatalf("the loop sent %d of the %d handshakes", served-opened, len(sids))
	}
	c := dialRaw(t, bases[1])
	for _, sid := range sids {
		c.send(t, "POST", sessionPath(sid), "40")
		if status, body, _, err := c.answer(5 * time.Second); err != nil || status != 200 || body != "ok" {
			t.Fatalf("POST 40 for %s through the other instance: %d %q %v", sid, status, body, err)
		}
	}
	c.send(t, "GET", sessionPath("never-pinned"), "")
	if status, body, _, err := c.answer(5 * time.Second); err != nil || status != 400 || !strings.Contains(body, `"code":1`) {
		t.Fatalf("an unknown sid through the other instance: %d %q %v", status, body, err)
	}
	if got := proxy.LoopExchanges() - served; got < int64(len(sids)) {
		t.Fatalf("the loop served %d of the %d requests", got, len(sids))
	}
	// A client that closes after each request (node's XMLHttpRequest does) is answered too, after
	// the lookup, and the connection closes.
	for _, sid := range []string{sids[0], "never-pinned-either"} {
		c := dialRaw(t, bases[1])
		c.sendWith(t, "POST", sessionPath(sid), "Connection: close\r\n", "3")
		status, body, closing, err := c.answer(5 * time.Second)
		if err != nil || !closing || (sid == sids[0]) != (status == 200 && body == "ok") {
			t.Fatalf("POST with Connection: close for %s through the other instance: %d %q closing=%v %v", sid, status, body, closing, err)
		}
	}
}

// TestCompressedCloseUnpins: a node that gzips its polling answers (socket.io does above 1 KB) and
// ends the session in one: the loop reads the close packet through the compression and unpins.
func TestCompressedCloseUnpins(t *testing.T) {
	gz := func(s string) []byte {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		_, _ = io.WriteString(zw, s)
		_ = zw.Close()
		return b.Bytes()
	}
	ln := listen(t)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if !ctx.QueryArgs().Has("sid") {
			ctx.SetBodyString(`0{"sid":"gz-sid","upgrades":[],"pingInterval":25000,"pingTimeout":20000}`)
			return
		}
		ctx.Response.Header.Set("Content-Encoding", "gzip")
		ctx.SetBody(gz("4hello\x1e1"))
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	p := startProxy(t, []string{"http://" + ln.Addr().String()}, nil)
	c := dialRaw(t, p.base)
	c.send(t, "GET", "/socket.io/?EIO=4&transport=polling", "")
	if status, body, _, err := c.answer(5 * time.Second); err != nil || status != 200 || !strings.Contains(body, "gz-sid") {
		t.Fatalf("handshake: %d %q %v", status, body, err)
	}
	served := proxy.LoopExchanges()
	c.send(t, "GET", sessionPath("gz-sid"), "")
	if status, _, _, err := c.answer(5 * time.Second); err != nil || status != 200 {
		t.Fatalf("GET: %d %v", status, err)
	}
	if proxy.LoopExchanges() == served {
		t.Fatal("the GET did not go through the loop")
	}
	waitFor(t, "the pin of a session closed in a gzip answer is removed", func() bool {
		_, ok, _ := p.store.Lookup(context.Background(), "gz-sid")
		return !ok
	})
}

// TestExpectContinueOnTheLoopFront: a POST that waits for "100 Continue" before its body gets it
// (the loop hands it to fasthttp, which sends it) and is relayed.
func TestExpectContinueOnTheLoopFront(t *testing.T) {
	node := startChatNode(t, chatnode.NodeConfig{Name: "node1", PingInterval: 20 * time.Second})
	p := startProxy(t, []string{node}, nil)
	sid := openSessions(t, p.base, 1)[0]
	c := dialRaw(t, p.base)
	head := "POST " + sessionPath(sid) + " HTTP/1.1\r\nHost: sidpin.test\r\nContent-Type: text/plain;charset=UTF-8\r\n" +
		"Content-Length: 2\r\nExpect: 100-continue\r\n\r\n"
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	line, err := c.br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		t.Fatalf("waited for 100 Continue, got %q %v", line, err)
	}
	if _, err := c.br.ReadString('\n'); err != nil { // the blank line after it
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "40"); err != nil {
		t.Fatal(err)
	}
	if status, body, _, err := c.answer(5 * time.Second); err != nil || status != 200 || body != "ok" {
		t.Fatalf("POST after 100 Continue: %d %q %v", status, body, err)
	}
}

// TestLoopOpensSessions: with the memory table the loop opens polling sessions itself, pinning each
// before its answer goes out; a node that refuses the connection is replaced by another once.
func TestLoopOpensSessions(t *testing.T) {
	live := startChatNode(t, chatnode.NodeConfig{Name: "node2", PingInterval: 20 * time.Second})
	deadAddr := refusingAddr(t) // after the live node's: its port cannot be the live one's
	p := startProxy(t, []string{"http://" + deadAddr, live}, loopConfig)
	served := proxy.LoopExchanges()
	const n = 20
	sids := openSessions(t, p.base, n)
	if got := proxy.LoopExchanges() - served; got < n {
		t.Fatalf("the loop sent %d of the %d handshakes", got, n)
	}
	for _, sid := range sids {
		pin, ok, _ := p.store.Lookup(context.Background(), sid)
		if !ok || pin.Node != "node2" || pin.Transport != affinity.TransportPolling || pin.EIO != 4 {
			t.Fatalf("pin of %s: %+v %v", sid, pin, ok)
		}
	}
}

// TestHeldHandshakeIsBounded: a node that wraps its open packet in chunk framing (1-byte chunks with
// 900-byte extensions, 250 KiB in all, the sid past the first 64 KiB) makes the loop hold at most
// bufferLimit and one read of its answer: the answer passes on whole, unpinned, instead of being held
// for all its framing.
func TestHeldHandshakeIsBounded(t *testing.T) {
	open := `0{"upgrades":[],"pad":"` + strings.Repeat("p", 200) + `","sid":"framed-sid","pingInterval":25000,"pingTimeout":20000}`
	var body bytes.Buffer
	ext := strings.Repeat("x", 900)
	for i := range len(open) {
		fmt.Fprintf(&body, "1;%s\r\n%c\r\n", ext, open[i])
	}
	body.WriteString("0\r\n\r\n")
	node := serveEach(t, func(c net.Conn) {
		var req fasthttp.Request
		if req.Read(bufio.NewReader(c)) != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
		_, _ = c.Write(body.Bytes())
	})
	p := startProxy(t, []string{node}, nil)
	c := dialRaw(t, p.base)
	c.send(t, "GET", "/socket.io/?EIO=4&transport=polling", "")
	status, got, _, err := c.answer(5 * time.Second)
	if err != nil || status != 200 || got != open {
		t.Fatalf("handshake: %d %.100q %v", status, got, err)
	}
	if _, ok, _ := p.store.Lookup(context.Background(), "framed-sid"); ok {
		t.Fatal("pinned: the loop held more than bufferLimit of the answer")
	}
}

// TestPipelinedRequests: requests written back to back before any answer (HTTP/1.1 pipelining) are
// answered in order, whether the loop serves them or hands them over.
func TestPipelinedRequests(t *testing.T) {
	node := startChatNode(t, chatnode.NodeConfig{Name: "node1", PingInterval: 20 * time.Second})
	p := startProxy(t, []string{node}, loopConfig)
	c := dialRaw(t, p.base)
	hs := "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: sidpin.test\r\n\r\n"
	plain := "GET /not-engine-io HTTP/1.1\r\nHost: sidpin.test\r\n\r\n" // not a session request
	if _, err := io.WriteString(c, hs+plain+hs); err != nil {
		t.Fatal(err)
	}
	var sids []string
	for i := range 3 {
		status, body, _, err := c.answer(5 * time.Second)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		if i == 1 {
			if status == 200 && strings.Contains(body, `"sid"`) {
				t.Fatalf("answer 1 is a handshake's: the answers are out of order")
			}
			continue
		}
		j := strings.Index(body, `"sid":"`)
		if status != 200 || j < 0 {
			t.Fatalf("answer %d: %d %q", i, status, body)
		}
		sid := body[j+7:]
		sids = append(sids, sid[:strings.IndexByte(sid, '"')])
	}
	if sids[0] == sids[1] {
		t.Fatalf("two handshakes, one sid %s", sids[0])
	}
	post := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: sidpin.test\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: 2\r\n\r\n40", sessionPath(sids[0]))
	get := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: sidpin.test\r\n\r\n", sessionPath(sids[0]))
	if _, err := io.WriteString(c, post+get); err != nil {
		t.Fatal(err)
	}
	if status, body, _, err := c.answer(5 * time.Second); err != nil || status != 200 || body != "ok" {
		t.Fatalf("pipelined POST: %d %q %v", status, body, err)
	}
	if status, body, _, err := c.answer(5 * time.Second); err != nil || status != 200 || !strings.Contains(body, "welcome") {
		t.Fatalf("pipelined GET: %d %q %v", status, body, err)
	}
}
