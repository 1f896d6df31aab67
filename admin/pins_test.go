package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sidpin/sidpin/admin"
	"github.com/sidpin/sidpin/affinity"
	"github.com/sidpin/sidpin/chatnode"
	"github.com/sidpin/sidpin/configs"
	"github.com/sidpin/sidpin/proxy"
)

type pinsReply struct {
	Pins []struct {
		SID, Pool, Node, Transport string
		EIO                        int
	}
	Next string
}

func TestListPinsFiltersAndPages(t *testing.T) {
	f := startAdmin(t, "")
	for i := 0; i < 25; i++ {
		p := affinity.Pin{SID: fmt.Sprintf("sid%02d", i), Pool: "default", Node: []string{"node1", "node2"}[i%2],
			Transport: []string{affinity.TransportPolling, affinity.TransportUpgraded, affinity.TransportWebSocket}[i%3],
			EIO:       4 - i%5/4, TTL: time.Minute}
		if _, _, err := f.store.Pin(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	list := func(query string) pinsReply {
		t.Helper()
		status, body := call(t, "GET", f.base+"/api/pins"+query, "")
		var r pinsReply
		if status != 200 || json.Unmarshal([]byte(body), &r) != nil {
			t.Fatalf("GET /api/pins%s: %d %q", query, status, body)
		}
		return r
	}
	seen := map[string]bool{}
	for q, pages := "?limit=10", 0; ; pages++ {
		r := list(q)
		for _, p := range r.Pins {
			if seen[p.SID] {
				t.Fatalf("%s listed twice", p.SID)
			}
			seen[p.SID] = true
		}
		if r.Next == "" {
			if len(seen) != 25 || pages != 2 {
				t.Fatalf("paging saw %d pins in %d pages", len(seen), pages+1)
			}
			break
		}
		q = "?limit=10&cursor=" + r.Next
	}
	cases := []struct {
		query string
		want  int
	}{
		{"?pool=default&node=node1", 13},
		{"?transport=websocket", 8},
		{"?eio=3", 5},
		{"?pool=default&node=node2&transport=polling", 4},
		{"?pool=other", 0},
	}
	for _, c := range cases {
		if r := list(c.query); len(r.Pins) != c.want {
			t.Errorf("GET /api/pins%s: %d pins, want %d", c.query, len(r.Pins), c.want)
		}
	}
	for _, bad := range []string{"?node=node1", "?transport=carrier-pigeon", "?eio=5", "?limit=x", "?cursor=%%%"} {
		if status, body := call(t, "GET", f.base+"/api/pins"+bad, ""); status != 400 || !strings.Contains(body, "error") {
			t.Errorf("GET /api/pins%s: %d %q, want 400 with an error", bad, status, body)
		}
	}
	if status, body := call(t, "GET", f.base+"/api/pins/sid07", ""); status != 200 || !strings.Contains(body, `"node": "node2"`) {
		t.Errorf("GET /api/pins/sid07: %d %q", status, body)
	}
	if status, _ := call(t, "GET", f.base+"/api/pins/nope", ""); status != 404 {
		t.Errorf("GET of an unknown sid: %d", status)
	}
	if status, body := call(t, "GET", f.base+"/readyz", ""); status != 200 || !strings.Contains(body, "ready") {
		t.Errorf("GET /readyz: %d %q", status, body)
	}
}

// TestKickEndsThePollingSession: DELETE /api/pins/{sid} ends a live polling session at once: its held
// poll answers, and the next request of the sid is "Session ID unknown".
func TestKickEndsThePollingSession(t *testing.T) {
	node, err := chatnode.NewNode(context.Background(), chatnode.NodeConfig{Name: "node1", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	nodeLn := listenT(t)
	go node.Serve(nodeLn)
	t.Cleanup(func() { node.Shutdown(context.Background()) })
	cfg, err := configs.QuickStart("127.0.0.1:0", []string{"http://" + nodeLn.Addr().String()}, "/socket.io/")
	if err != nil {
		t.Fatal(err)
	}
	store, _ := affinity.NewMemoryStore(affinity.MemoryOptions{})
	p, err := proxy.New(cfg, store, quiet)
	if err != nil {
		t.Fatal(err)
	}
	proxyLn, adminLn := listenT(t), listenT(t)
	go p.Serve(proxyLn)
	a := admin.New(p, store, "", quiet)
	go a.Serve(adminLn)
	t.Cleanup(func() { p.Shutdown(context.Background()); a.Shutdown(context.Background()); store.Close() })

	base := "http://" + proxyLn.Addr().String() + "/socket.io/?EIO=4&transport=polling"
	body := httpBody(t, "GET", base, "")
	sid := body[strings.Index(body, `"sid":"`)+7:]
	sid = sid[:strings.IndexByte(sid, '"')]
	session := base + "&sid=" + sid
	httpBody(t, "POST", session, "40")
	httpBody(t, "GET", session, "") // the CONNECT answer and the welcome
	held := make(chan string, 1)
	go func() { held <- httpBody(t, "GET", session, "") }()
	time.Sleep(100 * time.Millisecond) // the poll is held at the node
	start := time.Now()
	if status, reply := call(t, "DELETE", "http://"+adminLn.Addr().String()+"/api/pins/"+sid, ""); status != 200 || !strings.Contains(reply, sid) {
		t.Fatalf("DELETE /api/pins/%s: %d %q", sid, status, reply)
	}
	select {
	case got := <-held:
		if got != "1" && got != "6" {
			t.Fatalf("the held poll answered %q, want the close (or noop) of an ended session", got)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the held poll was not answered after the kick")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("kick took %v", took)
	}
	resp, err := http.Get(session)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || !strings.Contains(string(data), `"code":1`) {
		t.Fatalf("request after the kick: %d %q, want 400 code 1", resp.StatusCode, data)
	}
}

func listenT(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func httpBody(t *testing.T, method, url, body string) string {
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return ""
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return string(data)
}
