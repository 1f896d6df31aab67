package proxy_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/configs"
)

// startHAProxy runs Debian's haproxy (make test installs it) in TCP mode with one frontend per
// backend line: each listens on a free loopback port and forwards to sidpin as that line says
// ("send-proxy-v2 source 127.0.0.2", say). It returns the frontends' addresses.
func startHAProxy(t *testing.T, to string, servers ...string) []string {
	t.Helper()
	const bin = "/usr/sbin/haproxy"
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s is needed (Debian: apt-get install haproxy; make test installs it): %v", bin, err)
	}
	var cfg strings.Builder
	cfg.WriteString("global\n  maxconn 200\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n")
	var addrs []string
	for i, server := range servers {
		addr := refusingAddr(t) // a port free a moment ago: haproxy binds it
		addrs = append(addrs, addr)
		fmt.Fprintf(&cfg, "frontend fe%d\n  bind %s\n  default_backend be%d\nbackend be%d\n  server s%d %s %s\n", i, addr, i, i, i, to, server)
	}
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-db", "-f", path)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for _, addr := range addrs {
		waitListening(t, addr, &out)
	}
	return addrs
}

func waitListening(t *testing.T, addr string, out *strings.Builder) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
	}
	t.Fatalf("haproxy does not listen on %s: %s", addr, out.String())
}

// handshakeFrom opens a polling session through addr from the loopback address src, with extra
// header lines; it returns the status and the sid.
func handshakeFrom(t *testing.T, src, addr, header string) (int, string) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 3 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: sidpin.test\r\n%s\r\n", header)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	if err := resp.Read(bufio.NewReader(c)); err != nil {
		return 0, ""
	}
	body := string(resp.Body())
	i := strings.Index(body, `"sid":"`)
	if i < 0 {
		return resp.StatusCode(), ""
	}
	sid := body[i+7:]
	return resp.StatusCode(), sid[:strings.IndexByte(sid, '"')]
}

// TestProxyProtocolFromHAProxy: behind a real HAProxy sending PROXY v2 from a trusted source
// address, the pin shows the original client's address; the same header from an untrusted source
// is refused, and so is a trusted source without one. On the loop front and on the fasthttp path.
func TestProxyProtocolFromHAProxy(t *testing.T) {
	for _, front := range []string{"loop", "fasthttp"} {
		t.Run(front, func(t *testing.T) {
			if front == "fasthttp" {
				t.Setenv("SIDPIN_LOOP_FRONT", "0")
			}
			node := startChatNodeNamed(t, "node1")
			p := startProxy(t, []string{node}, func(c *configs.Config) {
				loopConfig(c)
				c.Clients.ProxyProtocol = []string{"127.0.0.2"}
			})
			sidpinAddr := strings.TrimPrefix(p.base, "http://")
			fronts := startHAProxy(t, sidpinAddr, "send-proxy-v2 source 127.0.0.2", "send-proxy-v2 source 127.0.0.3", "send-proxy source 127.0.0.2")
			for _, via := range []string{fronts[0], fronts[2]} { // v2, then v1
				status, sid := handshakeFrom(t, "127.0.0.55", via, "")
				if status != 200 || sid == "" {
					t.Fatalf("through haproxy %s: %d %q", via, status, sid)
				}
				pin, ok, _ := p.store.Lookup(context.Background(), sid)
				if !ok || !strings.HasPrefix(pin.ClientAddr, "127.0.0.55:") {
					t.Fatalf("pin %+v %v: want the client's address 127.0.0.55", pin, ok)
				}
			}
			if status, sid := handshakeFrom(t, "127.0.0.56", fronts[1], ""); status == 200 || sid != "" {
				t.Fatalf("a PROXY header from an untrusted source: %d %q, want it refused", status, sid)
			}
			if status, _ := handshakeFrom(t, "127.0.0.2", sidpinAddr, ""); status == 200 {
				t.Fatalf("a trusted source without a PROXY header: %d, want it refused", status)
			}
			if status, _ := handshakeFrom(t, "127.0.0.57", sidpinAddr, ""); status != 200 {
				t.Fatalf("an ordinary client: %d", status)
			}
		})
	}
}

// TestTrustedForwardedFor: a trusted proxy's X-Forwarded-For names the client (the pin's
// client_addr), and the node gets it extended with the proxy's address and its X-Forwarded-Proto;
// anyone else's headers are replaced by the connection's address and sidpin's scheme.
func TestTrustedForwardedFor(t *testing.T) {
	seen := make(chan string, 8)
	node := serveEach(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			var req fasthttp.Request
			if req.Read(br) != nil {
				return
			}
			seen <- string(req.Header.Peek("X-Forwarded-For")) + " | " + string(req.Header.Peek("X-Forwarded-Proto"))
			sid := fmt.Sprintf("xff-%d", time.Now().UnixNano())
			body := `0{"sid":"` + sid + `","upgrades":[],"pingInterval":25000,"pingTimeout":20000}`
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		}
	})
	for _, front := range []string{"loop", "fasthttp"} {
		t.Run(front, func(t *testing.T) {
			if front == "fasthttp" {
				t.Setenv("SIDPIN_LOOP_FRONT", "0")
			}
			p := startProxy(t, []string{node}, func(c *configs.Config) {
				loopConfig(c)
				c.Clients.TrustedProxies = []string{"127.0.0.2"}
			})
			addr := strings.TrimPrefix(p.base, "http://")
			hdr := "X-Forwarded-For: 198.51.100.7, 203.0.113.9\r\nX-Forwarded-Proto: https\r\n"
			cases := []struct{ src, client, node string }{
				{"127.0.0.2", "203.0.113.9", "198.51.100.7, 203.0.113.9, 127.0.0.2 | https"},
				{"127.0.0.3", "127.0.0.3:", "127.0.0.3 | http"},
			}
			for _, tc := range cases {
				status, sid := handshakeFrom(t, tc.src, addr, hdr)
				if status != 200 {
					t.Fatalf("from %s: %d", tc.src, status)
				}
				if got := <-seen; got != tc.node {
					t.Fatalf("from %s the node got %q, want %q", tc.src, got, tc.node)
				}
				pin, ok, _ := p.store.Lookup(context.Background(), sid)
				if !ok || !strings.HasPrefix(pin.ClientAddr, tc.client) {
					t.Fatalf("from %s: pin %+v %v, want client %s", tc.src, pin, ok, tc.client)
				}
			}
		})
	}
}
