package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// heldSession is one polling session whose GET the node holds; its connection carries only that GET.
type heldSession struct {
	rc  *rawConn
	uri string
}

// runHeld opens cfg.c polling sessions, each on its own connection: a handshake GET, then a polling GET
// that the node holds (it has nothing to send until its next ping, pingInterval after the handshake).
// It prints READY once every GET is sent, waits cfg.hold, then releases every session with a POST of a
// message (from a small pool of other connections): the node answers the held GET with it. Each answer
// is checked (the echo, counted as answered), then the session is closed with a POST of "1" on its own
// connection. A GET answered by a ping (the hold outlived pingInterval) is counted as pinged, the ping
// answered, and the GET sent again.
func runHeld(cfg config) error {
	elog := newErrorLog(cfg.maxErrLg)
	ctx, cancel := deadlineCtx(cfg.maxDur)
	defer cancel()
	sd := newSourceDialer(cfg)
	msg := payloadPacket(cfg.size)
	base := cfg.path + "?EIO=4&transport=polling"
	conc := max(1, cfg.dialC)
	// The release POSTs and ping answers: a pool of conc connections beside the held ones.
	hc := &fasthttp.HostClient{
		Addr:                      cfg.addr,
		Dial:                      func(addr string) (net.Conn, error) { return sd.DialContext(ctx, "tcp", addr) },
		MaxConns:                  conc,
		MaxConnWaitTimeout:        cfg.timeout,
		MaxIdemponentCallAttempts: 1,
		ReadTimeout:               cfg.timeout,
		WriteTimeout:              cfg.timeout,
		DisablePathNormalizing:    true,
		NoDefaultUserAgentHeader:  true,
	}
	post := func(uri string, body []byte) error {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.Header.SetMethod(fasthttp.MethodPost)
		req.SetRequestURI(uri)
		req.Header.SetHost(cfg.addr)
		req.Header.SetContentType("text/plain;charset=UTF-8")
		req.SetBodyRaw(body)
		if err := hc.DoTimeout(req, resp, cfg.timeout); err != nil {
			return err
		}
		if resp.StatusCode() != fasthttp.StatusOK || string(resp.Body()) != "ok" {
			return fmt.Errorf("status %d body %.80q", resp.StatusCode(), resp.Body())
		}
		return nil
	}

	var (
		opened, failed, answered, pinged, errs, requests atomic.Int64
		releasing                                        atomic.Bool
		sessions                                         = make([]*heldSession, cfg.c)
		wgOpen, wgDone                                   sync.WaitGroup
		sem                                              = make(chan struct{}, conc)
	)
	// The wait of a held GET: the hold, plus the time to open and release (bounded by ctx anyway).
	holdWait := cfg.hold + 2*cfg.timeout

	start := time.Now()
	for i := 0; i < cfg.c; i++ {
		wgOpen.Add(1)
		go func() {
			sem <- struct{}{}
			s, err := openHeld(ctx, sd, cfg, base)
			<-sem
			if err != nil {
				failed.Add(1)
				elog.add("held open", err)
				wgOpen.Done()
				return
			}
			requests.Add(2) // the handshake and the GET
			opened.Add(1)
			sessions[i] = s
			wgDone.Add(1)
			wgOpen.Done()
			defer wgDone.Done()
			defer s.rc.close()
			for {
				status, body, err := s.rc.recv(ctx, holdWait)
				if err != nil {
					errs.Add(1)
					elog.add("held GET", err)
					return
				}
				if status != fasthttp.StatusOK {
					errs.Add(1)
					elog.add("held GET", fmt.Errorf("status %d body %.80q", status, body))
					return
				}
				got, ping := false, false
				for _, pkt := range bytes.Split(body, []byte{0x1e}) {
					switch {
					case bytes.Equal(pkt, msg):
						got = true
					case len(pkt) == 1 && pkt[0] == '2':
						ping = true
					case len(pkt) == 1 && pkt[0] == '6':
					default:
						errs.Add(1)
						elog.add("held GET", fmt.Errorf("unexpected packet %.80q", pkt))
						return
					}
				}
				if got && !releasing.Load() {
					errs.Add(1)
					elog.add("held GET", fmt.Errorf("answered before the release"))
					return
				}
				if ping {
					pinged.Add(1)
					requests.Add(1)
					if err := post(s.uri, pongPkt); err != nil {
						errs.Add(1)
						elog.add("held pong", err)
						return
					}
				}
				if got {
					break
				}
				requests.Add(1)
				if err := s.rc.send(ctx, fasthttp.MethodGet, s.uri, nil); err != nil {
					errs.Add(1)
					elog.add("held GET again", err)
					return
				}
			}
			answered.Add(1)
			// Close the session on the node, on this (now free) connection.
			requests.Add(1)
			if status, body, err := s.rc.do(ctx, fasthttp.MethodPost, s.uri, []byte("1")); err != nil || status != fasthttp.StatusOK {
				errs.Add(1)
				elog.add("held close", fmt.Errorf("%v status %d body %.80q", err, status, body))
			}
		}()
	}
	wgOpen.Wait()
	openTime := time.Since(start)
	fmt.Printf("READY opened=%d failed=%d open_s=%.3f\n", opened.Load(), failed.Load(), openTime.Seconds())

	select {
	case <-time.After(cfg.hold):
	case <-ctx.Done():
	}

	// Release: one POST of the message per session; the node answers the held GET with it.
	t0 := time.Now()
	releasing.Store(true)
	var releaseErrs atomic.Int64
	var wg sync.WaitGroup
	var next atomic.Int64
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(sessions) || ctx.Err() != nil {
					return
				}
				if sessions[i] == nil {
					continue
				}
				requests.Add(1)
				if err := post(sessions[i].uri, msg); err != nil {
					releaseErrs.Add(1)
					elog.add("held release", err)
				}
			}
		}()
	}
	wg.Wait()
	done := make(chan struct{})
	go func() { wgDone.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(cfg.timeout):
		// Unanswered GETs: close their connections so that their readers end (counted as errors).
		for _, s := range sessions {
			if s != nil {
				s.rc.close()
			}
		}
		<-done
	}
	releaseTime := time.Since(t0)

	fmt.Printf("held: %d/%d polls held, opened in %.2fs, held %s, %d answered at the release (%.2fs), %d answered by a ping, errors %d\n",
		opened.Load(), cfg.c, openTime.Seconds(), cfg.hold, answered.Load(), releaseTime.Seconds(), pinged.Load(),
		failed.Load()+errs.Load()+releaseErrs.Load())
	printResult("mode", "held", "target", cfg.c, "opened", opened.Load(), "failed", failed.Load(),
		"open_s", fmt.Sprintf("%.3f", openTime.Seconds()), "hold_s", fmt.Sprintf("%.0f", cfg.hold.Seconds()),
		"answered", answered.Load(), "pinged", pinged.Load(), "release_s", fmt.Sprintf("%.3f", releaseTime.Seconds()),
		"requests_total", requests.Load(), "errors", failed.Load()+errs.Load()+releaseErrs.Load())
	return nil
}

// openHeld dials one connection, handshakes on it and sends the polling GET that the node will hold.
func openHeld(ctx context.Context, sd *sourceDialer, cfg config, base string) (*heldSession, error) {
	c, err := sd.DialContext(ctx, "tcp", cfg.addr)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	rc := newRawConn(cfg, 2048, 512)
	rc.attach(c)
	status, body, err := rc.do(ctx, fasthttp.MethodGet, base, nil)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("handshake: %w", err)
	}
	sid, err := parseOpen(status, body)
	if err != nil {
		c.Close()
		return nil, err
	}
	s := &heldSession{rc: rc, uri: base + "&sid=" + sid}
	if err := rc.send(ctx, fasthttp.MethodGet, s.uri, nil); err != nil {
		c.Close()
		return nil, fmt.Errorf("GET: %w", err)
	}
	return s, nil
}
