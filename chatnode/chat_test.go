package chatnode

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/sidpin/sidpin/internal/testredis"
)

// chatClient is a minimal Socket.IO client over a direct WebSocket, for the chat tests.
type chatClient struct {
	t    *testing.T
	ws   *websocket.Conn
	id   string // Socket.IO socket id
	node string // from welcome
}

func joinChat(t *testing.T, n *testNode) *chatClient {
	t.Helper()
	ws := sioConn(t, n)
	sendText(t, ws, "40")
	_, frame := readFrame(t, ws)
	var connect struct{ SID string }
	if !strings.HasPrefix(frame, "40") || json.Unmarshal([]byte(frame[2:]), &connect) != nil {
		t.Fatalf("CONNECT reply %q", frame)
	}
	c := &chatClient{t: t, ws: ws, id: connect.SID}
	var welcome struct{ Node string }
	c.expectEvent("welcome", &welcome)
	c.node = welcome.Node
	return c
}

// expectEvent skips heartbeats and reads the next event, which must be name; its first arg goes to v.
func (c *chatClient) expectEvent(name string, v any) {
	c.t.Helper()
	for {
		_, frame := readFrame(c.t, c.ws)
		if frame == "2" {
			sendText(c.t, c.ws, "3")
			continue
		}
		var args []json.RawMessage
		if !strings.HasPrefix(frame, "42") || json.Unmarshal([]byte(frame[2:]), &args) != nil || len(args) < 2 {
			c.t.Fatalf("want event %s, got %q", name, frame)
		}
		if string(args[0]) != `"`+name+`"` {
			c.t.Fatalf("want event %s, got %q", name, frame)
		}
		if err := json.Unmarshal(args[1], v); err != nil {
			c.t.Fatal(err)
		}
		return
	}
}

// expectNothing checks that no event arrives within d (heartbeats aside).
func (c *chatClient) expectNothing(d time.Duration) {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(d))
	_, data, err := c.ws.ReadMessage()
	if err == nil && string(data) != "2" {
		c.t.Fatalf("unexpected frame %q", data)
	}
}

type chatMessage struct {
	Node string          `json:"node"`
	From string          `json:"from"`
	Msg  json.RawMessage `json:"msg"`
	TS   int64           `json:"ts"`
}

func twoNodes(t *testing.T) (*testNode, *testNode) {
	addr := testredis.Addr(t)
	channel := fmt.Sprintf("chat-test-%s-%d", t.Name(), time.Now().UnixNano())
	a := startNode(t, NodeConfig{Name: "node-a", RedisAddr: addr, RedisChannel: channel})
	b := startNode(t, NodeConfig{Name: "node-b", RedisAddr: addr, RedisChannel: channel})
	return a, b
}

func TestChatAcrossNodesThroughRedis(t *testing.T) {
	a, b := twoNodes(t)
	alice, bob := joinChat(t, a), joinChat(t, b)
	if alice.node != "node-a" || bob.node != "node-b" {
		t.Fatalf("welcome nodes %q %q", alice.node, bob.node)
	}
	sendText(t, alice.ws, `427["sendMessage","hello from a"]`)
	for _, c := range []*chatClient{alice, bob} {
		var m chatMessage
		if c == alice {
			// The ack and the local delivery race; both must come.
			_, first := readFrame(t, c.ws)
			_, second := readFrame(t, c.ws)
			frames := first + "\n" + second
			if !strings.Contains(frames, `437[{"node":"node-a"}]`) || !strings.Contains(frames, `"msg":"hello from a"`) {
				t.Fatalf("sender frames: %s", frames)
			}
			continue
		}
		c.expectEvent("message", &m)
		if m.Node != "node-a" || m.From != alice.id || string(m.Msg) != `"hello from a"` || m.TS < time.Now().Add(-time.Minute).UnixMilli() {
			t.Fatalf("bob got %+v", m)
		}
	}
}

func TestChatRooms(t *testing.T) {
	a, b := twoNodes(t)
	inA, inB, outside := joinChat(t, a), joinChat(t, b), joinChat(t, b)
	for _, c := range []*chatClient{inA, inB} {
		sendText(t, c.ws, `421["join","r1"]`)
		expectText(t, c.ws, `431[{"node":"`+c.node+`","room":"r1"}]`)
	}
	sendText(t, inA.ws, `42["sendMessage",{"room":"r1","msg":{"text":"psst"}}]`)
	for _, c := range []*chatClient{inA, inB} {
		var m chatMessage
		c.expectEvent("message", &m)
		if string(m.Msg) != `{"text":"psst"}` || m.Node != "node-a" {
			t.Fatalf("room message %+v", m)
		}
	}
	outside.expectNothing(300 * time.Millisecond)
	sendText(t, inB.ws, `422["leave","r1"]`)
	expectText(t, inB.ws, `432[{"node":"node-b","room":"r1"}]`)
	sendText(t, inA.ws, `42["sendMessage",{"room":"r1","msg":"again"}]`)
	var m chatMessage
	inA.expectEvent("message", &m)
	inB.expectNothing(300 * time.Millisecond)
}

