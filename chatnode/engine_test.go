package chatnode

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
)

func TestHandshakePollingV4(t *testing.T) {
	n := conformanceNode(t)
	r := get(t, n.base+"/engine.io/?EIO=4&transport=polling")
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("status %d, content-type %q", r.status, r.header.Get("Content-Type"))
	}
	o := parseOpenPacket(t, r.body)
	if len(o.SID) != 20 || len(o.Upgrades) != 1 || o.Upgrades[0] != "websocket" ||
		o.PingInterval != 300 || o.PingTimeout != 200 || o.MaxPayload != 1000000 {
		t.Fatalf("open packet %+v", o)
	}
}

// TestErrorAnswers checks every error of the protocol's table, in Node's form.
func TestErrorAnswers(t *testing.T) {
	n := conformanceNode(t)
	noEIO3 := startNode(t, NodeConfig{Conformance: true})
	_, sessionURL := handshake(t, n.base, "/engine.io/", "4")
	cases := []struct {
		name, method, url string
		status            int
		body              string
	}{
		{"no transport", "GET", n.base + "/engine.io/?EIO=4", 400, `{"code":0,"message":"Transport unknown"}`},
		{"unknown transport", "GET", n.base + "/engine.io/?EIO=4&transport=abc", 400, `{"code":0,"message":"Transport unknown"}`},
		{"unknown sid", "GET", n.base + "/engine.io/?EIO=4&transport=polling&sid=nope", 400, `{"code":1,"message":"Session ID unknown"}`},
		{"unknown sid POST", "POST", n.base + "/engine.io/?EIO=4&transport=polling&sid=nope", 400, `{"code":1,"message":"Session ID unknown"}`},
		{"handshake POST", "POST", n.base + "/engine.io/?EIO=4&transport=polling", 400, `{"code":2,"message":"Bad handshake method"}`},
		{"handshake PUT", "PUT", n.base + "/engine.io/?EIO=4&transport=polling", 400, `{"code":2,"message":"Bad handshake method"}`},
		{"websocket without upgrade", "GET", n.base + "/engine.io/?EIO=4&transport=websocket", 400, `{"code":3,"message":"Bad request"}`},
		{"no EIO", "GET", n.base + "/engine.io/?transport=polling", 400, `{"code":5,"message":"Unsupported protocol version"}`},
		{"EIO abc", "GET", n.base + "/engine.io/?EIO=abc&transport=polling", 400, `{"code":5,"message":"Unsupported protocol version"}`},
		{"EIO 5", "GET", n.base + "/engine.io/?EIO=5&transport=polling", 400, `{"code":5,"message":"Unsupported protocol version"}`},
		{"EIO 3 disabled", "GET", noEIO3.base + "/engine.io/?EIO=3&transport=polling", 400, `{"code":5,"message":"Unsupported protocol version"}`},
		{"other method with sid", "PUT", sessionURL, 500, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := do(t, c.method, c.url, "", "")
			if r.status != c.status || r.body != c.body {
				t.Fatalf("got %d %q, want %d %q", r.status, r.body, c.status, c.body)
			}
			if c.body != "" && r.header.Get("Content-Type") != "application/json" {
				t.Fatalf("content-type %q", r.header.Get("Content-Type"))
			}
		})
	}
}

func TestRefusedUpgradeIsPlainText(t *testing.T) {
	n := conformanceNode(t)
	_, resp, err := websocket.DefaultDialer.Dial(wsURL(n.base)+"/engine.io/?EIO=4&transport=websocket&sid=nope", nil)
	if err == nil || resp == nil || resp.StatusCode != 400 {
		t.Fatalf("want a 400 refusal, got %v %v", err, resp)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/html" {
		t.Fatalf("content-type %q", ct)
	}
}

