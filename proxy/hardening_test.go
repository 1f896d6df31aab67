package proxy_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/affinity"
	"github.com/sidpin/sidpin/backends"
	"github.com/sidpin/sidpin/chatnode"
	"github.com/sidpin/sidpin/configs"
)

// TestClientCannotTakeNodesDown: 12 polling sessions each queue five acks just under
// limits.max_body_bytes on their node, then all poll at once. Each answer is about five times that
// limit (the attack review used ~950 KB acks under a 1 MiB limit; a quarter of that shows the same).
// The answers reach the clients whole, no node is marked down (fall: 1 here: a single counted failure
// would do it), and every other session goes on. It took every node down in 37 ms when answer sizes
// counted.
func TestClientCannotTakeNodesDown(t *testing.T) {
	urls := []string{startChatNodeNamed(t, "node1"), startChatNodeNamed(t, "node2"), startChatNodeNamed(t, "node3")}
	p, base, _ := startManagedProxy(t, urls, func(c *configs.Config) {
		c.Limits.MaxBodyBytes = 256 << 10
		c.Pools[0].Health.Kind = configs.HealthNone // passive checks only: what traffic did is all that counts
		c.Pools[0].Health.Interval = configs.Duration(time.Minute)
	})
	var bystanders []string
	for range 30 {
		_, url := openSession(t, base, "4")
		connectChat(t, url)
		bystanders = append(bystanders, url)
	}
	const argLen = 250_000
	arg := strings.Repeat("x", argLen)
	attackers := make([]string, 12)
	for i := range attackers {
		_, url := openSession(t, base, "4")
		connectChat(t, url)
		for j := range 5 {
			if r := post(t, url, fmt.Sprintf(`42%d["echo","%s"]`, j, arg)); r.status != 200 {
				t.Fatalf("queueing an ack: %d %.100q", r.status, r.body)
			}
		}
		attackers[i] = url
	}
	var wg sync.WaitGroup
	sizes := make([]int, len(attackers))
	for i, url := range attackers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := getQuiet(url)
			if r.status != 200 {
				t.Errorf("the big poll: %d %.200q", r.status, r.body)
			}
			sizes[i] = len(r.body)
		}()
	}
	wg.Wait()
	for i, n := range sizes {
		if n < 5*argLen {
			t.Errorf("attacker %d got %d bytes, want the five acks (> %d)", i, n, 5*argLen)
		}
	}
	for _, n := range p.Nodes().Nodes() {
		if n.State() != backends.StateUp {
			t.Errorf("node %s is %s: %s", n.Name, n.State(), n.Health().LastErr)
		}
	}
	for _, url := range bystanders {
		if r := post(t, url, `42["echo","still here"]`); r.status != 200 || r.body != "ok" {
			t.Errorf("a bystander's session: %d %q", r.status, r.body)
		}
	}
}

var slowClient = &http.Client{Timeout: time.Minute}

func startChatNodeNamed(t *testing.T, name string) string {
	return startChatNode(t, chatnode.NodeConfig{Name: name})
}

// getQuiet is get without a test to fail, for goroutines; it waits longer than get for big answers.
func getQuiet(url string) reply {
	resp, err := slowClient.Get(url)
	if err != nil {
		return reply{status: -1, body: err.Error()}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{status: -1, body: err.Error()}
	}
	return reply{resp.StatusCode, string(body), resp.Header}
}

// hugeAnswerNode is an Engine.IO-looking node whose handshake pins a session and whose every poll
// answers with size bytes of one message, generated as it is written.
func hugeAnswerNode(t *testing.T, size int) string {
	t.Helper()
	ln := listen(t)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if !ctx.QueryArgs().Has("sid") {
			ctx.SetBodyString(`0{"sid":"huge-answer-sid","upgrades":[],"pingInterval":25000,"pingTimeout":20000}`)
			return
		}
		ctx.SetBodyStream(&messageStream{left: size}, size)
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return "http://" + ln.Addr().String()
}

// messageStream reads as a v4 payload of one message "4xxx…" of its length.
type messageStream struct{ left, sent int }

func (m *messageStream) Read(p []byte) (int, error) {
	if m.left == 0 {
		return 0, io.EOF
	}
	n := min(len(p), m.left)
	for i := range p[:n] {
		p[i] = 'x'
	}
	if m.sent == 0 {
		p[0] = '4'
	}
	m.left -= n
	m.sent += n
	return n, nil
}

