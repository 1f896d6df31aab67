package hijacked

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// hijackRequest sends raw to a fasthttp server like sidpin's, which hijacks the request's connection
// and hands it to onHijack.
func hijackRequest(t *testing.T, raw string, onHijack func(net.Conn)) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{ReduceMemoryUsage: true, KeepHijackedConns: true, Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.HijackSetNoResponse(true)
		ctx.Hijack(func(c net.Conn) { onHijack(c); c.Close() })
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.Write([]byte(raw))
}

// TestReadsRawSeesFasthttpReader guards ReadsRaw against a change of fasthttp's hijacked connection:
// with ReduceMemoryUsage and nothing buffered, a hijack must be seen as reading the raw connection.
func TestReadsRawSeesFasthttpReader(t *testing.T) {
	got := make(chan bool, 1)
	hijackRequest(t, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", func(c net.Conn) { got <- ReadsRaw(c) })
	select {
	case ok := <-got:
		if !ok {
			t.Fatal("ReadsRaw does not recognise fasthttp's hijacked connection any more: tunnels would never reach the event loop")
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no hijack")
	}
}

// TestReadsRawSeesPipelinedBytes: bytes the client sent right behind its request were read by fasthttp;
// the hijacked connection replays them before the raw connection, so it must not be read raw.
func TestReadsRawSeesPipelinedBytes(t *testing.T) {
	type result struct {
		raw  bool
		next string
	}
	got := make(chan result, 1)
	hijackRequest(t, "GET / HTTP/1.1\r\nHost: x\r\n\r\nearly", func(c net.Conn) {
		raw := ReadsRaw(c)
		b := make([]byte, 5)
		_, _ = io.ReadFull(c, b)
		got <- result{raw, string(b)}
	})
	select {
	case r := <-got:
		if r.raw || r.next != "early" {
			t.Fatalf("ReadsRaw %v with %q behind the request: the tunnel would lose it", r.raw, r.next)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no hijack")
	}
}