func TestChatBinaryAcrossNodes(t *testing.T) {
	a, b := twoNodes(t)
	sender, receiver := joinChat(t, a), joinChat(t, b)
	sendText(t, sender.ws, `451-["sendMessage",{"_placeholder":true,"num":0}]`)
	sendBinary(t, sender.ws, "\x00\xff\x10")
	for _, c := range []*chatClient{sender, receiver} {
		_, frame := readFrame(t, c.ws)
		if !strings.HasPrefix(frame, `451-["message",{"node":"node-a","from":"`+sender.id+`","msg":{"_placeholder":true,"num":0},"ts":`) {
			t.Fatalf("binary broadcast %q", frame)
		}
		expectBinary(t, c.ws, "\x00\xff\x10")
	}
	sendText(t, receiver.ws, `451-3["echo",{"_placeholder":true,"num":0},"x"]`)
	sendBinary(t, receiver.ws, "\x01")
	expectText(t, receiver.ws, `461-3[{"_placeholder":true,"num":0},"x"]`)
	expectBinary(t, receiver.ws, "\x01")
}

func TestChatWithoutRedisWorksAlone(t *testing.T) {
	n := startNode(t, NodeConfig{Name: "solo"})
	c1, c2 := joinChat(t, n), joinChat(t, n)
	sendText(t, c1.ws, `42["sendMessage","hi"]`)
	for _, c := range []*chatClient{c1, c2} {
		var m chatMessage
		c.expectEvent("message", &m)
		if m.Node != "solo" || string(m.Msg) != `"hi"` {
			t.Fatalf("%+v", m)
		}
	}
	if got := n.chat.Sockets(); got != 2 {
		t.Fatalf("Sockets() = %d", got)
	}
}

func TestHealthAndPage(t *testing.T) {
	n := startNode(t, NodeConfig{Name: "n1", ClientJS: "web/index.html"})
	if r := get(t, n.base+"/healthz"); r.status != 200 || !strings.HasPrefix(r.body, "ok n1") {
		t.Fatalf("healthz %d %q", r.status, r.body)
	}
	if r := get(t, n.base+"/"); r.status != 200 || !strings.Contains(r.body, "/assets/socket.io.min.js") {
		t.Fatalf("page %d", r.status)
	}
	if r := get(t, n.base+"/assets/socket.io.min.js"); r.status != 200 {
		t.Fatalf("client bundle %d", r.status)
	}
	missing := startNode(t, NodeConfig{ClientJS: "/nonexistent.js"})
	if r := get(t, missing.base+"/assets/socket.io.min.js"); r.status != 404 || !strings.Contains(r.body, "make e2e-deps") {
		t.Fatalf("missing bundle %d %q", r.status, r.body)
	}
	if r := get(t, n.base+"/nope"); r.status != 404 {
		t.Fatalf("unknown path %d", r.status)
	}
}

// TestChatV2ClientIDIsTheSid: socket.io-client v2 takes the Engine.IO sid as its socket id, so
// "from" must be that sid for messages of EIO3 clients.
func TestChatV2ClientIDIsTheSid(t *testing.T) {
	n := startNode(t, NodeConfig{Name: "n", AllowEIO3: true})
	sid, url := handshake(t, n.base, "/socket.io/", "3&b64=1")
	if r := post(t, url, v3Payload(`42["sendMessage","hi"]`)); r.body != "ok" {
		t.Fatalf("POST %q", r.body)
	}
	if r := get(t, url); !strings.Contains(r.body, `"from":"`+sid+`"`) {
		t.Fatalf("from is not the sid %s: %q", sid, r.body)
	}
}

func TestChatPeersWithoutRedis(t *testing.T) {
	b := startNode(t, NodeConfig{Name: "node-b"})
	a := startNode(t, NodeConfig{Name: "node-a", Peers: []string{b.base}})
	alice, bob := joinChat(t, a), joinChat(t, b)
	sendText(t, alice.ws, `42["sendMessage","over http"]`)
	var m chatMessage
	bob.expectEvent("message", &m)
	if m.Node != "node-a" || string(m.Msg) != `"over http"` {
		t.Fatalf("bob got %+v", m)
	}
}