// TestHugeAnswerStreamsWithBoundedMemory: a 64 MiB polling answer reaches the client whole while the
// proxy's heap stays small: it is streamed, never held.
func TestHugeAnswerStreamsWithBoundedMemory(t *testing.T) {
	const size = 64 << 20
	p := startProxy(t, []string{hugeAnswerNode(t, size)}, nil)
	_, url := openSession(t, p.base, "4")
	before := heapInUse()
	var peak uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() { // sample the heap while the answer flows
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				peak = max(peak, m.HeapInuse)
			}
		}
	}()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	n, err := countBody(resp)
	close(stop)
	<-sampled
	if err != nil || n != size || resp.StatusCode != 200 {
		t.Fatalf("the answer: %d, %d of %d bytes, %v", resp.StatusCode, n, size, err)
	}
	grown := int64(peak) - int64(before)
	t.Logf("a %d MiB answer streamed; peak heap growth %d KiB", size>>20, grown>>10)
	if grown > 16<<20 {
		t.Fatalf("the heap grew %d MiB while a %d MiB answer passed: it is buffered", grown>>20, size>>20)
	}
}

func countBody(resp *http.Response) (int, error) {
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	return int(n), err
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// openNode answers every handshake with the open packet given (JSON after the '0').
func openNode(t *testing.T, open string) string {
	t.Helper()
	ln := listen(t)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("0" + open) }}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return "http://" + ln.Addr().String()
}

// TestNodeOpenPacketsAreChecked: a node's sid must follow the rule a client's does, and neither may
// change a URL or HTML; negative ping values are refused; huge ones are capped by max_pin_lifetime.
func TestNodeOpenPacketsAreChecked(t *testing.T) {
	refused := map[string]string{
		"5000-character sid":  strings.Repeat("s", 5000),
		"space":               "a b",
		"control character":   "a\\u0001b",
		"path into the admin": "../nodes/chat/n1/drain?",
		"html":                `a<b>\"c'`,
		"percent":             "a%2Fb",
		"ampersand and hash":  "a&b#c",
	}
	for name, sid := range refused {
		t.Run(name, func(t *testing.T) {
			p := startProxy(t, []string{openNode(t, `{"sid":"`+sid+`","upgrades":[],"pingInterval":25000,"pingTimeout":20000}`)}, nil)
			r := get(t, p.base+"/socket.io/?EIO=4&transport=polling")
			if r.status != 502 || !strings.Contains(r.body, "invalid") {
				t.Fatalf("handshake: %d %q", r.status, r.body)
			}
			if page, _ := p.store.List(context.Background(), affinity.ListOptions{}); len(page.Pins) != 0 {
				t.Fatalf("pinned %+v", page.Pins)
			}
		})
	}
	t.Run("negative ping values", func(t *testing.T) {
		p := startProxy(t, []string{openNode(t, `{"sid":"okSid","upgrades":[],"pingInterval":-1,"pingTimeout":20000}`)}, nil)
		if r := get(t, p.base+"/socket.io/?EIO=4&transport=polling"); r.status != 502 {
			t.Fatalf("handshake: %d %q", r.status, r.body)
		}
	})
	t.Run("huge ping values are capped", func(t *testing.T) {
		p := startProxy(t, []string{openNode(t, `{"sid":"okSid","upgrades":[],"pingInterval":2147483647,"pingTimeout":2147483647}`)}, nil)
		if r := get(t, p.base+"/socket.io/?EIO=4&transport=polling"); r.status != 200 {
			t.Fatalf("handshake: %d %q", r.status, r.body)
		}
		pin, ok, _ := p.store.Lookup(context.Background(), "okSid")
		if !ok || pin.TTL != 5*time.Minute {
			t.Fatalf("pin %+v (found %v): want a lifetime of max_pin_lifetime, 5m", pin, ok)
		}
	})
}

// TestSilentNodeHandshake: a node that never answers a handshake gets it answered 504 by sidpin after
// timeouts.handshake (not upstream_response), and counts a failed check: the node did it.
func TestSilentNodeHandshake(t *testing.T) {
	silent := listen(t) // accepts (the kernel does) and never answers
	p, base, _ := startManagedProxy(t, []string{"http://" + silent.Addr().String()}, func(c *configs.Config) {
		c.Timeouts.Handshake = configs.Duration(300 * time.Millisecond)
		c.Pools[0].Health.Kind = configs.HealthNone
		c.Pools[0].Health.Interval = configs.Duration(time.Minute)
	})
	start := time.Now()
	r := get(t, base+"/socket.io/?EIO=4&transport=polling")
	if took := time.Since(start); r.status != 504 || took > 3*time.Second {
		t.Fatalf("a silent handshake: %d %q after %v", r.status, r.body, took)
	}
	if n := p.Nodes().Nodes()[0]; n.State() != backends.StateDown {
		t.Fatalf("the silent node is %s, want down (fall 1)", n.State())
	}
}

