package proxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/sidpin/sidpin/chatnode"
	"github.com/sidpin/sidpin/configs"
	"github.com/sidpin/sidpin/internal/testlog"
	"github.com/sidpin/sidpin/proxy"
)

// sessionLines collects a proxy's session log (JSON lines).
type sessionLines struct{ testlog.Buffer }

// of returns the lines written for sid.
func (s *sessionLines) of(t *testing.T, sid string) []map[string]any {
	t.Helper()
	text := s.String()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("session log line is not JSON: %q: %v", l, err)
		}
		if m["msg"] == "session ended" && m["sid"] == sid {
			out = append(out, m)
		}
	}
	return out
}

// await waits for sid's line (5 s at most) and checks it is the only one.
func (s *sessionLines) await(t *testing.T, sid string) map[string]any {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if ls := s.of(t, sid); len(ls) > 0 {
			t.Logf("%v", ls[0])
			time.Sleep(100 * time.Millisecond) // a second line would come now
			if ls = s.of(t, sid); len(ls) != 1 {
				t.Fatalf("%d lines for %s: %v", len(ls), sid, ls)
			}
			return ls[0]
		}
	}
	t.Fatalf("no session line for %s within 5 s", sid)
	return nil
}

type sessionEnv struct {
	p     *proxy.Proxy
	base  string
	nodes []stoppableNode
	lines *sessionLines
	stop  func() // shuts the proxy down (also at the end of the test)
}

// startSessionEnv runs nodes chat nodes (node config nc) behind a proxy with health checks, the
// node sync and the session log on.
func startSessionEnv(t *testing.T, nodes int, nc chatnode.NodeConfig, tweak func(*configs.Config)) *sessionEnv {
	t.Helper()
	env := &sessionEnv{lines: &sessionLines{}}
	var urls []string
	for i := range nodes {
		n := startStoppableNodeWith(t, nc, "node"+string(rune('1'+i)))
		env.nodes = append(env.nodes, n)
		urls = append(urls, n.url)
	}
	env.p, env.base, _, env.stop = startManagedProxyWith(t, urls, tweak,
		proxy.WithSessionLog(slog.New(slog.NewJSONHandler(env.lines, nil))))
	return env
}

// nodeOf is the node sid is pinned to.
func (e *sessionEnv) nodeOf(t *testing.T, sid string) string {
	t.Helper()
	pin, ok, err := e.p.Pins().Lookup(context.Background(), sid)
	if err != nil || !ok {
		t.Fatalf("no pin for %s: %v", sid, err)
	}
	return pin.Node
}

