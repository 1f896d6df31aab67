package chatnode

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/sidpin/sidpin/engineio"
)

// sioConn opens a WebSocket Engine.IO session on /socket.io/ and returns it after the open packet.
func sioConn(t *testing.T, n *testNode) *websocket.Conn {
	t.Helper()
	c := dialWS(t, wsURL(n.base)+"/socket.io/?EIO=4&transport=websocket")
	_, open := readFrame(t, c)
	parseOpenPacket(t, open)
	return c
}

// expectConnect reads a CONNECT reply whose data has exactly the key sid.
func expectConnect(t *testing.T, c *websocket.Conn, prefix string) {
	t.Helper()
	_, frame := readFrame(t, c)
	if !strings.HasPrefix(frame, prefix+"{") {
		t.Fatalf("CONNECT reply %q, want prefix %q", frame, prefix)
	}
	var data map[string]string
	if err := json.Unmarshal([]byte(frame[len(prefix):]), &data); err != nil || len(data) != 1 || data["sid"] == "" {
		t.Fatalf("CONNECT data must be exactly {sid}: %q", frame)
	}
}

func expectBinary(t *testing.T, c *websocket.Conn, want string) {
	t.Helper()
	kind, got := readFrame(t, c)
	if kind != websocket.BinaryMessage || got != want {
		t.Fatalf("frame (%d) %q, want binary %q", kind, got, want)
	}
}

func sendBinary(t *testing.T, c *websocket.Conn, data string) {
	t.Helper()
	if err := c.WriteMessage(websocket.BinaryMessage, []byte(data)); err != nil {
		t.Fatal(err)
	}
}

func TestSocketIOConnect(t *testing.T) {
	n := startNode(t, NodeConfig{Conformance: true})
	cases := []struct{ name, send, replyPrefix, auth string }{
		{"main", "40", "40", `42["auth",{}]`},
		{"main with auth", `40{"token":"123"}`, "40", `42["auth",{"token":"123"}]`},
		{"custom", "40/custom,", "40/custom,", `42/custom,["auth",{}]`},
		{"custom with auth", `40/custom,{"token":"abc"}`, "40/custom,", `42/custom,["auth",{"token":"abc"}]`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ws := sioConn(t, n)
			sendText(t, ws, c.send)
			expectConnect(t, ws, c.replyPrefix)
			expectText(t, ws, c.auth)
		})
	}
	t.Run("unknown namespace", func(t *testing.T) {
		ws := sioConn(t, n)
		sendText(t, ws, "40/random")
		expectText(t, ws, `44/random,{"message":"Invalid namespace"}`)
	})
}

func TestSocketIOInvalidPacketsClose(t *testing.T) {
	n := startNode(t, NodeConfig{Conformance: true})
	for _, bad := range []string{"4abc", "42{}", `42abc["message-with-ack",1]`, `42["connect"]`, "45", `46-1[]`} {
		t.Run(bad, func(t *testing.T) {
			ws := sioConn(t, n)
			sendText(t, ws, "40")
			expectConnect(t, ws, "40")
			expectText(t, ws, `42["auth",{}]`)
			sendText(t, ws, bad)
			expectClosed(t, ws, 2*time.Second)
		})
	}
}

func TestSocketIONoConnectTimesOut(t *testing.T) {
	n := startNode(t, NodeConfig{Conformance: true, ConnectTimeout: 200 * time.Millisecond})
	ws := sioConn(t, n)
	expectClosed(t, ws, 2*time.Second)
}

