package proxy_test

import (
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/chatnode"
	"github.com/sidpin/sidpin/configs"
)

// BenchmarkPollingRoundTrip measures one POST + GET echo of an established polling session through
// sidpin to a real Engine.IO echo node, everything in one process on loopback.
func BenchmarkPollingRoundTrip(b *testing.B) {
	node := startChatNode(b, chatnode.NodeConfig{Conformance: true})
	p := startProxy(b, []string{node}, func(c *configs.Config) { c.Pools[0].EngineIOPath = "/engine.io/" })
	client := &fasthttp.HostClient{Addr: strings.TrimPrefix(p.base, "http://"), MaxConns: 64}
	var req fasthttp.Request
	var resp fasthttp.Response
	req.SetRequestURI(p.base + "/engine.io/?EIO=4&transport=polling")
	if err := client.Do(&req, &resp); err != nil {
		b.Fatal(err)
	}
	body := string(resp.Body())
	sid := body[strings.Index(body, `"sid":"`)+7:]
	sid = sid[:strings.IndexByte(sid, '"')]
	url := p.base + "/engine.io/?EIO=4&transport=polling&sid=" + sid
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req.Reset()
		req.SetRequestURI(url)
		req.Header.SetMethod("POST")
		req.Header.SetContentType("text/plain;charset=UTF-8")
		req.SetBodyString("4hello")
		if err := client.Do(&req, &resp); err != nil || string(resp.Body()) != "ok" {
			b.Fatalf("POST: %v %q", err, resp.Body())
		}
		req.Reset()
		req.SetRequestURI(url)
		if err := client.Do(&req, &resp); err != nil || string(resp.Body()) != "4hello" {
			b.Fatalf("GET: %v %q", err, resp.Body())
		}
	}
}

// BenchmarkHandshake measures polling handshakes through sidpin to a real node, with the pin table
// in memory and in Redis (SIDPIN_TEST_REDIS), 8 concurrent clients per CPU.
func BenchmarkHandshake(b *testing.B) {
	for _, kind := range []string{"memory", "redis"} {
		b.Run(kind, func(b *testing.B) {
			node := startChatNode(b, chatnode.NodeConfig{Conformance: true})
			p := startProxyWithStore(b, []string{node}, kind, func(c *configs.Config) { c.Pools[0].EngineIOPath = "/engine.io/" })
			client := &fasthttp.HostClient{Addr: strings.TrimPrefix(p, "http://"), MaxConns: 256}
			url := p + "/engine.io/?EIO=4&transport=polling"
			b.ReportAllocs()
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var req fasthttp.Request
				var resp fasthttp.Response
				for pb.Next() {
					req.SetRequestURI(url)
					if err := client.Do(&req, &resp); err != nil || !strings.HasPrefix(string(resp.Body()), `0{"sid"`) {
						b.Fatalf("handshake: %v %q", err, resp.Body())
					}
				}
			})
		})
	}
}
