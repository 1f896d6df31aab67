package proxy_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/affinity"
	"github.com/sidpin/sidpin/configs"
	"github.com/sidpin/sidpin/proxy"
)

// TestShutdownLosesNoRequest: clients behind a balancer that checks readiness, some opening a
// connection per request (as engine.io-client does under Node), some keeping theirs alive, lose no
// request to a shutdown. For timeouts.shutdown_delay sidpin still serves while it reports draining,
// and every answer closes its connection; the balancer's checks notice and send new connections
// elsewhere; then sidpin stops accepting and answers everything begun. Without the delay, a listener
// closed under a steady stream of new connections resets the ones the kernel had queued.
func TestShutdownLosesNoRequest(t *testing.T) {
	ln := listen(t)
	node := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") }}
	go node.Serve(ln)
	t.Cleanup(func() { node.Shutdown() })
	cfg, err := configs.QuickStart("127.0.0.1:0", []string{"http://" + ln.Addr().String()}, "/socket.io/")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Limits.PerClient.MaxConnections = 0
	cfg.Timeouts.ShutdownDelay = configs.Duration(400 * time.Millisecond)
	store, _ := affinity.NewMemoryStore(affinity.MemoryOptions{})
	defer store.Close()
	p, err := proxy.New(cfg, store, quiet)
	if err != nil {
		t.Fatal(err)
	}
	pln := listen(t)
	go p.Serve(pln)
	addr := pln.Addr().String()

	// The balancer: checks readiness every 50 ms and takes sidpin out after two failed checks.
	var up atomic.Bool
	up.Store(true)
	stop := make(chan struct{})
	go func() {
		failed := 0
		for up.Load() {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if failed = map[bool]int{true: failed + 1, false: 0}[p.Draining()]; failed >= 2 {
				up.Store(false)
			}
		}
	}()

	var served, elsewhere, lost atomic.Int64
	var lostWhy sync.Map
	var wg sync.WaitGroup
	t0 := time.Now()
	count := func(err error, how string) {
		if err == nil {
			served.Add(1)
			return
		}
		lost.Add(1)
		lostWhy.Store(fmt.Sprintf("%s at %v (draining %v): %v", how, time.Since(t0).Round(time.Millisecond), p.Draining(), err), true)
	}
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keepAlive := i%4 == 0
			var conn *keptConn
			defer func() { conn.close() }()
			for j := 0; j < 20000; j++ {
				select {
				case <-stop:
					return
				default:
				}
				if conn == nil && !up.Load() {
					elsewhere.Add(1) // the balancer sends this one to another instance
					time.Sleep(time.Millisecond)
					continue
				}
				if !keepAlive {
					count(oneRequest(addr), "new connection")
					continue
				}
				if conn == nil {
					var err error
					if conn, err = dialKept(addr); err != nil {
						count(err, "dial")
						continue
					}
				}
				closing, err := conn.request()
				count(err, "keep-alive")
				if closing || err != nil {
					conn.close()
					conn = nil
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("served %d, sent elsewhere by the balancer %d, lost %d", served.Load(), elsewhere.Load(), lost.Load())
	if lost.Load() != 0 {
		var why []string
		lostWhy.Range(func(k, _ any) bool { why = append(why, k.(string)); return true })
		t.Fatalf("%d requests were sent and got no answer: %v", lost.Load(), why)
	}
}

// keptConn is a keep-alive client connection.
type keptConn struct {
	net.Conn
	br *bufio.Reader
}

func dialKept(addr string) (*keptConn, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	return &keptConn{Conn: c, br: bufio.NewReader(c)}, nil
}

func (c *keptConn) close() {
	if c != nil {
		c.Conn.Close()
	}
}

// request sends one keep-alive request and reads its answer; closing says the answer closed the
// connection.
func (c *keptConn) request() (closing bool, err error) {
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte("GET /x HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		return false, err
	}
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	if err := resp.Read(c.br); err != nil {
		return false, err
	}
	if resp.StatusCode() != 200 {
		return false, errors.New("status " + strconv.Itoa(resp.StatusCode()))
	}
	return resp.ConnectionClose(), nil
}

// oneRequest sends one request on a new connection and reads the answer's status line.
func oneRequest(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte("GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "HTTP/1.1 200") {
		return errors.New("status " + line)
	}
	return nil
}
