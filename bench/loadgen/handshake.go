package main

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// runHandshake opens cfg.n new polling sessions in all, cfg.c at a time. Each is a new client: a new
// connection (from the next loopback source address), the handshake GET, one POST on the session (the
// close packet "1", so that the node and the proxy are left with nothing), and the connection closed.
// The rate counts sessions (2 HTTP requests each); the latency is from the dial to the open packet.
func runHandshake(cfg config) error {
	elog := newErrorLog(cfg.maxErrLg)
	ctx, cancel := deadlineCtx(cfg.maxDur)
	defer cancel()
	sd := newSourceDialer(cfg)
	base := cfg.path + "?EIO=4&transport=polling"
	closePkt := []byte("1")

	recs := make([]*recorder, cfg.c)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := range recs {
		rec := &recorder{}
		recs[w] = rec
		wg.Add(1)
		go func() {
			defer wg.Done()
			rc := newRawConn(cfg, 4096, 1024)
			for next.Add(1) <= int64(cfg.n) {
				if ctx.Err() != nil {
					rec.timedOut = true
					return
				}
				t0 := time.Now()
				c, err := sd.DialContext(ctx, "tcp", cfg.addr)
				if err != nil {
					rec.errors++
					elog.add("handshake dial", err)
					continue
				}
				rc.attach(c)
				err = func() error {
					defer c.Close()
					status, body, err := rc.do(ctx, fasthttp.MethodGet, base, nil)
					if err != nil {
						return fmt.Errorf("GET: %w", err)
					}
					sid, err := parseOpen(status, body)
					if err != nil {
						return err
					}
					lat := time.Since(t0)
					status, body, err = rc.do(ctx, fasthttp.MethodPost, base+"&sid="+sid, closePkt)
					if err != nil {
						return fmt.Errorf("POST: %w", err)
					}
					if status != fasthttp.StatusOK || string(body) != "ok" {
						return fmt.Errorf("POST: status %d body %.80q", status, body)
					}
					rec.observe(lat)
					return nil
				}()
				if err != nil {
					if ctx.Err() != nil {
						rec.timedOut = true
						return
					}
					rec.errors++
					elog.add("handshake", err)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	s := summarize(recs)
	fmt.Printf("handshake: %d workers, %d sessions in %.2fs = %.0f handshakes/s, p50 %sms p99 %sms, errors %d, timed out %d\n",
		cfg.c, s.count, elapsed.Seconds(), float64(s.count)/elapsed.Seconds(), ms(s.p50), ms(s.p99), s.errors, s.timedOut)
	printResult("mode", "handshake", "workers", cfg.c, "sessions", s.count, "requests_total", 2*s.count,
		"elapsed_s", fmt.Sprintf("%.3f", elapsed.Seconds()),
		"rate", fmt.Sprintf("%.0f", float64(s.count)/elapsed.Seconds()),
		"p50_ms", ms(s.p50), "p90_ms", ms(s.p90), "p99_ms", ms(s.p99), "max_ms", ms(s.max),
		"errors", s.errors, "timed_out", s.timedOut)
	return nil
}
