package proxy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/sidpin/sidpin/affinity"
	"github.com/sidpin/sidpin/chatnode"
	"github.com/sidpin/sidpin/configs"
	"github.com/sidpin/sidpin/internal/testredis"
	"github.com/sidpin/sidpin/proxy"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() }) // also keeps it reachable: a collected listener is closed under its test
	return ln
}

// startChatNode runs a real chat node (the reference Engine.IO server) on loopback.
func startChatNode(t testing.TB, cfg chatnode.NodeConfig) string {
	t.Helper()
	cfg.Logger = quiet
	n, err := chatnode.NewNode(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	go n.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		n.Shutdown(ctx)
	})
	return "http://" + ln.Addr().String()
}

type testProxy struct {
	base  string
	store *affinity.MemoryStore
}

func startProxy(t testing.TB, nodeURLs []string, tweak func(*configs.Config)) *testProxy {
	t.Helper()
	cfg, err := configs.QuickStart("127.0.0.1:0", nodeURLs, "/socket.io/")
	if err != nil {
		t.Fatal(err)
	}
	if tweak != nil {
		tweak(cfg)
	}
	store, err := affinity.NewMemoryStore(affinity.MemoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return &testProxy{base: serveProxy(t, cfg, store), store: store}
}

// serveProxy runs a proxy over store on a free port until the test ends; it returns the base URL.
func serveProxy(t testing.TB, cfg *configs.Config, store affinity.Store) string {
	_, addr := serveProxyLogged(t, cfg, store, quiet)
	return "http://" + addr
}

// serveProxyLogged is serveProxy with the proxy's logger, returning the proxy and its address.
func serveProxyLogged(t testing.TB, cfg *configs.Config, store affinity.Store, log *slog.Logger, opts ...proxy.Option) (*proxy.Proxy, string) {
	p, err := proxy.New(cfg, store, log, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	go p.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		p.Shutdown(ctx)
		store.Close()
	})
	return p, ln.Addr().String()
}

// startProxyWithStore is startProxy with the pin table in memory or in the test Redis.
func startProxyWithStore(t testing.TB, nodeURLs []string, kind string, tweak func(*configs.Config)) string {
	t.Helper()
	base, _ := startProxyOnStore(t, nodeURLs, kind, tweak)
	return base
}

// startProxyOnStore is startProxyWithStore, returning the pin table too.
func startProxyOnStore(t testing.TB, nodeURLs []string, kind string, tweak func(*configs.Config)) (string, affinity.Store) {
	t.Helper()
	if kind == "memory" {
		p := startProxy(t, nodeURLs, tweak)
		return p.base, p.store
	}
	cfg, err := configs.QuickStart("127.0.0.1:0", nodeURLs, "/socket.io/")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store.Kind = configs.StoreRedis // what the proxy reads to know its pins need I/O
	tweak(cfg)
	rdb := redis.NewClient(&redis.Options{Addr: testredis.Addr(t), MaxRetries: -1, ContextTimeoutEnabled: true, PoolSize: 64})
	t.Cleanup(func() { rdb.Close() })
	store := affinity.NewRedisStore(rdb, affinity.RedisOptions{Prefix: fmt.Sprintf("proxybench:%d:", time.Now().UnixNano()), OpTimeout: time.Second})
	return serveProxy(t, cfg, store), store
}

func threeNodes(t *testing.T, cfg chatnode.NodeConfig) []string {
	var urls []string
	for _, name := range []string{"node1", "node2", "node3"} {
		c := cfg
		c.Name = name
		urls = append(urls, startChatNode(t, c))
	}
	return urls
}

var client = &http.Client{Timeout: 10 * time.Second}

type reply struct {
	status int
	body   string
	header http.Header
}

func do(t *testing.T, method, url, contentType, body string, hdr map[string]string) reply {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
		if k == "Host" {
			req.Host = v
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, string(data), resp.Header}
}

func get(t *testing.T, url string) reply { t.Helper(); return do(t, "GET", url, "", "", nil) }
func post(t *testing.T, url, body string) reply {
	t.Helper()
	return do(t, "POST", url, "text/plain;charset=UTF-8", body, nil)
}

