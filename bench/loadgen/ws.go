package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/websocket"
)

var (
	pingPkt = []byte("2")
	pongPkt = []byte("3")
)

func newDialer(cfg config, bufSize int, pool websocket.BufferPool) *websocket.Dialer {
	return &websocket.Dialer{
		NetDialContext:   newSourceDialer(cfg).DialContext,
		HandshakeTimeout: cfg.timeout,
		ReadBufferSize:   bufSize,
		WriteBufferSize:  bufSize,
		WriteBufferPool:  pool,
	}
}

// dialEIO opens an Engine.IO v4 WebSocket and reads the open packet.
func dialEIO(ctx context.Context, d *websocket.Dialer, cfg config, buf *bytes.Buffer) (*websocket.Conn, error) {
	url := "ws://" + cfg.addr + cfg.path + "?EIO=4&transport=websocket"
	c, resp, err := d.DialContext(ctx, url, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial: %v (status %d)", err, resp.StatusCode)
		}
		return nil, fmt.Errorf("dial: %w", err)
	}
	c.SetReadDeadline(time.Now().Add(cfg.timeout))
	msg, err := readMsg(c, buf)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("open packet: %w", err)
	}
	if len(msg) < 2 || msg[0] != '0' {
		c.Close()
		return nil, fmt.Errorf("open packet: got %.80q", msg)
	}
	return c, nil
}