func TestPollingEcho(t *testing.T) {
	cases := []struct{ name, eio, body string }{
		{"v4 text", "4", "4hello"},
		{"v4 several", "4", "4test1\x1e4test2\x1e4test3"},
		{"v4 text and binary", "4", "4hello\x1ebAQIDBA=="},
		{"v4 unicode", "4", "4€ and 😀"},
		{"v3 text", "3", "6:4hello"},
		{"v3 several", "3", "6:4test16:4test26:4test3"},
		{"v3 non-ascii lengths count UTF-16 units", "3", "2:4€3:4😀"},
		{"v3 base64 binary (b64 session)", "3", "6:4hello10:b4AQIDBA=="},
	}
	n := echoNode(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, url := handshake(t, n.base, "/engine.io/", c.eio+"&b64=1")
			if r := post(t, url, c.body); r.status != 200 || r.body != "ok" {
				t.Fatalf("POST: %d %q", r.status, r.body)
			}
			if r := get(t, url); r.status != 200 || r.body != c.body {
				t.Fatalf("GET: %d %q, want %q", r.status, r.body, c.body)
			}
		})
	}
}

func TestPollingV3BinaryPayload(t *testing.T) {
	n := echoNode(t)
	_, url := handshake(t, n.base, "/engine.io/", "3")
	xhr2 := "\x00\x06\xff4hello\x01\x05\xff\x04\x01\x02\x03\x04"
	if r := do(t, "POST", url, "application/octet-stream", xhr2); r.status != 200 || r.body != "ok" {
		t.Fatalf("POST: %d %q", r.status, r.body)
	}
	r := get(t, url)
	if r.body != xhr2 || r.header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("GET: %q (%s), want the same XHR2 payload", r.body, r.header.Get("Content-Type"))
	}
}

func TestJSONP(t *testing.T) {
	n := echoNode(t)
	r := get(t, n.base+"/engine.io/?EIO=3&transport=polling&j=0")
	if !strings.HasPrefix(r.body, `___eio[0]("`) || !strings.HasSuffix(r.body, `");`) {
		t.Fatalf("handshake not wrapped: %q", r.body)
	}
	sid := r.body[strings.Index(r.body, `sid\":\"`)+8:]
	sid = sid[:strings.Index(sid, `\"`)]
	url := n.base + "/engine.io/?EIO=3&transport=polling&j=1&sid=" + sid
	if p := do(t, "POST", url, "application/x-www-form-urlencoded", "d=10%3A4say+%22hi%22%5Cn"); p.body != "ok" {
		t.Fatalf("POST: %d %q", p.status, p.body)
	}
	if g := get(t, url); g.body != `___eio[1]("10:4say \"hi\"\n");` {
		t.Fatalf("GET: %q", g.body)
	}
}

func TestInvalidPacketClosesSession(t *testing.T) {
	n := conformanceNode(t)
	_, url := handshake(t, n.base, "/engine.io/", "4")
	if r := post(t, url, "abc"); r.status != 400 {
		t.Fatalf("POST abc: %d", r.status)
	}
	if r := get(t, url); r.status != 400 || !strings.Contains(r.body, `"code":1`) {
		t.Fatalf("session still there: %d %q", r.status, r.body)
	}
}

func TestOctetStreamPostRefusedInV4(t *testing.T) {
	n := conformanceNode(t)
	_, url := handshake(t, n.base, "/engine.io/", "4")
	if r := do(t, "POST", url, "application/octet-stream", "4hello"); r.status != 400 {
		t.Fatalf("POST: %d", r.status)
	}
	if r := get(t, url); r.status != 400 {
		t.Fatalf("session survived: %d", r.status)
	}
}

func TestOversizedPostGets413(t *testing.T) {
	n := startNode(t, NodeConfig{Conformance: true, MaxPayload: 1000})
	_, url := handshake(t, n.base, "/engine.io/", "4")
	if r := post(t, url, "4"+strings.Repeat("x", 1000)); r.status != 413 {
		t.Fatalf("POST: %d %q", r.status, r.body)
	}
	if r := get(t, url); r.status != 400 {
		t.Fatalf("session survived: %d", r.status)
	}
}