// openSession does a polling handshake through the proxy and returns the sid and session URL.
func openSession(t *testing.T, base, eio string) (string, string) {
	t.Helper()
	r := get(t, base+"/socket.io/?EIO="+eio+"&transport=polling")
	i := strings.Index(r.body, `"sid":"`)
	if r.status != 200 || i < 0 {
		t.Fatalf("handshake: %d %q", r.status, r.body)
	}
	sid := r.body[i+7:]
	sid = sid[:strings.IndexByte(sid, '"')]
	return sid, base + "/socket.io/?EIO=" + eio + "&transport=polling&sid=" + sid
}

// connectChat sends the Socket.IO CONNECT over polling and returns the node named in welcome.
func connectChat(t *testing.T, url string) string {
	t.Helper()
	if r := post(t, url, "40"); r.body != "ok" {
		t.Fatalf("POST 40: %d %q", r.status, r.body)
	}
	var body string
	for i := 0; i < 3 && !strings.Contains(body, "welcome"); i++ {
		r := get(t, url)
		if r.status != 200 {
			t.Fatalf("GET: %d %q", r.status, r.body)
		}
		body += r.body
	}
	var w struct{ Node string }
	i := strings.Index(body, `["welcome",`)
	if i < 0 || json.NewDecoder(strings.NewReader(body[i+11:])).Decode(&w) != nil {
		t.Fatalf("no welcome in %q", body)
	}
	return w.Node
}

func TestPollingSessionsStayOnTheirNode(t *testing.T) {
	p := startProxy(t, threeNodes(t, chatnode.NodeConfig{}), nil)
	seen := map[string]int{}
	for i := 0; i < 30; i++ {
		sid, url := openSession(t, p.base, "4")
		node := connectChat(t, url)
		pin, ok, _ := p.store.Lookup(context.Background(), sid)
		if !ok || pin.Node != node || pin.Transport != affinity.TransportPolling || pin.EIO != 4 {
			t.Fatalf("pin %+v (found %v) for a session on %s", pin, ok, node)
		}
		seen[node]++
		for j := 0; j < 3; j++ { // every later request reaches the same node
			if r := post(t, url, `42["echo","x"]`); r.status != 200 {
				t.Fatalf("POST %d: %d %q", j, r.status, r.body)
			}
		}
	}
	if len(seen) != 3 || seen["node1"] != 10 || seen["node2"] != 10 || seen["node3"] != 10 {
		t.Fatalf("least-sessions spread 30 sessions as %v", seen)
	}
}