// readMsg reads one whole message into buf (reused; the result is valid until the next call).
func readMsg(c *websocket.Conn, buf *bytes.Buffer) ([]byte, error) {
	_, r, err := c.NextReader()
	if err != nil {
		return nil, err
	}
	buf.Reset()
	if _, err := buf.ReadFrom(r); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func closeWS(c *websocket.Conn) {
	_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.Close()
}

func runWS(cfg config) error {
	msg := payloadPacket(cfg.size)
	elog := newErrorLog(cfg.maxErrLg)
	ctx, cancel := deadlineCtx(cfg.maxDur)
	defer cancel()
	d := newDialer(cfg, 4096, nil)

	type wsClient struct {
		c   *websocket.Conn
		buf bytes.Buffer
		rec recorder
	}
	clients := make([]*wsClient, cfg.c)
	var wg sync.WaitGroup
	for i := range clients {
		cl := &wsClient{}
		clients[i] = cl
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dialEIO(ctx, d, cfg, &cl.buf)
			if err != nil {
				cl.rec.errors++
				elog.add("ws", err)
				return
			}
			cl.c = c
		}()
	}
	wg.Wait()

	start := time.Now()
	for _, cl := range clients {
		if cl.c == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer closeWS(cl.c)
			c := cl.c
			for j := 0; j < cfg.n; j++ {
				if ctx.Err() != nil {
					cl.rec.timedOut = true
					return
				}
				t0 := time.Now()
				if err := roundTrip(ctx, c, cfg, msg, &cl.buf, &cl.rec); err != nil {
					if ctx.Err() != nil {
						cl.rec.timedOut = true
						return
					}
					cl.rec.errors++
					elog.add("ws", err)
					return
				}
				cl.rec.observe(time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	recs := make([]*recorder, len(clients))
	for i, cl := range clients {
		recs[i] = &cl.rec
	}
	s := summarize(recs)
	fmt.Printf("ws: %d connections, %d round trips in %.2fs = %.0f msg/s, p50 %sms p99 %sms, errors %d, timed out %d\n",
		cfg.c, s.count, elapsed.Seconds(), float64(s.count)/elapsed.Seconds(), ms(s.p50), ms(s.p99), s.errors, s.timedOut)
	printResult("mode", "ws", "conns", cfg.c, "size", cfg.size,
		"roundtrips", s.count, "pongs", s.extra, "elapsed_s", fmt.Sprintf("%.3f", elapsed.Seconds()),
		"rate", fmt.Sprintf("%.0f", float64(s.count)/elapsed.Seconds()),
		"p50_ms", ms(s.p50), "p90_ms", ms(s.p90), "p99_ms", ms(s.p99), "max_ms", ms(s.max),
		"errors", s.errors, "timed_out", s.timedOut)
	return nil
}

// roundTrip sends msg and reads until the same message comes back, answering server pings.
func roundTrip(ctx context.Context, c *websocket.Conn, cfg config, msg []byte, buf *bytes.Buffer, rec *recorder) error {
	deadline := time.Now().Add(cfg.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.SetWriteDeadline(deadline)
	if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	c.SetReadDeadline(deadline)
	for {
		got, err := readMsg(c, buf)
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		switch {
		case bytes.Equal(got, msg):
			return nil
		case bytes.Equal(got, pingPkt):
			if err := c.WriteMessage(websocket.TextMessage, pongPkt); err != nil {
				return fmt.Errorf("write pong: %w", err)
			}
			rec.extra++
		case len(got) == 1 && got[0] == '6':
		case len(got) >= 1 && got[0] == '1':
			return errClosed
		default:
			return fmt.Errorf("unexpected message %.80q", got)
		}
	}
}

// runIdle opens cfg.c WebSockets, prints READY, holds them for cfg.hold answering pings, then closes them.
func runIdle(cfg config) error {
	elog := newErrorLog(cfg.maxErrLg)
	ctx, cancel := deadlineCtx(cfg.maxDur)
	defer cancel()
	// Small buffers and a shared write pool: the load generator shares the box with the proxy.
	d := newDialer(cfg, 512, &sync.Pool{})

	var (
		opened, failed, dropped, pongs atomic.Int64
		stopping                       atomic.Bool
		mu                             sync.Mutex
		conns                          []*websocket.Conn
		wgOpen, wgRead                 sync.WaitGroup
		sem                            = make(chan struct{}, max(1, cfg.dialC))
	)
	start := time.Now()
	for i := 0; i < cfg.c; i++ {
		wgOpen.Add(1)
		go func() {
			var buf bytes.Buffer
			sem <- struct{}{}
			c, err := dialEIO(ctx, d, cfg, &buf)
			<-sem
			if err != nil {
				failed.Add(1)
				elog.add("idle open", err)
				wgOpen.Done()
				return
			}
			opened.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wgRead.Add(1)
			wgOpen.Done()
			defer wgRead.Done()
			buf = bytes.Buffer{} // drop the open packet's buffer: idle connections keep nothing
			for {
				c.SetReadDeadline(time.Now().Add(cfg.hold + 2*cfg.timeout))
				got, err := readMsg(c, &buf)
				if err != nil {
					if !stopping.Load() {
						dropped.Add(1)
						elog.add("idle read", err)
					}
					return
				}
				if bytes.Equal(got, pingPkt) {
					c.SetWriteDeadline(time.Now().Add(cfg.timeout))
					if err := c.WriteMessage(websocket.TextMessage, pongPkt); err != nil {
						if !stopping.Load() {
							dropped.Add(1)
							elog.add("idle pong", err)
						}
						return
					}
					pongs.Add(1)
				}
				if buf.Cap() > 4096 {
					buf = bytes.Buffer{}
				}
			}
		}()
	}
	wgOpen.Wait()
	openTime := time.Since(start)
	fmt.Printf("READY opened=%d failed=%d open_s=%.3f\n", opened.Load(), failed.Load(), openTime.Seconds())

	time.Sleep(cfg.hold)
	alive := opened.Load() - dropped.Load()
	stopping.Store(true)
	mu.Lock()
	for _, c := range conns {
		c.Close()
	}
	mu.Unlock()
	done := make(chan struct{})
	go func() { wgRead.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		return errors.New("idle: readers did not stop within 10s")
	}
	fmt.Printf("idle: %d/%d WebSockets opened in %.2fs, held %s, %d alive at the end, %d pings answered\n",
		opened.Load(), cfg.c, openTime.Seconds(), cfg.hold, alive, pongs.Load())
	printResult("mode", "idle", "target", cfg.c, "opened", opened.Load(), "failed", failed.Load(),
		"open_s", fmt.Sprintf("%.3f", openTime.Seconds()), "hold_s", fmt.Sprintf("%.0f", cfg.hold.Seconds()),
		"alive_at_end", alive, "dropped", dropped.Load(), "pongs", pongs.Load(),
		"errors", failed.Load()+dropped.Load())
	return nil
}