func TestConcurrentGetsCloseTheSession(t *testing.T) {
	for _, c := range []struct{ eio, closeBody string }{{"4", "1"}, {"3", "1:1"}} {
		t.Run("EIO"+c.eio, func(t *testing.T) {
			n := startNode(t, NodeConfig{Conformance: true, AllowEIO3: true})
			_, url := handshake(t, n.base, "/engine.io/", c.eio)
			first := make(chan reply, 1)
			go func() { first <- get(t, url) }()
			waitFor(t, func() bool { return pollWaiting(n, url) })
			if r := get(t, url+"&t=burst"); r.status != 400 && r.status != 500 {
				t.Fatalf("second GET: %d", r.status)
			}
			if r := <-first; r.status != 200 || r.body != c.closeBody {
				t.Fatalf("first GET: %d %q", r.status, r.body)
			}
			if r := get(t, url); r.status != 400 {
				t.Fatalf("session survived: %d", r.status)
			}
		})
	}
}

// pollWaiting reports whether the session of url has a GET held.
func pollWaiting(n *testNode, url string) bool {
	s := n.echo.lookup(url[strings.Index(url, "sid=")+4:])
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.getWaiting
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not reached within 3s")
}

func TestPollingHeartbeat(t *testing.T) {
	n := conformanceNode(t)
	// The suite's 300 ms ping, but a pingTimeout that a loaded machine cannot miss between GET and POST.
	pings := startNode(t, NodeConfig{Conformance: true, AllowEIO3: true, PingInterval: 300 * time.Millisecond, PingTimeout: 2 * time.Second})
	t.Run("v4 server pings", func(t *testing.T) {
		_, url := handshake(t, pings.base, "/engine.io/", "4")
		for i := 0; i < 3; i++ {
			if r := get(t, url); r.body != "2" {
				t.Fatalf("GET %d: %q", i, r.body)
			}
			if r := post(t, url, "3"); r.body != "ok" {
				t.Fatalf("POST pong: %q", r.body)
			}
		}
	})
	t.Run("v3 client pings", func(t *testing.T) {
		_, url := handshake(t, pings.base, "/engine.io/", "3")
		for i := 0; i < 3; i++ {
			if r := post(t, url, "1:2"); r.body != "ok" {
				t.Fatalf("POST ping: %q", r.body)
			}
			if r := get(t, url); r.body != "1:3" {
				t.Fatalf("GET %d: %q", i, r.body)
			}
		}
	})
	t.Run("v4 ping timeout", func(t *testing.T) {
		start := time.Now()
		sid, url := handshake(t, n.base, "/engine.io/", "4")
		// Wait for the close rather than sleeping 500 ms exactly: timers run late on a loaded machine.
		waitFor(t, func() bool { return n.echo.lookup(sid) == nil })
		if d := time.Since(start); d < 500*time.Millisecond {
			t.Fatalf("session closed after %s, before pingInterval+pingTimeout", d)
		}
		if r := get(t, url); r.status != 400 {
			t.Fatalf("session survived the ping timeout: %d %q", r.status, r.body)
		}
	})
	t.Run("v4 ping from the client is an error", func(t *testing.T) {
		_, url := handshake(t, n.base, "/engine.io/", "4")
		post(t, url, "2")
		if r := get(t, url); r.status != 400 {
			t.Fatalf("session survived: %d", r.status)
		}
	})
}

func TestPollingClose(t *testing.T) {
	n := echoNode(t)
	_, url := handshake(t, n.base, "/engine.io/", "4")
	held := make(chan reply, 1)
	go func() { held <- get(t, url) }()
	waitFor(t, func() bool { return pollWaiting(n, url) })
	if r := post(t, url, "1"); r.body != "ok" {
		t.Fatalf("POST close: %q", r.body)
	}
	if r := <-held; r.body != "6" {
		t.Fatalf("held GET: %q, want noop", r.body)
	}
	if r := get(t, url); r.status != 400 {
		t.Fatalf("session survived: %d", r.status)
	}
}

