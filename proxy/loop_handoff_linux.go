//go:build linux

package proxy

import (
	"net"
	"net/netip"
	"os"
	"sync/atomic"

	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/internal/evloop"
	"github.com/sidpin/sidpin/internal/hijacked"
)

// handOff gives the connection to the fasthttp server, with the bytes already read of it (the
// request to serve, and anything behind it). Its per-client count goes with it.
func (c *clientConn) handOff(data []byte) {
	s := c.s
	buffered := append([]byte(nil), data...)
	s.loop.Forget(c.fd)
	c.detach()
	file := os.NewFile(uintptr(c.fd), "client")
	conn, err := net.FileConn(file) // a duplicate, in Go's netpoller
	file.Close()
	if err != nil {
		c.release()
		return
	}
	lc := &loopConn{Conn: conn, buffered: buffered, release: c.release, f: s.f, remote: net.TCPAddrFromAddrPort(c.addr)}
	go func() { _ = s.p.server.ServeConn(lc) }()
}

// detach takes the connection out of the loop front, socket open and still counted per client (its
// release goes with it): it is handed on.
func (c *clientConn) detach() {
	s := c.s
	s.clients.remove(c)
	c.closed = true
	c.deadline = 0
	s.loop.Stop(c.timer)
	c.timer, c.in, c.out = nil, nil, nil
	s.f.conns.Add(-1)
}

// loopConn is a client connection the loop handed to fasthttp: it reads the bytes the loop had
// read first, and counts the client's connection until it closes or moves on (HandOff).
type loopConn struct {
	net.Conn
	buffered []byte
	release  func()
	state    atomic.Uint32 // connOpen, connReleased or connMoved
	f        *front
	remote   net.Addr // the client's address: the PROXY header's when one was read
}

// RemoteAddr is the client's address, as the loop knew it.
func (c *loopConn) RemoteAddr() net.Addr { return c.remote }

const (
	connOpen uint32 = iota
	connReleased
	connMoved
)

func (c *loopConn) Read(b []byte) (int, error) {
	if len(c.buffered) > 0 {
		n := copy(b, c.buffered)
		c.buffered = c.buffered[n:]
		if len(c.buffered) == 0 {
			c.buffered = nil
		}
		return n, nil
	}
	return c.Conn.Read(b)
}

// Close closes the connection and ends its count, once.
func (c *loopConn) Close() error {
	err := c.Conn.Close()
	if c.state.CompareAndSwap(connOpen, connReleased) {
		c.release()
	}
	return err
}

// HandOff moves the end of the count to the returned function (a WebSocket relay takes the socket).
func (c *loopConn) HandOff() (release func()) {
	if !c.state.CompareAndSwap(connOpen, connMoved) {
		return func() {}
	}
	return c.release
}

// NetConn is the TCP connection itself, for the WebSocket relay's event loop; while bytes the loop
// read are still unread it is the loopConn, which the relay then copies through.
func (c *loopConn) NetConn() net.Conn {
	if len(c.buffered) > 0 {
		return c
	}
	return c.Conn
}

// backToLoop is ServeHTTP's last step on a connection the loop handed over: a kept-alive connection
// goes back to the loop after its answer (fasthttp hijacks it once the answer is written), unless
// the connection or the proxy is closing.
func (p *Proxy) backToLoop(ctx *fasthttp.RequestCtx) {
	lc, ok := ctx.Conn().(*loopConn)
	if !ok || ctx.Hijacked() || ctx.Response.ConnectionClose() || ctx.Request.Header.ConnectionClose() || p.draining.Load() {
		return
	}
	ctx.Hijack(lc.rejoin)
}

// rejoin takes the hijacked connection back into a loop, when nothing of it is left in fasthttp's
// reader or the loop's bytes; otherwise fasthttp goes on serving it.
func (c *loopConn) rejoin(hc net.Conn) {
	f := c.f
	if !hijacked.ReadsRaw(hc) || len(c.buffered) > 0 || f.draining.Load() {
		_ = f.p.server.ServeConn(hc)
		return
	}
	fd, ok := evloop.DupConn(c.Conn)
	if !ok {
		_ = f.p.server.ServeConn(hc)
		return
	}
	var addr = tcpAddrPort(c.remote)
	release := c.HandOff()
	c.Conn.Close()
	s := f.nextShard()
	s.loop.Locked(func() {
		f.conns.Add(1)
		s.adopt(fd, addr, release, nil)
	})
}

func tcpAddrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	return netip.AddrPort{}
}

// nextShard picks the loop a connection coming back from fasthttp goes to.
func (f *front) nextShard() *shard {
	return f.shards[f.rejoined.Add(1)%uint64(len(f.shards))]
}
