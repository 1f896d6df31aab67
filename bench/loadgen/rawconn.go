package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// rawConn is one client connection driven by hand (HTTP/1.1 keep-alive, one request at a time), for the
// modes where the connection itself matters: a held poll owns its connection (mode held), and a new client
// comes with a new connection (mode handshake). fasthttp's Request.Write and Response.Read do the framing.
type rawConn struct {
	c       net.Conn
	br      *bufio.Reader
	bw      *bufio.Writer
	req     fasthttp.Request
	resp    fasthttp.Response
	host    string
	timeout time.Duration
}

func newRawConn(cfg config, readBuf, writeBuf int) *rawConn {
	return &rawConn{
		br: bufio.NewReaderSize(nil, readBuf), bw: bufio.NewWriterSize(nil, writeBuf),
		host: cfg.addr, timeout: cfg.timeout,
	}
}

// attach makes rc use c (its buffers are reused from the previous connection).
func (rc *rawConn) attach(c net.Conn) {
	rc.c = c
	rc.br.Reset(c)
	rc.bw.Reset(c)
}

func (rc *rawConn) close() {
	if rc.c != nil {
		rc.c.Close()
	}
}

// deadline is now + the per-request timeout, or ctx's deadline if sooner.
func (rc *rawConn) deadline(ctx context.Context, d time.Duration) time.Time {
	t := time.Now().Add(d)
	if cd, ok := ctx.Deadline(); ok && cd.Before(t) {
		t = cd
	}
	return t
}

// send writes one request without waiting for the answer.
func (rc *rawConn) send(ctx context.Context, method, uri string, body []byte) error {
	rc.req.Reset()
	rc.req.Header.SetMethod(method)
	rc.req.SetRequestURI(uri)
	rc.req.Header.SetHost(rc.host)
	if body != nil {
		rc.req.Header.SetContentType("text/plain;charset=UTF-8")
		rc.req.SetBodyRaw(body)
	}
	rc.c.SetWriteDeadline(rc.deadline(ctx, rc.timeout))
	if err := rc.req.Write(rc.bw); err != nil {
		return err
	}
	return rc.bw.Flush()
}

// recv reads one answer, waiting at most wait (bounded by ctx). The body is valid until the next call.
func (rc *rawConn) recv(ctx context.Context, wait time.Duration) (int, []byte, error) {
	rc.resp.Reset()
	rc.c.SetReadDeadline(rc.deadline(ctx, wait))
	if err := rc.resp.Read(rc.br); err != nil {
		return 0, nil, err
	}
	return rc.resp.StatusCode(), rc.resp.Body(), nil
}

func (rc *rawConn) do(ctx context.Context, method, uri string, body []byte) (int, []byte, error) {
	if err := rc.send(ctx, method, uri, body); err != nil {
		return 0, nil, err
	}
	return rc.recv(ctx, rc.timeout)
}

// parseOpen returns the sid of a polling handshake's answer (an open packet, possibly followed by more
// packets after the record separator).
func parseOpen(status int, body []byte) (string, error) {
	if status != fasthttp.StatusOK || len(body) < 2 || body[0] != '0' {
		return "", fmt.Errorf("handshake: status %d body %.80q", status, body)
	}
	var open struct {
		Sid string `json:"sid"`
	}
	js := body[1:]
	if i := bytes.IndexByte(js, 0x1e); i >= 0 {
		js = js[:i]
	}
	if err := json.Unmarshal(js, &open); err != nil || open.Sid == "" {
		return "", fmt.Errorf("handshake: no sid in %.80q", body)
	}
	return open.Sid, nil
}