func TestWebSocketDirect(t *testing.T) {
	n := conformanceNode(t)
	url := wsURL(n.base) + "/engine.io/?EIO=4&transport=websocket"
	t.Run("open, text and binary echo", func(t *testing.T) {
		c := dialWS(t, url)
		_, open := readFrame(t, c)
		if o := parseOpenPacket(t, open); len(o.Upgrades) != 0 {
			t.Fatalf("direct websocket must offer no upgrades: %q", open)
		}
		sendText(t, c, "4hello")
		expectText(t, c, "4hello")
		if err := c.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3, 4}); err != nil {
			t.Fatal(err)
		}
		if kind, data := readFrame(t, c); kind != websocket.BinaryMessage || data != "\x01\x02\x03\x04" {
			t.Fatalf("binary echo: (%d) %q", kind, data)
		}
	})
	t.Run("heartbeat", func(t *testing.T) {
		// The suite's 300 ms ping, with a pingTimeout a loaded machine cannot miss.
		pings := startNode(t, NodeConfig{Conformance: true, PingInterval: 300 * time.Millisecond, PingTimeout: 2 * time.Second})
		c := dialWS(t, wsURL(pings.base)+"/engine.io/?EIO=4&transport=websocket")
		readFrame(t, c)
		for i := 0; i < 3; i++ {
			expectText(t, c, "2")
			sendText(t, c, "3")
		}
	})
	t.Run("ping timeout closes", func(t *testing.T) {
		c := dialWS(t, url)
		readFrame(t, c)
		expectText(t, c, "2")
		expectClosed(t, c, time.Second)
	})
	t.Run("invalid packet closes", func(t *testing.T) {
		c := dialWS(t, url)
		readFrame(t, c)
		sendText(t, c, "abc")
		expectClosed(t, c, time.Second)
	})
	t.Run("close packet closes", func(t *testing.T) {
		c := dialWS(t, url)
		readFrame(t, c)
		sendText(t, c, "1")
		expectClosed(t, c, time.Second)
	})
	t.Run("oversized message closes with 1009", func(t *testing.T) {
		small := startNode(t, NodeConfig{Conformance: true, MaxPayload: 100})
		c := dialWS(t, wsURL(small.base)+"/engine.io/?EIO=4&transport=websocket")
		readFrame(t, c)
		sendText(t, c, "4"+strings.Repeat("x", 200))
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, _, err := c.ReadMessage()
		if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
			t.Fatalf("want close 1009, got %v", err)
		}
	})
}

