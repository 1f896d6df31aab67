package chatnode

import (
	"context"
	"encoding/json"
	"github.com/sidpin/sidpin/engineio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
)

// testNode runs a node on a free loopback port for the test's lifetime.
type testNode struct {
	*Node
	base string // http://127.0.0.1:PORT
}

func startNode(t *testing.T, cfg NodeConfig) *testNode {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Name == "" {
		cfg.Name = "test-node"
	}
	node, err := NewNode(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go node.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		node.Shutdown(ctx)
	})
	return &testNode{Node: node, base: "http://" + ln.Addr().String()}
}

// conformanceNode is the node the official suites expect: 300ms/200ms heartbeat, echo at /engine.io/.
func conformanceNode(t *testing.T) *testNode {
	return startNode(t, NodeConfig{Conformance: true, AllowEIO3: true, PingInterval: 300 * time.Millisecond,
		PingTimeout: 200 * time.Millisecond, ConnectTimeout: time.Second})
}

// echoNode serves the conformance endpoints with Node's default heartbeat (25 s), for tests of payloads
// and closes: with the suite's 300 ms ping, a loaded machine slips a ping into the answers they compare.
func echoNode(t *testing.T) *testNode {
	return startNode(t, NodeConfig{Conformance: true, AllowEIO3: true})
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

type reply struct {
	status int
	body   string
	header http.Header
}

func do(t *testing.T, method, url, contentType, body string) reply {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{status: resp.StatusCode, body: string(data), header: resp.Header}
}

func get(t *testing.T, url string) reply { t.Helper(); return do(t, "GET", url, "", "") }
func post(t *testing.T, url, body string) reply {
	t.Helper()
	return do(t, "POST", url, "text/plain;charset=UTF-8", body)
}

// handshake opens a polling session and returns its sid and the base URL of its requests.
func handshake(t *testing.T, base, path, eio string) (sid, url string) {
	t.Helper()
	r := get(t, base+path+"?EIO="+eio+"&transport=polling")
	if r.status != 200 {
		t.Fatalf("handshake: %d %s", r.status, r.body)
	}
	body := r.body
	if strings.HasPrefix(eio, "3") {
		body = body[strings.Index(body, ":")+1:]
	}
	open := parseOpenPacket(t, body)
	return open.SID, base + path + "?EIO=" + eio + "&transport=polling&sid=" + open.SID
}

type openData struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int      `json:"pingInterval"`
	PingTimeout  int      `json:"pingTimeout"`
	MaxPayload   int      `json:"maxPayload"`
}

// parseOpenPacket reads "0{...}" (possibly followed by more packets) strictly: exactly Node's keys.
func parseOpenPacket(t *testing.T, packet string) openData {
	t.Helper()
	if !strings.HasPrefix(packet, "0{") {
		t.Fatalf("not an open packet: %q", packet)
	}
	dec := json.NewDecoder(strings.NewReader(packet[1:]))
	var keys map[string]json.RawMessage
	if err := dec.Decode(&keys); err != nil {
		t.Fatalf("open packet %q: %v", packet, err)
	}
	if len(keys) != 5 {
		t.Fatalf("open packet must have exactly sid, upgrades, pingInterval, pingTimeout, maxPayload: %q", packet)
	}
	var o openData
	raw, _ := json.Marshal(keys)
	_ = json.Unmarshal(raw, &o)
	if o.SID == "" {
		t.Fatalf("open packet without sid: %q", packet)
	}
	return o
}

func wsURL(base string) string { return "ws" + strings.TrimPrefix(base, "http") }

func dialWS(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", url, err, status)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readFrame reads the next frame within 2s.
func readFrame(t *testing.T, c *websocket.Conn) (int, string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	kind, data, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	return kind, string(data)
}

func expectText(t *testing.T, c *websocket.Conn, want string) {
	t.Helper()
	kind, got := readFrame(t, c)
	if kind != websocket.TextMessage || got != want {
		t.Fatalf("frame = (%d) %q, want text %q", kind, got, want)
	}
}

func sendText(t *testing.T, c *websocket.Conn, text string) {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(text)); err != nil {
		t.Fatal(err)
	}
}

// expectClosed waits (up to d) for the server to close the WebSocket.
func expectClosed(t *testing.T, c *websocket.Conn, d time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("websocket still open after %s", d)
			}
			return
		}
	}
}

func engineIOMessage(s string) enginePacket { return enginePacket{Type: 4, Data: []byte(s)} }

type enginePacket = engineio.Packet