func TestSocketIOMessages(t *testing.T) {
	n := conformanceNode(t)
	connected := func(t *testing.T) *websocket.Conn {
		ws := sioConn(t, n)
		sendText(t, ws, "40")
		expectConnect(t, ws, "40")
		expectText(t, ws, `42["auth",{}]`)
		return ws
	}
	ph := `{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}`
	t.Run("plain", func(t *testing.T) {
		ws := connected(t)
		sendText(t, ws, `42["message",1,"2",{"3":[true]}]`)
		expectText(t, ws, `42["message-back",1,"2",{"3":[true]}]`)
	})
	t.Run("binary", func(t *testing.T) {
		ws := connected(t)
		sendText(t, ws, `452-["message",1,`+ph+`]`)
		sendBinary(t, ws, "\x01\x02\x03")
		sendBinary(t, ws, "\x04\x05\x06")
		expectText(t, ws, `452-["message-back",1,`+ph+`]`)
		expectBinary(t, ws, "\x01\x02\x03")
		expectBinary(t, ws, "\x04\x05\x06")
	})
	t.Run("ack", func(t *testing.T) {
		ws := connected(t)
		sendText(t, ws, `42456["message-with-ack",1,"2",{"3":[false]}]`)
		expectText(t, ws, `43456[1,"2",{"3":[false]}]`)
	})
	t.Run("binary ack", func(t *testing.T) {
		ws := connected(t)
		sendText(t, ws, `452-789["message-with-ack",1,`+ph+`]`)
		sendBinary(t, ws, "\x01\x02\x03")
		sendBinary(t, ws, "\x04\x05\x06")
		expectText(t, ws, `462-789[1,`+ph+`]`)
		expectBinary(t, ws, "\x01\x02\x03")
		expectBinary(t, ws, "\x04\x05\x06")
	})
	t.Run("server asks for an ack", func(t *testing.T) {
		ws := connected(t)
		sendText(t, ws, `42["emit-with-ack",1,"2",{"3":[true]}]`)
		expectText(t, ws, `421["emit-with-ack",1,"2",{"3":[true]}]`)
		sendText(t, ws, `431[1,"2",{"3":[true]}]`)
		expectText(t, ws, `42["emit-with-ack",1,"2",{"3":[true]}]`)
	})
	t.Run("disconnect keeps the engine session", func(t *testing.T) {
		ws := connected(t)
		sendText(t, ws, "41")
		expectText(t, ws, "2") // the next heartbeat, not a close
		sendText(t, ws, "3")
		sendText(t, ws, "40/custom,")
		expectConnect(t, ws, "40/custom,")
		expectText(t, ws, `42/custom,["auth",{}]`)
		sendText(t, ws, "41/custom,")
		sendText(t, ws, "40")
		expectConnect(t, ws, "40")
	})
}

func TestSocketIOOverEIO3(t *testing.T) {
	n := startNode(t, NodeConfig{Conformance: true, AllowEIO3: true})
	r := get(t, n.base+"/socket.io/?EIO=3&transport=polling")
	if !strings.HasSuffix(r.body, `2:4013:42["auth",{}]`) {
		t.Fatalf("v3 handshake must carry the automatic CONNECT and the auth event: %q", r.body)
	}
	sid := parseOpenPacket(t, r.body[strings.Index(r.body, ":")+1:strings.Index(r.body, "}")+1]).SID
	url := n.base + "/socket.io/?EIO=3&transport=polling&sid=" + sid
	if p := post(t, url, v3Payload("40/custom?token=x,", `42["message","hi"]`)); p.body != "ok" {
		t.Fatalf("POST: %q", p.body)
	}
	if g := get(t, url); g.body != v3Payload("40/custom,", `42/custom,["auth",{"token":"x"}]`, `42["message-back","hi"]`) {
		t.Fatalf("GET: %q", g.body)
	}
	if p := post(t, url, v3Payload("40/random,")); p.body != "ok" {
		t.Fatalf("POST: %q", p.body)
	}
	if g := get(t, url); g.body != v3Payload(`44/random,"Invalid namespace"`) {
		t.Fatalf("v4-protocol error packet: %q", g.body)
	}
}

// v3Payload writes Engine.IO v3 text packets ("<type><data>") as a length-prefixed payload.
func v3Payload(packets ...string) string {
	pkts := make([]engineio.Packet, len(packets))
	for i, p := range packets {
		pkts[i] = engineio.Packet{Type: engineio.PacketType(p[0] - '0'), Data: []byte(p[1:])}
	}
	return string(engineio.AppendPayloadV3String(nil, pkts))
}
