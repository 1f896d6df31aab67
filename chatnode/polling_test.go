package chatnode

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
)

// closeOrder is how a client's close POST and its GET reach the node.
type closeOrder int

const (
	getFirst  closeOrder = iota // the GET is held when the close arrives
	postFirst                   // the close is answered before the GET is sent
	together                    // both are sent at the same moment (the official suite's case)
)

// TestPollingCloseWithConcurrentGet is the official suite's "HTTP long-polling forcefully closes the
// session": a GET and a POST "1" sent together. Whichever the node sees first, the GET gets a noop and
// the next GET a 400. Before the fix, postFirst failed every run, and together 8-25% of the runs (about
// half of them under -race).
func TestPollingCloseWithConcurrentGet(t *testing.T) {
	n := startNode(t, NodeConfig{Conformance: true, AllowEIO3: true})
	cases := []struct {
		name            string
		eio, close, ack string // ack: what the GET must get
		order           closeOrder
		runs            int
	}{
		{"v4 GET first", "4", "1", "6", getFirst, 20},
		{"v4 POST first", "4", "1", "6", postFirst, 20},
		{"v4 together", "4", "1", "6", together, 200},
		{"v3 GET first", "3", "1:1", "1:6", getFirst, 20},
		{"v3 POST first", "3", "1:1", "1:6", postFirst, 20},
		{"v3 together", "3", "1:1", "1:6", together, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			failures, runs := 0, 0
			for deadline := time.Now().Add(5 * time.Second); runs < c.runs && time.Now().Before(deadline); runs++ {
				if problem := closeRace(t, n, c.eio, c.close, c.ack, c.order); problem != "" {
					if failures == 0 {
						t.Errorf("run %d: %s", runs, problem)
					}
					failures++
				}
			}
			if failures > 0 {
				t.Errorf("%d of %d runs failed", failures, runs)
			}
		})
	}
}

// closeRace opens a session, closes it by POST in the given order against a GET, and says what went
// wrong ("" when the GET got ack, the POST "ok", and the next GET a 400).
func closeRace(t *testing.T, n *testNode, eio, closeBody, ack string, order closeOrder) string {
	_, url := handshake(t, n.base, "/engine.io/", eio)
	var getReply, postReply reply
	switch order {
	case getFirst:
		held := make(chan reply, 1)
		go func() { held <- rawRequest("GET", url, "") }()
		waitFor(t, func() bool { return pollWaiting(n, url) })
		postReply = post(t, url, closeBody)
		getReply = <-held
	case postFirst:
		postReply = post(t, url, closeBody)
		getReply = get(t, url)
	case together:
		getReply, postReply = getAndPostTogether(url, closeBody)
	}
	var problems []string
	if getReply.status != 200 || getReply.body != ack {
		problems = append(problems, "GET got "+describe(getReply)+", want 200 "+ack)
	}
	if postReply.status != 200 || postReply.body != "ok" {
		problems = append(problems, "POST got "+describe(postReply))
	}
	if r := get(t, url); r.status != 400 {
		problems = append(problems, "the next GET got "+describe(r)+", want 400")
	}
	return strings.Join(problems, "; ")
}

// getAndPostTogether releases a GET and a POST at the same instant, as Promise.all does in the suite.
func getAndPostTogether(url, body string) (getReply, postReply reply) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	wg.Add(2)
	go func() { defer wg.Done(); <-start; getReply = rawRequest("GET", url, "") }()
	go func() { defer wg.Done(); <-start; postReply = rawRequest("POST", url, body) }()
	close(start)
	wg.Wait()
	return getReply, postReply
}

func describe(r reply) string { return fmt.Sprintf("%d %q", r.status, r.body) }

// rawRequest is do without t.Fatal, for goroutines other than the test's: a transport error is status 0.
func rawRequest(method, url, body string) reply {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return reply{body: err.Error()}
	}
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	resp, err := httpClient.Do(req)
	if err != nil {
		return reply{body: err.Error()}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{body: err.Error()}
	}
	return reply{status: resp.StatusCode, body: string(data), header: resp.Header}
}

// TestClosedSessionLingersBriefly: the sid of a session closed by POST stays known only to a GET, only
// once, and only for lingerFor; other closes do not linger.
func TestClosedSessionLingersBriefly(t *testing.T) {
	n := echoNode(t)
	closeByPost := func(t *testing.T) (sid, url string) {
		sid, url = handshake(t, n.base, "/engine.io/", "4")
		if r := post(t, url, "1"); r.body != "ok" {
			t.Fatalf("POST close: %d %q", r.status, r.body)
		}
		return sid, url
	}
	t.Run("a POST gets 400", func(t *testing.T) {
		_, url := closeByPost(t)
		if r := post(t, url, "4late"); r.status != 400 || !strings.Contains(r.body, `"code":1`) {
			t.Fatalf("POST after close: %s", describe(r))
		}
	})
	t.Run("a probe WebSocket is refused", func(t *testing.T) {
		sid, _ := closeByPost(t)
		_, resp, err := websocket.DefaultDialer.Dial(wsURL(n.base)+"/engine.io/?EIO=4&transport=websocket&sid="+sid, nil)
		if err == nil || resp == nil || resp.StatusCode != 400 {
			t.Fatalf("probe after close: %v %v", err, resp)
		}
	})
	t.Run("a GET after lingerFor gets 400", func(t *testing.T) {
		n.echo.mu.Lock()
		n.echo.lingerFor = 100 * time.Millisecond
		n.echo.mu.Unlock()
		sid, url := closeByPost(t)
		waitFor(t, func() bool { return n.echo.lookupLingering(sid) == nil })
		if r := get(t, url); r.status != 400 {
			t.Fatalf("GET after lingerFor: %s", describe(r))
		}
	})
	t.Run("a close over WebSocket does not linger", func(t *testing.T) {
		c := dialWS(t, wsURL(n.base)+"/engine.io/?EIO=4&transport=websocket")
		_, open := readFrame(t, c)
		sid := parseOpenPacket(t, open).SID
		sendText(t, c, "1")
		expectClosed(t, c, time.Second)
		if n.echo.lookupLingering(sid) != nil {
			t.Fatal("a WebSocket session lingers after its close")
		}
	})
	t.Run("a server-side close does not linger", func(t *testing.T) {
		sid, url := handshake(t, n.base, "/engine.io/", "4")
		if r := post(t, url, "abc"); r.status != 400 {
			t.Fatalf("POST abc: %s", describe(r))
		}
		if n.echo.lookupLingering(sid) != nil {
			t.Fatal("a session closed for a parse error lingers")
		}
	})
}