func TestUpgrade(t *testing.T) {
	n := conformanceNode(t)
	probeURL := func(sid, eio string) string {
		return wsURL(n.base) + "/engine.io/?EIO=" + eio + "&transport=websocket&sid=" + sid
	}
	t.Run("v4 probe, noop, switch", func(t *testing.T) {
		sid, url := handshake(t, n.base, "/engine.io/", "4")
		c := dialWS(t, probeURL(sid, "4"))
		sendText(t, c, "2probe")
		expectText(t, c, "3probe")
		if r := get(t, url); r.body != "6" {
			t.Fatalf("GET during upgrade: %q, want noop", r.body)
		}
		sendText(t, c, "5")
		sendText(t, c, "4hello")
		expectText(t, c, "4hello")
		if r := get(t, url); r.status != 400 || !strings.Contains(r.body, `"code":3`) {
			t.Fatalf("polling after upgrade: %d %q", r.status, r.body)
		}
		second := dialWS(t, probeURL(sid, "4"))
		expectClosed(t, second, time.Second)
		sendText(t, c, "4still")
		expectText(t, c, "4still")
	})
	t.Run("a second probe while the first awaits 2probe is closed at once", func(t *testing.T) {
		sid, _ := handshake(t, n.base, "/engine.io/", "4")
		first := dialWS(t, probeURL(sid, "4"))
		second := dialWS(t, probeURL(sid, "4")) // before the fix: held until the 10s upgrade timeout
		expectClosed(t, second, time.Second)
		sendText(t, first, "2probe")
		expectText(t, first, "3probe")
		sendText(t, first, "5")
		sendText(t, first, "4hello")
		expectText(t, first, "4hello")
	})
	t.Run("held GET is released by the probe", func(t *testing.T) {
		sid, url := handshake(t, n.base, "/engine.io/", "4")
		held := make(chan reply, 1)
		go func() { held <- get(t, url) }()
		waitFor(t, func() bool { return pollWaiting(n, url) })
		c := dialWS(t, probeURL(sid, "4"))
		sendText(t, c, "2probe")
		expectText(t, c, "3probe")
		if r := <-held; r.body != "6" {
			t.Fatalf("held GET: %q", r.body)
		}
	})
	t.Run("v3 noop goes to the websocket when no poll took it", func(t *testing.T) {
		sid, _ := handshake(t, n.base, "/engine.io/", "3")
		c := dialWS(t, probeURL(sid, "3"))
		sendText(t, c, "2probe")
		expectText(t, c, "3probe")
		sendText(t, c, "5")
		expectText(t, c, "6")
		sendText(t, c, "4hello")
		expectText(t, c, "4hello")
	})
	t.Run("probe closed before 5 leaves polling working", func(t *testing.T) {
		sid, url := handshake(t, n.base, "/engine.io/", "4")
		c := dialWS(t, probeURL(sid, "4"))
		sendText(t, c, "2probe")
		expectText(t, c, "3probe")
		c.Close()
		time.Sleep(50 * time.Millisecond)
		if r := post(t, url, "4after"); r.body != "ok" {
			t.Fatalf("POST after failed probe: %d %q", r.status, r.body)
		}
		if r := get(t, url); r.body != "4after" && r.body != "6\x1e4after" && r.body != "6" {
			t.Fatalf("GET after failed probe: %q", r.body)
		}
	})
}

func TestSlowClientIsDisconnected(t *testing.T) {
	n := startNode(t, NodeConfig{Conformance: true})
	n.echo.cfg.MaxQueuedPackets = 10
	sid, url := handshake(t, n.base, "/engine.io/", "4")
	s := n.echo.lookup(sid)
	var err error
	for i := 0; i < 11 && err == nil; i++ {
		err = s.Send(engineIOMessage("x"))
	}
	if err != ErrSessionClosed {
		t.Fatalf("11th packet: %v, want ErrSessionClosed", err)
	}
	if r := get(t, url); r.status != 400 {
		t.Fatalf("GET after overflow: %d %q, want the session gone", r.status, r.body)
	}
}

func TestManyConcurrentSessions(t *testing.T) {
	n := echoNode(t) // with the suite's 300 ms heartbeat, a loaded machine times out some of the 50
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, url := handshake(t, n.base, "/engine.io/", "4")
			if r := post(t, url, "4m"); r.body != "ok" {
				t.Errorf("POST %q", r.body)
			}
			if r := get(t, url); r.body != "4m" {
				t.Errorf("GET %q", r.body)
			}
		}()
	}
	wg.Wait()
}

func TestSlowWebSocketClientIsDisconnected(t *testing.T) {
	n := startNode(t, NodeConfig{Conformance: true})
	n.echo.cfg.MaxQueuedPackets = 10
	c := dialWS(t, wsURL(n.base)+"/engine.io/?EIO=4&transport=websocket")
	_, open := readFrame(t, c)
	s := n.echo.lookup(parseOpenPacket(t, open).SID)
	burst := make([]enginePacket, 11)
	for i := range burst {
		burst[i] = engineIOMessage("x")
	}
	if err := s.Send(burst...); err != ErrSessionClosed {
		t.Fatalf("a burst over the bound: %v, want ErrSessionClosed", err)
	}
	expectClosed(t, c, 2*time.Second)
}
