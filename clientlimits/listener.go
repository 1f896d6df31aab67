package clientlimits

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"time"
)

// Refusal is what a connection over its address's cap gets.
type Refusal uint8

const (
	// RefuseClose resets the connection at once. Use it under TLS (a plain-text answer would only be
	// noise to a TLS client), or to spend nothing at all on refused connections.
	RefuseClose Refusal = iota
	// Refuse429 writes a minimal "429 Too Many Requests" with Retry-After and Connection: close,
	// without reading anything, then closes. A client whose request is already unread in the socket
	// may see a reset instead of the answer (closing with unread data resets, by TCP's rules).
	Refuse429
)

// Answer429 is the whole answer a refused connection gets with Refuse429.
const Answer429 = "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

// refuseWriteTimeout bounds the 429's write; it fits any fresh socket's send buffer, so this only
// guards against the impossible.
const refuseWriteTimeout = 50 * time.Millisecond

type listener struct {
	net.Listener
	l      *Limiter
	refuse Refusal
}

// Listener wraps ln: a connection accepted over its address's connection cap is refused as refuse
// says and never returned; the others come back as *Conn, counted until they close. Connections
// that are not TCP come back unwrapped and uncounted. With the cap off, ln itself is returned.
// Accept loops over refused connections: each turn consumes one connection that arrived, so it ends
// when the refused ones stop arriving or ln fails.
func (l *Limiter) Listener(ln net.Listener, refuse Refusal) net.Listener {
	if l.conns == nil {
		return ln
	}
	return &listener{Listener: ln, l: l, refuse: refuse}
}

func (ln *listener) Accept() (net.Conn, error) {
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if wc := ln.l.admit(c, ln.refuse); wc != nil {
			return wc, nil
		}
	}
}

// admit counts c, or refuses it and returns nil.
func (l *Limiter) admit(c net.Conn, refuse Refusal) net.Conn {
	ta, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return c
	}
	k, shard, a := l.acquire(ta.AddrPort().Addr())
	switch a {
	case refused:
		refuseConn(c, refuse)
		return nil
	case uncounted:
		return c
	}
	return &Conn{Conn: c, t: l.conns, key: k, shard: shard}
}

// AdmitAddr counts one connection of addr for whoever accepts connections without a Listener (an
// event loop): ok is false when addr is over its cap and the connection must be refused; otherwise
// release ends the count, once however often it is called.
func (l *Limiter) AdmitAddr(addr netip.Addr) (release func(), ok bool) {
	if l.conns == nil {
		return func() {}, true
	}
	k, shard, a := l.acquire(addr)
	switch a {
	case refused:
		return nil, false
	case uncounted:
		return func() {}, true
	}
	var once atomic.Bool
	return func() {
		if once.CompareAndSwap(false, true) {
			l.conns.release(k, shard)
		}
	}, true
}

// acquire counts one connection of addr under its key.
func (l *Limiter) acquire(addr netip.Addr) (netip.Addr, uint8, admit) {
	k := Key(addr, l.ipv6Prefix)
	if !k.IsValid() {
		return k, 0, uncounted
	}
	shard := shardOf(k)
	a, kick := l.conns.acquire(k, shard, l.clock)
	switch {
	case a == uncounted && l.mayWarn(&l.lastFullWarn):
		l.log.Warn("client connection table full: connections of new addresses pass uncounted", "addresses", l.conns.size())
	case a != refused && a != uncounted && kick:
		l.kick()
	}
	return k, shard, a
}

func refuseConn(c net.Conn, refuse Refusal) {
	if refuse == Refuse429 {
		_ = c.SetWriteDeadline(time.Now().Add(refuseWriteTimeout))
		_, _ = io.WriteString(c, Answer429)
		_ = c.Close()
		return
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // a reset: no TIME_WAIT left behind for a flood of refused connections
	}
	_ = c.Close()
}

// Conn is a counted client connection. Its Close releases the count exactly once, however often it
// is called, unless HandOff moved that duty elsewhere.
type Conn struct {
	net.Conn
	t     *connTable
	key   netip.Addr
	state atomic.Uint32 // connOpen, connReleased or connHandedOff
	shard uint8
}

const (
	connOpen uint32 = iota
	connReleased
	connHandedOff
)

// Close closes the connection and releases its count (once).
func (c *Conn) Close() error {
	err := c.Conn.Close()
	if c.state.CompareAndSwap(connOpen, connReleased) {
		c.t.release(c.key, c.shard)
	}
	return err
}

// NetConn is the connection underneath, as crypto/tls.Conn's: for code that needs the *net.TCPConn
// itself (its descriptor). Closing it directly does not release the count: see HandOff.
func (c *Conn) NetConn() net.Conn { return c.Conn }

// HandOff is for a relay that takes the descriptor over and closes this Conn while the client is
// still connected: from now on Close no longer releases the count, release does (once; call it when
// the client's connection really ends). After Close, release does nothing.
func (c *Conn) HandOff() (release func()) {
	if !c.state.CompareAndSwap(connOpen, connHandedOff) {
		return func() {}
	}
	return func() {
		if c.state.CompareAndSwap(connHandedOff, connReleased) {
			c.t.release(c.key, c.shard)
		}
	}
}

// Addr is the client key the connection is counted under.
func (c *Conn) Addr() netip.Addr { return c.key }

// CloseWrite half-closes the connection when the connection underneath can.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("clientlimits: CloseWrite on %T: %w", c.Conn, errors.ErrUnsupported)
}

// CloseRead is CloseWrite's twin.
func (c *Conn) CloseRead() error {
	if cr, ok := c.Conn.(interface{ CloseRead() error }); ok {
		return cr.CloseRead()
	}
	return fmt.Errorf("clientlimits: CloseRead on %T: %w", c.Conn, errors.ErrUnsupported)
}

// ReadFrom and WriteTo keep io.Copy through the wrapper on the kernel's splice and sendfile paths.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// WriteTo: see ReadFrom.
func (c *Conn) WriteTo(w io.Writer) (int64, error) {
	if wt, ok := c.Conn.(io.WriterTo); ok {
		return wt.WriteTo(w)
	}
	return io.Copy(w, struct{ io.Reader }{c.Conn})
}