// TestUnknownAndMalformedSIDs: sidpin itself answers a sid it has no pin for, or one that cannot be a
// sid, exactly as an Engine.IO node would, and sends nothing to any node.
func TestUnknownAndMalformedSIDs(t *testing.T) {
	var fronts []string
	var seen []*atomic.Int64
	for _, url := range threeNodes(t, chatnode.NodeConfig{}) {
		front, n := countingFront(t, url, func(line string) bool { return strings.Contains(line, "sid=") })
		fronts, seen = append(fronts, front), append(seen, n)
	}
	p := startProxy(t, fronts, nil)
	sid, _ := openSession(t, p.base, "4")
	unknown := `{"code":1,"message":"Session ID unknown"}`
	for _, q := range []string{
		"sid=nope", "sid=", "sid=" + sid + "&sid=" + sid, "sid=%01abc", "sid=a%20b", "sid=" + strings.Repeat("x", 200),
		"sid=%ZZ", "sid=" + sid + "x",
	} {
		r := get(t, p.base+"/socket.io/?EIO=4&transport=polling&"+q)
		if r.status != 400 || r.body != unknown || r.header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %q %q", q, r.status, r.body, r.header.Get("Content-Type"))
		}
	}
	ws := strings.Replace(p.base, "http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket&sid=nope"
	_, resp, err := websocket.DefaultDialer.Dial(ws, nil)
	if err == nil || resp == nil || resp.StatusCode != 400 {
		t.Fatalf("websocket with unknown sid: %v %v", err, resp)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "Session ID unknown" {
		t.Fatalf("websocket refusal body %q", body)
	}
	for i, n := range seen {
		if n.Load() != 0 {
			t.Errorf("node%d was sent %d requests with a sid sidpin should have answered itself", i+1, n.Load())
		}
	}
}

func TestCloseAndNodeRefusalUnpin(t *testing.T) {
	nodes := threeNodes(t, chatnode.NodeConfig{PingInterval: 200 * time.Millisecond, PingTimeout: 100 * time.Millisecond})
	p := startProxy(t, nodes, nil)
	ctx := context.Background()
	t.Run("close packet", func(t *testing.T) {
		sid, url := openSession(t, p.base, "4")
		if r := post(t, url, "1"); r.body != "ok" {
			t.Fatalf("POST 1: %q", r.body)
		}
		if _, ok, _ := p.store.Lookup(ctx, sid); ok {
			t.Fatal("pin survived the close packet")
		}
	})
	t.Run("node forgot the session", func(t *testing.T) {
		sid, url := openSession(t, p.base, "4")
		time.Sleep(400 * time.Millisecond) // the node's ping timeout ends the session
		if r := post(t, url, "40"); r.status != 400 {
			t.Fatalf("POST after the node's timeout: %d %q", r.status, r.body)
		}
		if _, ok, _ := p.store.Lookup(ctx, sid); ok {
			t.Fatal("pin survived the node's 400 code 1")
		}
	})
}

func wsURL(base string) string { return strings.Replace(base, "http", "ws", 1) }

func readText(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if string(data) != "2" { // skip heartbeats
			return string(data)
		}
		_ = c.WriteMessage(websocket.TextMessage, []byte("3"))
	}
}

