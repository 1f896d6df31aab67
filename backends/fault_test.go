package backends

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sidpin/sidpin/internal/testnode"

	"github.com/valyala/fasthttp"
)

// misbehavingNode accepts connections on loopback and answers each request as act says.
func misbehavingNode(t *testing.T, act func(c *net.TCPConn)) string {
	t.Helper()
	return testnode.Serve(t, func(c *net.TCPConn) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if testnode.ReadHead(bufio.NewReader(c)) != nil { // every request here has no body
			return
		}
		act(c)
	})
}

func answer(s string) func(*net.TCPConn) {
	return func(c *net.TCPConn) { _, _ = io.WriteString(c, s) }
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestClassifyHTTP: only what the node itself did counts against it. Each case is a real node on
// loopback behaving one way, reached through the node client the proxy uses.
func TestClassifyHTTP(t *testing.T) {
	hugeHeader := "HTTP/1.1 302 Found\r\nLocation: /" + strings.Repeat("a", 64<<10) + "\r\nContent-Length: 0\r\n\r\n"
	cases := []struct {
		name      string
		addr      func(t *testing.T) string
		handshake bool
		want      Fault
	}{
		{"refused", closedPort, false, FaultRefused},
		{"closed before answering", func(t *testing.T) string { return misbehavingNode(t, func(*net.TCPConn) {}) }, false, FaultNoAnswer},
		{"reset before answering", func(t *testing.T) string {
			return misbehavingNode(t, func(c *net.TCPConn) { _ = c.SetLinger(0) })
		}, false, FaultNoAnswer},
		{"not HTTP", func(t *testing.T) string { return misbehavingNode(t, answer("SSH-2.0-OpenSSH_9.2\r\n\r\n")) }, false, FaultNotHTTP},
		{"silent handshake", func(t *testing.T) string {
			return misbehavingNode(t, func(*net.TCPConn) { time.Sleep(time.Second) })
		}, true, FaultSlow},
		{"silent session request (a held poll)", func(t *testing.T) string {
			return misbehavingNode(t, func(*net.TCPConn) { time.Sleep(time.Second) })
		}, false, NoFault},
		{"answer head larger than the buffer (a client can cause it)", func(t *testing.T) string {
			return misbehavingNode(t, answer(hugeHeader))
		}, false, NoFault},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := testNode(t, c.addr(t))
			err := roundTrip(n, 200*time.Millisecond)
			if err == nil {
				t.Fatal("the request succeeded")
			}
			if got := ClassifyHTTP(err, c.handshake); got != c.want {
				t.Fatalf("ClassifyHTTP(%v) = %v, want %v", err, got, c.want)
			}
		})
	}
}

// TestNoFaultForWhatTheNodeAnswered: a huge answer is streamed (no error at all), and a full
// connection pool is sidpin's own limit.
func TestNoFaultForWhatTheNodeAnswered(t *testing.T) {
	huge := misbehavingNode(t, func(c *net.TCPConn) {
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", 64<<20)
		chunk := []byte(strings.Repeat("x", 64<<10))
		for range 1024 {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	})
	if err := roundTrip(testNode(t, huge), 5*time.Second); err != nil {
		t.Fatalf("a 64 MiB answer: %v", err)
	}
	held := misbehavingNode(t, func(*net.TCPConn) { time.Sleep(time.Second) })
	n := testNode(t, held)
	tr := n.transport.Load()
	tr.client.MaxConns, tr.client.MaxConnWaitTimeout = 1, 0
	go func() { _ = roundTrip(n, time.Second) }()
	time.Sleep(100 * time.Millisecond)
	err := roundTrip(n, time.Second)
	if got := ClassifyHTTP(err, true); err == nil || got != NoFault {
		t.Fatalf("a full pool: %v classified %v", err, got)
	}
}

func testNode(t *testing.T, addr string) *Node {
	t.Helper()
	s := testSet(t, fmt.Sprintf("pools:\n  - {name: p, nodes: [{name: n, url: \"http://%s\"}]}\n", addr))
	return s.Pools[0].Nodes[0]
}

// roundTrip sends one GET through the node's client, reading the answer's body to its end.
func roundTrip(n *Node, timeout time.Duration) error {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("/socket.io/?EIO=4&transport=polling")
	req.SetHost("x")
	resp.StreamBody = true
	if err := n.Do(req, resp, time.Now().Add(timeout)); err != nil {
		return err
	}
	_, err := io.Copy(io.Discard, resp.BodyStream())
	return err
}
