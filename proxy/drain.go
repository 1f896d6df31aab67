package proxy

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// drainQuiet is how long the listener goes on accepting once the drain began, taking the
// connections the kernel completed.
const drainQuiet = 50 * time.Millisecond

// firstRequestWait is how long connections accepted during the drain have to get their first
// request read before idle connections are closed.
const firstRequestWait = 250 * time.Millisecond

// drainingListener stops accepting with as few resets as the kernel allows. Closing a listening
// socket resets every connection the kernel completed but sidpin had not accepted yet, whose clients
// may have sent a request (an L4 balancer cannot retry those), so the drain goes on accepting for
// drainQuiet before it closes. Connections that keep arriving may still meet a reset: the balancer
// must have stopped sending them first (timeouts.shutdown_delay, with its checks on /readyz).
type drainingListener struct {
	net.Listener
	tcp      *net.TCPListener // nil: not TCP, closed at once
	draining atomic.Bool
	once     sync.Once
	closed   chan struct{}
}

func newDrainingListener(ln net.Listener) *drainingListener {
	tcp, _ := ln.(*net.TCPListener)
	return &drainingListener{Listener: ln, tcp: tcp, closed: make(chan struct{})}
}

// Accept passes connections on; while draining, a wait of drainQuiet without one ends the drain: the
// listener closes, and the server's accept loop ends as on a closed listener.
func (l *drainingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	var ne net.Error
	if err != nil && l.draining.Load() && errors.As(err, &ne) && ne.Timeout() {
		l.Close()
		return nil, net.ErrClosed
	}
	return c, err
}

// Close closes the listener once.
func (l *drainingListener) Close() error {
	var err error
	l.once.Do(func() {
		err = l.Listener.Close()
		close(l.closed)
	})
	return err
}

// drain lets Accept take what is queued until drainQuiet has passed, closes the listener, and
// returns then (or after a bound, having closed it).
func (l *drainingListener) drain() {
	if l.tcp == nil {
		l.Close()
		return
	}
	l.draining.Store(true)
	_ = l.tcp.SetDeadline(time.Now().Add(drainQuiet))
	select {
	case <-l.closed:
	case <-time.After(time.Second): // no accept loop is running
		l.Close()
	}
}

// parkedListener accepts nothing until it is closed: the fasthttp server "serves" it so that its
// Shutdown waits for the connections the loop front handed to it.
type parkedListener struct {
	addr   net.Addr
	once   sync.Once
	closed chan struct{}
}

func newParkedListener(addr net.Addr) *parkedListener {
	return &parkedListener{addr: addr, closed: make(chan struct{})}
}

func (l *parkedListener) Accept() (net.Conn, error) {
	<-l.closed
	return nil, net.ErrClosed
}

func (l *parkedListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *parkedListener) Addr() net.Addr { return l.addr }