// openWebSocketFirst opens a WebSocket-first session and returns it with its sid.
func openWebSocketFirst(t *testing.T, base string) (*websocket.Conn, string) {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(wsURL(base)+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	open := readText(t, ws)
	i := strings.Index(open, `"sid":"`)
	if i < 0 {
		t.Fatalf("no open packet: %q", open)
	}
	sid := open[i+7:]
	return ws, sid[:strings.IndexByte(sid, '"')]
}

// TestSessionLogEndCauses ends a session each way sidpin knows and checks its one line.
func TestSessionLogEndCauses(t *testing.T) {
	proxy.SetSessionSweepEvery(50 * time.Millisecond)
	quick := chatnode.NodeConfig{PingInterval: 200 * time.Millisecond, PingTimeout: 100 * time.Millisecond}
	for _, tc := range []struct {
		name       string
		nodes      int
		node       chatnode.NodeConfig
		tweak      func(*configs.Config)
		end        func(t *testing.T, e *sessionEnv) (sid string)
		want       string // the end cause
		transports string
		minReqs    float64
		bytesIn    bool // some bytes came from the client
	}{
		{name: "client closes a polling session", nodes: 1, want: "client_close", transports: "polling", minReqs: 4, bytesIn: true,
			end: func(t *testing.T, e *sessionEnv) string {
				sid, url := openSession(t, e.base, "4")
				connectChat(t, url) // POST 40, GETs
				if r := post(t, url, "1"); r.body != "ok" {
					t.Fatalf("POST 1: %d %q", r.status, r.body)
				}
				return sid
			}},
		{name: "client closes an upgraded session", nodes: 1, want: "client_close", transports: "polling→websocket", minReqs: 4, bytesIn: true,
			end: func(t *testing.T, e *sessionEnv) string {
				ws, url, pong := openProbe(t, e.base)
				if pong != "3probe" {
					t.Fatalf("probe answered %q", pong)
				}
				_ = ws.WriteMessage(websocket.TextMessage, []byte("5"))
				_ = ws.WriteMessage(websocket.TextMessage, []byte(`42["chat","hello"]`))
				time.Sleep(100 * time.Millisecond)
				ws.Close()
				return strings.TrimPrefix(url[strings.Index(url, "sid="):], "sid=")
			}},
		{name: "node closes a polling session", nodes: 1, want: "node_close", transports: "polling", minReqs: 3, bytesIn: true,
			end: func(t *testing.T, e *sessionEnv) string {
				sid, url := openSession(t, e.base, "4")
				held := make(chan reply, 1)
				go func() { held <- doQuiet("GET", url, "") }()
				time.Sleep(100 * time.Millisecond)
				post(t, url, "zzz") // the node cannot parse it and closes the session: the held GET answers "1"
				if r := <-held; r.body != "1" {
					t.Fatalf("held GET: %d %q, want the close packet", r.status, r.body)
				}
				return sid
			}},
		{name: "node closes a WebSocket-first session", nodes: 1, want: "node_close", transports: "websocket", minReqs: 1, bytesIn: true,
			end: func(t *testing.T, e *sessionEnv) string {
				ws, sid := openWebSocketFirst(t, e.base)
				_ = ws.WriteMessage(websocket.TextMessage, []byte("zzz"))
				return sid
			}},
		{name: "the node forgot the session", nodes: 1, node: quick, want: "unknown_at_node", transports: "polling", minReqs: 2,
			tweak: func(c *configs.Config) { c.Timeouts.PinSlack = configs.Duration(time.Minute) }, // the pin outlives the node's session
			end: func(t *testing.T, e *sessionEnv) string {
				sid, url := openSession(t, e.base, "4")
				time.Sleep(500 * time.Millisecond) // the node's ping timeout ends the session
				if r := post(t, url, "40"); r.status != 400 {
					t.Fatalf("POST after the node's timeout: %d %q", r.status, r.body)
				}
				return sid
			}},
		{name: "the client vanished", nodes: 1, node: quick, want: "expired", transports: "polling", minReqs: 1,
			tweak: func(c *configs.Config) { c.Timeouts.PinSlack = configs.Duration(100 * time.Millisecond) },
			end: func(t *testing.T, e *sessionEnv) string {
				sid, _ := openSession(t, e.base, "4")
				return sid // no request after the handshake: the pin expires 400 ms later
			}},
		{name: "the node went down", nodes: 2, want: "node_down", transports: "websocket", minReqs: 1,
			end: func(t *testing.T, e *sessionEnv) string {
				_, sid := openWebSocketFirst(t, e.base)
				node := e.nodeOf(t, sid)
				e.nodes[node[len(node)-1]-'1'].stop()
				return sid
			}},
		{name: "an operator kicked it", nodes: 1, want: "kicked", transports: "polling", minReqs: 1,
			end: func(t *testing.T, e *sessionEnv) string {
				sid, _ := openSession(t, e.base, "4")
				if _, found, err := e.p.Kick(context.Background(), sid); err != nil || !found {
					t.Fatalf("kick: %v %v", found, err)
				}
				return sid
			}},
		{name: "its node was migrated", nodes: 2, want: "migrated", transports: "websocket", minReqs: 1,
			end: func(t *testing.T, e *sessionEnv) string {
				_, sid := openWebSocketFirst(t, e.base)
				if _, err := e.p.Migrate(context.Background(), "default", e.nodeOf(t, sid), 100); err != nil {
					t.Fatal(err)
				}
				return sid
			}},
		{name: "sidpin stopped", nodes: 1, want: "shutdown", transports: "polling", minReqs: 1,
			end: func(t *testing.T, e *sessionEnv) string {
				sid, _ := openSession(t, e.base, "4")
				e.stop()
				return sid
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startSessionEnv(t, tc.nodes, tc.node, tc.tweak)
			sid := tc.end(t, e)
			l := e.lines.await(t, sid)
			if l["end"] != tc.want || l["transports"] != tc.transports || l["pool"] != "default" ||
				!strings.HasPrefix(l["client"].(string), "127.0.0.1:") || l["eio"] != float64(4) || !strings.HasPrefix(l["node"].(string), "node") {
				t.Fatalf("line %v: want end %s, transports %s, pool default, client 127.0.0.1:port, eio 4", l, tc.want, tc.transports)
			}
			if reqs := l["requests"].(float64); reqs < tc.minReqs {
				t.Fatalf("line %v: %v requests, want at least %v", l, reqs, tc.minReqs)
			}
			if in, out := l["bytes_in"].(float64), l["bytes_out"].(float64); out <= 0 || (tc.bytesIn && in <= 0) {
				t.Fatalf("line %v: bytes in %v out %v", l, in, out)
			}
			start, err := time.Parse(time.RFC3339Nano, l["start"].(string))
			if err != nil || time.Since(start) > time.Minute || l["duration_ms"].(float64) < 0 {
				t.Fatalf("line %v: start %v (%v), duration %v", l, start, err, l["duration_ms"])
			}
		})
	}
}

// doQuiet is do without a testing.T, for another goroutine.
func doQuiet(method, url, body string) reply {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return reply{status: -1, body: err.Error()}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return reply{status: -1, body: err.Error()}
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return reply{status: resp.StatusCode, body: b.String()}
}

// TestSessionLogAcrossInstances: two instances share the Redis table; a session opened through A
// chats and closes through B. B writes its share with the cause it saw; A, which relayed only the
// handshake, writes "unseen" once the pin is gone.
func TestSessionLogAcrossInstances(t *testing.T) {
	proxy.SetSessionSweepEvery(50 * time.Millisecond)
	// Pins live 2 s without traffic (the node's ping values, 200 + 100 ms, plus the slack): A's record
	// is checked against the table 2 s after its last request.
	urls := []string{startStoppableNodeWith(t, chatnode.NodeConfig{PingInterval: 200 * time.Millisecond, PingTimeout: 100 * time.Millisecond}, "node1").url}
	short := func(c *configs.Config) { c.Timeouts.PinSlack = configs.Duration(1700 * time.Millisecond) }
	prefix := fmt.Sprintf("sessionlog:%d:", time.Now().UnixNano())
	linesA, linesB := &sessionLines{}, &sessionLines{}
	_, baseA := startManagedOnRedis(t, urls, prefix, short, proxy.WithSessionLog(slog.New(slog.NewJSONHandler(linesA, nil))))
	_, baseB := startManagedOnRedis(t, urls, prefix, short, proxy.WithSessionLog(slog.New(slog.NewJSONHandler(linesB, nil))))
	sid, urlA := openSession(t, baseA, "4")
	urlB := strings.Replace(urlA, baseA, baseB, 1)
	connectChat(t, urlB)
	if r := post(t, urlB, "1"); r.body != "ok" {
		t.Fatalf("POST 1 through B: %d %q", r.status, r.body)
	}
	b := linesB.await(t, sid)
	if b["end"] != "client_close" || b["requests"].(float64) < 3 || b["bytes_in"].(float64) < 3 {
		t.Fatalf("B's line %v: want client_close with B's requests (POST 40, GETs, POST 1)", b)
	}
	a := linesA.await(t, sid)
	if a["end"] != "unseen" || a["requests"].(float64) != 1 || a["bytes_out"].(float64) <= 0 {
		t.Fatalf("A's line %v: want unseen, its one request (the handshake) and its answer's bytes", a)
	}
}