// TestFullTableRefusesBeforeTheNode: when the pin table is full, a handshake is refused before any
// node sees it, so no session is left behind on a node.
func TestFullTableRefusesBeforeTheNode(t *testing.T) {
	var opened atomic.Int64
	ln := listen(t)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		n := opened.Add(1)
		fmt.Fprintf(ctx, `0{"sid":"session%d","upgrades":[],"pingInterval":25000,"pingTimeout":20000}`, n)
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	cfg, err := configs.QuickStart("127.0.0.1:0", []string{"http://" + ln.Addr().String()}, "/socket.io/")
	if err != nil {
		t.Fatal(err)
	}
	store, err := affinity.NewMemoryStore(affinity.MemoryOptions{MaxPins: 2})
	if err != nil {
		t.Fatal(err)
	}
	base := serveProxy(t, cfg, store)
	for i, want := range []int{200, 200, 503, 503} {
		if r := get(t, base+"/socket.io/?EIO=4&transport=polling"); r.status != want {
			t.Fatalf("handshake %d: %d %q, want %d", i, r.status, r.body, want)
		}
	}
	if n := opened.Load(); n != 2 {
		t.Fatalf("the node opened %d sessions for 2 pins", n)
	}
}

// TestCloseInALongAnswerUnpins: the close packet at the end of an answer far above the buffered size
// is seen as the answer streams, and ends the pin once the client has it.
func TestCloseInALongAnswerUnpins(t *testing.T) {
	ln := listen(t)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if !ctx.QueryArgs().Has("sid") {
			ctx.SetBodyString(`0{"sid":"closing-sid","upgrades":[],"pingInterval":25000,"pingTimeout":20000}`)
			return
		}
		ctx.SetBodyString("4" + strings.Repeat("m", 1<<20) + "\x1e1")
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	p := startProxy(t, []string{"http://" + ln.Addr().String()}, nil)
	sid, url := openSession(t, p.base, "4")
	if r := get(t, url); r.status != 200 || len(r.body) != 1<<20+3 {
		t.Fatalf("the long answer: %d, %d bytes", r.status, len(r.body))
	}
	waitFor(t, "the pin to go", func() bool { _, ok, _ := p.store.Lookup(context.Background(), sid); return !ok })
}

// TestGzipBombHandshake: a node whose handshake answer is 200 KB of gzip inflating to 200 MB costs
// sidpin the 8 KiB it inflates to find the open packet; the client gets the answer byte for byte.
// (It raised RSS by 847 MiB when the whole answer was inflated.)
func TestGzipBombHandshake(t *testing.T) {
	member := func(b []byte) []byte { // one gzip member; a gzip body may hold several in a row
		var out bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&out, gzip.BestCompression)
		_, _ = zw.Write(b)
		_ = zw.Close()
		return out.Bytes()
	}
	var bomb bytes.Buffer
	bomb.Write(member([]byte(`0{"sid":"bomb-sid","upgrades":[],"pingInterval":25000,"pingTimeout":20000}` + "\x1e4")))
	mib := member(make([]byte, 1<<20))
	for range 200 {
		bomb.Write(mib)
	}
	ln := listen(t)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Content-Encoding", "gzip")
		ctx.SetBody(bomb.Bytes())
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	p := startProxy(t, []string{"http://" + ln.Addr().String()}, nil)
	before := heapInUse()
	req, _ := http.NewRequest("GET", p.base+"/socket.io/?EIO=4&transport=polling", nil)
	req.Header.Set("Accept-Encoding", "gzip") // set by hand: Go's client then leaves the body compressed
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	grown := int64(heapInUse()) - int64(before)
	if err != nil || resp.StatusCode != 200 || !bytes.Equal(got, bomb.Bytes()) {
		t.Fatalf("the answer: %d, %d bytes (want the %d sent), %v", resp.StatusCode, len(got), bomb.Len(), err)
	}
	if pin, ok, _ := p.store.Lookup(context.Background(), "bomb-sid"); !ok || pin.Node != "node1" {
		t.Fatalf("the session was not pinned from the inflated start: %+v %v", pin, ok)
	}
	t.Logf("a %d KB gzip answer inflating to 200 MB: heap grew %d KiB", bomb.Len()>>10, grown>>10)
	if grown > 16<<20 {
		t.Fatalf("the heap grew %d MiB: the answer was inflated", grown>>20)
	}
}
