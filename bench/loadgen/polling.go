package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// pollClient is one virtual Engine.IO polling client: its own session, one request at a time.
type pollClient struct {
	hc      *fasthttp.HostClient
	host    string
	base    string // path?EIO=4&transport=polling
	uri     string // base&sid=S
	timeout time.Duration
	req     *fasthttp.Request
	resp    *fasthttp.Response
	rec     recorder
}

var errClosed = errors.New("server closed the session (packet 1)")

// do sends one HTTP request and returns the status and body (valid until the next call).
func (p *pollClient) do(ctx context.Context, method, uri string, body []byte) (int, []byte, error) {
	p.req.Reset()
	p.resp.Reset()
	p.req.Header.SetMethod(method)
	p.req.SetRequestURI(uri)
	p.req.Header.SetHost(p.host)
	if body != nil {
		p.req.Header.SetContentType("text/plain;charset=UTF-8")
		p.req.SetBodyRaw(body)
	}
	deadline := time.Now().Add(p.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := p.hc.DoDeadline(p.req, p.resp, deadline); err != nil {
		return 0, nil, err
	}
	return p.resp.StatusCode(), p.resp.Body(), nil
}

func (p *pollClient) handshake(ctx context.Context) error {
	status, body, err := p.do(ctx, fasthttp.MethodGet, p.base, nil)
	if err != nil {
		return err
	}
	sid, err := parseOpen(status, body)
	if err != nil {
		return err
	}
	p.uri = p.base + "&sid=" + sid
	return nil
}

// cycle is one POST of msg followed by GETs until the echo is back: normally exactly 2 requests.
// Server pings met on the way are answered with a POST of "3" (counted as extra requests).
func (p *pollClient) cycle(ctx context.Context, msg []byte) error {
	t0 := time.Now()
	status, body, err := p.do(ctx, fasthttp.MethodPost, p.uri, msg)
	if err != nil {
		return fmt.Errorf("POST: %w", err)
	}
	if status != fasthttp.StatusOK || string(body) != "ok" {
		return fmt.Errorf("POST: status %d body %.80q", status, body)
	}
	p.rec.observe(time.Since(t0))

	for got := false; !got; {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		t0 = time.Now()
		status, body, err = p.do(ctx, fasthttp.MethodGet, p.uri, nil)
		if err != nil {
			return fmt.Errorf("GET: %w", err)
		}
		if status != fasthttp.StatusOK {
			return fmt.Errorf("GET: status %d body %.80q", status, body)
		}
		p.rec.observe(time.Since(t0))
		ping := false
		for _, pkt := range bytes.Split(body, []byte{0x1e}) {
			switch {
			case bytes.Equal(pkt, msg):
				got = true
			case len(pkt) == 1 && pkt[0] == '2':
				ping = true
			case len(pkt) == 1 && pkt[0] == '6':
			case len(pkt) >= 1 && pkt[0] == '1':
				return errClosed
			default:
				return fmt.Errorf("GET: unexpected packet %.80q", pkt)
			}
		}
		if ping {
			status, body, err = p.do(ctx, fasthttp.MethodPost, p.uri, []byte("3"))
			if err != nil {
				return fmt.Errorf("POST pong: %w", err)
			}
			if status != fasthttp.StatusOK {
				return fmt.Errorf("POST pong: status %d body %.80q", status, body)
			}
			p.rec.extra++
		}
	}
	return nil
}

func runPolling(cfg config) error {
	sd := newSourceDialer(cfg)
	hc := &fasthttp.HostClient{
		Addr:                      cfg.addr,
		Dial:                      func(addr string) (net.Conn, error) { return sd.DialContext(context.Background(), "tcp", addr) },
		MaxConns:                  cfg.c + 16,
		MaxConnWaitTimeout:        cfg.timeout,
		MaxIdemponentCallAttempts: 1, // a polling GET is not safely retryable
		MaxIdleConnDuration:       time.Minute,
		ReadTimeout:               cfg.timeout,
		WriteTimeout:              cfg.timeout,
		DisablePathNormalizing:    true,
		NoDefaultUserAgentHeader:  true,
		ReadBufferSize:            8192,
		WriteBufferSize:           8192,
	}
	msg := payloadPacket(cfg.size)
	pairs := (cfg.n + 1) / 2
	elog := newErrorLog(cfg.maxErrLg)
	ctx, cancel := deadlineCtx(cfg.maxDur)
	defer cancel()

	clients := make([]*pollClient, cfg.c)
	for i := range clients {
		clients[i] = &pollClient{
			hc: hc, host: cfg.addr, base: cfg.path + "?EIO=4&transport=polling", timeout: cfg.timeout,
			req: fasthttp.AcquireRequest(), resp: fasthttp.AcquireResponse(),
		}
	}

	// Phase 1: every client handshakes (not in the rate, counted in requests_total).
	var wg sync.WaitGroup
	ok := make([]bool, cfg.c)
	for i, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := cl.handshake(ctx); err != nil {
				cl.rec.errors++
				elog.add("handshake", err)
				return
			}
			cl.rec.extra++
			ok[i] = true
		}()
	}
	wg.Wait()

	// Phase 2: the timed echo loop.
	start := time.Now()
	for i, cl := range clients {
		if !ok[i] {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < pairs; j++ {
				if ctx.Err() != nil {
					cl.rec.timedOut = true
					return
				}
				if err := cl.cycle(ctx, msg); err != nil {
					if ctx.Err() != nil {
						cl.rec.timedOut = true
						return
					}
					cl.rec.errors++
					elog.add("polling", err)
					return // the session is in an unknown state: this client stops
				}
			}
			// Close the session politely (not counted in the rate).
			if _, _, err := cl.do(ctx, fasthttp.MethodPost, cl.uri, []byte("1")); err == nil {
				cl.rec.extra++
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
	fmt.Printf("polling: %d clients, %d requests in %.2fs = %.0f req/s, p50 %sms p99 %sms, errors %d, timed out %d\n",
		cfg.c, s.count, elapsed.Seconds(), float64(s.count)/elapsed.Seconds(), ms(s.p50), ms(s.p99), s.errors, s.timedOut)
	printResult("mode", "polling", "clients", cfg.c, "size", cfg.size,
		"requests", s.count, "requests_total", s.count+s.extra, "elapsed_s", fmt.Sprintf("%.3f", elapsed.Seconds()),
		"rate", fmt.Sprintf("%.0f", float64(s.count)/elapsed.Seconds()),
		"p50_ms", ms(s.p50), "p90_ms", ms(s.p90), "p99_ms", ms(s.p99), "max_ms", ms(s.max),
		"errors", s.errors, "timed_out", s.timedOut)
	return nil
}
