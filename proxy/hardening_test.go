package proxy_test

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/backends"
	"github.com/sidpin/sidpin/chatnode"
	"github.com/sidpin/sidpin/configs"
)

// TestClientCannotTakeNodesDown: 12 polling sessions each queue five ~950 KB acks on their node, then
// all poll at once. Each answer is ~4.75 MB, far above limits.max_body_bytes. The answers reach the
// clients whole, no node is marked down (fall: 1 here: a single counted failure would do it), and
// every other session goes on. It took every node down in 37 ms when answer sizes counted.
func TestClientCannotTakeNodesDown(t *testing.T) {
	urls := []string{startChatNodeNamed(t, "node1"), startChatNodeNamed(t, "node2"), startChatNodeNamed(t, "node3")}
	p, base, _ := startManagedProxy(t, urls, func(c *configs.Config) {
		c.Limits.MaxBodyBytes = 1 << 20
		c.Pools[0].Health.Interval = configs.Duration(time.Second) // passive checks only, in effect
		c.Pools[0].Health.Timeout = configs.Duration(time.Second)
	})
	var bystanders []string
	for range 30 {
		_, url := openSession(t, base, "4")
		connectChat(t, url)
		bystanders = append(bystanders, url)
	}
	arg := strings.Repeat("x", 950_000)
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
		if n < 5*950_000 {
			t.Errorf("attacker %d got %d bytes, want the five acks (> %d)", i, n, 5*950_000)
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

func startChatNodeNamed(t *testing.T, name string) string {
	return startChatNode(t, chatnode.NodeConfig{Name: name})
}

// getQuiet is get without a test to fail: for goroutines.
func getQuiet(url string) reply {
	resp, err := client.Get(url)
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

// TestHugeAnswerStreamsWithBoundedMemory: a 256 MB polling answer reaches the client whole while the
// proxy's heap stays small: it is streamed, never held.
func TestHugeAnswerStreamsWithBoundedMemory(t *testing.T) {
	const size = 256 << 20
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
	if grown > 32<<20 {
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