// openProbe opens a polling session with a chat connection, then its probe WebSocket, and sends
// "2probe": it returns the WebSocket (closed when the test ends), the polling URL and the answer.
func openProbe(t *testing.T, base string) (*websocket.Conn, string, string) {
	t.Helper()
	sid, url := openSession(t, base, "4")
	connectChat(t, url)
	ws, _, err := websocket.DefaultDialer.Dial(wsURL(base)+"/socket.io/?EIO=4&transport=websocket&sid="+sid, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	_ = ws.WriteMessage(websocket.TextMessage, []byte("2probe"))
	return ws, url, readText(t, ws)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("%s: not within 3s", what)
}

func TestUpgradeThroughTheProxy(t *testing.T) {
	p := startProxy(t, threeNodes(t, chatnode.NodeConfig{}), nil)
	ctx := context.Background()
	sid, url := openSession(t, p.base, "4")
	node := connectChat(t, url)
	c, _, err := websocket.DefaultDialer.Dial(wsURL(p.base)+"/socket.io/?EIO=4&transport=websocket&sid="+sid, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.WriteMessage(websocket.TextMessage, []byte("2probe"))
	if got := readText(t, c); got != "3probe" {
		t.Fatalf("probe answer %q", got)
	}
	if r := get(t, url); r.body != "6" {
		t.Fatalf("GET during the upgrade: %q", r.body)
	}
	_ = c.WriteMessage(websocket.TextMessage, []byte("5"))
	waitFor(t, "pin marked upgraded", func() bool {
		pin, _, _ := p.store.Lookup(ctx, sid)
		return pin.Transport == affinity.TransportUpgraded
	})
	_ = c.WriteMessage(websocket.TextMessage, []byte(`423["echo","over ws"]`))
	if got := readText(t, c); got != `433["over ws"]` {
		t.Fatalf("echo over the tunnel: %q", got)
	}
	if r := get(t, url); r.status != 400 || !strings.Contains(r.body, `"code":3`) {
		t.Fatalf("polling after the upgrade: %d %q", r.status, r.body)
	}
	if pin, ok, _ := p.store.Lookup(ctx, sid); !ok || pin.Node != node {
		t.Fatal("a 400 code 3 after the upgrade must not unpin")
	}
	c.Close()
	waitFor(t, "unpin after the upgraded websocket closed", func() bool { _, ok, _ := p.store.Lookup(ctx, sid); return !ok })
}

func TestProbeClosedBefore5KeepsThePin(t *testing.T) {
	p := startProxy(t, threeNodes(t, chatnode.NodeConfig{}), nil)
	sid, url := openSession(t, p.base, "4")
	connectChat(t, url)
	c, _, err := websocket.DefaultDialer.Dial(wsURL(p.base)+"/socket.io/?EIO=4&transport=websocket&sid="+sid, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.WriteMessage(websocket.TextMessage, []byte("2probe"))
	readText(t, c)
	c.Close()
	time.Sleep(100 * time.Millisecond)
	if _, ok, _ := p.store.Lookup(context.Background(), sid); !ok {
		t.Fatal("a probe closed before 5 ended the session")
	}
	if r := post(t, url, `42["sendMessage","still polling"]`); r.body != "ok" {
		t.Fatalf("polling after the failed probe: %d %q", r.status, r.body)
	}
}

func TestWebSocketFirstSessionIsPinned(t *testing.T) {
	p := startProxy(t, threeNodes(t, chatnode.NodeConfig{}), nil)
	ctx := context.Background()
	c, _, err := websocket.DefaultDialer.Dial(wsURL(p.base)+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	open := readText(t, c)
	i := strings.Index(open, `"sid":"`)
	if !strings.HasPrefix(open, "0{") || i < 0 {
		t.Fatalf("open frame %q", open)
	}
	sid := open[i+7:]
	sid = sid[:strings.IndexByte(sid, '"')]
	pin, ok, _ := p.store.Lookup(ctx, sid)
	if !ok || pin.Transport != affinity.TransportWebSocket {
		t.Fatalf("websocket-first pin %+v %v", pin, ok)
	}
	_ = c.WriteMessage(websocket.TextMessage, []byte("40"))
	if got := readText(t, c); !strings.HasPrefix(got, `40{"sid":`) {
		t.Fatalf("CONNECT answer %q", got)
	}
	if got := readText(t, c); got != `42["welcome",{"node":"`+pin.Node+`"}]` {
		t.Fatalf("welcome %q from a node other than the pin's %s", got, pin.Node)
	}
	c.Close()
	waitFor(t, "unpin after the websocket-first session closed", func() bool { _, ok, _ := p.store.Lookup(ctx, sid); return !ok })
}

func TestJSONPAndEIO3(t *testing.T) {
	p := startProxy(t, threeNodes(t, chatnode.NodeConfig{AllowEIO3: true}), nil)
	r := get(t, p.base+"/socket.io/?EIO=3&transport=polling&j=0")
	i := strings.Index(r.body, `sid\":\"`)
	if !strings.HasPrefix(r.body, `___eio[0]("`) || i < 0 {
		t.Fatalf("JSONP handshake %q", r.body)
	}
	sid := r.body[i+8:]
	sid = sid[:strings.Index(sid, `\"`)]
	url := p.base + "/socket.io/?EIO=3&transport=polling&j=1&sid=" + sid
	for i := 0; i < 3; i++ {
		if r := do(t, "POST", url, "application/x-www-form-urlencoded", "d=15%3A420%5B%22echo%22%2C%22x%22%5D", nil); r.body != "ok" {
			t.Fatalf("JSONP POST %d: %d %q", i, r.status, r.body)
		}
	}
	if r := get(t, url); r.status != 200 || !strings.HasPrefix(r.body, `___eio[1]("`) {
		t.Fatalf("JSONP GET: %d %q", r.status, r.body)
	}
	if r := do(t, "POST", url, "application/x-www-form-urlencoded", "d=1%3A1", nil); r.body != "ok" {
		t.Fatalf("JSONP close: %q", r.body)
	}
	if _, ok, _ := p.store.Lookup(context.Background(), sid); ok {
		t.Fatal("JSONP close packet did not unpin")
	}
}
