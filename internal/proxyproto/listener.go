package proxyproto

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Listener reads the PROXY header of the connections from trusted peers before handing them on, with
// the client's address as their RemoteAddr; a trusted peer's connection without a valid header, and
// any other peer's connection that starts with one, are closed. Headers are read by a goroutine per
// connection, bounded by timeout and by maxPending connections waiting at once: Accept never waits
// on a slow peer.
type Listener struct {
	net.Listener
	trusted func(netip.Addr) bool
	timeout time.Duration
	ready   chan net.Conn
	errc    chan error
	pending chan struct{} // a token per connection whose header is being read
	once    sync.Once
	done    chan struct{}
}

// maxPending bounds the connections whose header is being read at once; more are closed.
const maxPending = 4096

// NewListener wraps ln; trusted says which peers must send the header.
func NewListener(ln net.Listener, trusted func(netip.Addr) bool, timeout time.Duration) *Listener {
	l := &Listener{Listener: ln, trusted: trusted, timeout: timeout, ready: make(chan net.Conn),
		errc: make(chan error, 1), pending: make(chan struct{}, maxPending), done: make(chan struct{})}
	go l.acceptLoop()
	return l
}

func (l *Listener) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			select {
			case l.errc <- err:
			case <-l.done:
			}
			return
		}
		select {
		case l.pending <- struct{}{}:
			go l.handshake(c)
		default:
			c.Close() // too many headers being read: a flood, not clients
		}
	}
}

// handshake reads c's header (trusted peers) or checks it has none (others), then hands c on.
func (l *Listener) handshake(c net.Conn) {
	defer func() { <-l.pending }()
	peer := addrPortOf(c.RemoteAddr())
	_ = c.SetReadDeadline(time.Now().Add(l.timeout))
	conn, err := l.read(c, peer, l.trusted(peer.Addr()))
	_ = c.SetReadDeadline(time.Time{})
	if err != nil {
		c.Close()
		return
	}
	select {
	case l.ready <- conn:
	case <-l.done:
		conn.Close()
	}
}

// read reads enough of c to find its header (or to see it has none), returning the connection to
// serve: the bytes after the header are read first, and RemoteAddr is the client's.
func (l *Listener) read(c net.Conn, peer netip.AddrPort, trusted bool) (net.Conn, error) {
	var buf []byte
	tmp := make([]byte, 512)
	for {
		n, err := c.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if !trusted {
			if len(buf) > 0 && !Starts(buf) {
				return &Conn{Conn: c, rest: buf, remote: peer}, nil
			}
			if len(buf) >= len(v2Sig) || (len(buf) >= 6 && Starts(buf)) {
				return nil, ErrBadHeader // a PROXY header from a peer not trusted to send one
			}
		} else {
			h, used, perr := Parse(buf)
			switch {
			case perr == nil:
				remote := peer
				if h.Source.IsValid() {
					remote = h.Source
				}
				return &Conn{Conn: c, rest: buf[used:], remote: remote}, nil
			case perr != ErrNeedMore:
				return nil, perr
			}
		}
		if err != nil {
			return nil, err
		}
	}
}

// Accept returns the next connection whose header was read.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case err := <-l.errc:
		return nil, err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// Conn is a connection whose PROXY header was read: RemoteAddr is the client's address.
type Conn struct {
	net.Conn
	rest   []byte
	remote netip.AddrPort
}

func (c *Conn) Read(b []byte) (int, error) {
	if len(c.rest) > 0 {
		n := copy(b, c.rest)
		c.rest = c.rest[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// RemoteAddr is the client's address, as the header said (the peer's when it said none).
func (c *Conn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(c.remote) }

// NetConn is the connection under the header, for code that needs the socket itself; while bytes
// read with the header are still unread it is c, which must then be read through.
func (c *Conn) NetConn() net.Conn {
	if len(c.rest) > 0 {
		return c
	}
	return c.Conn
}

func addrPortOf(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	return netip.AddrPort{}
}
