package backends

import (
	"context"
	"net"
	"net/netip"
	"sync/atomic"
	"time"
)

// Endpoint is what an event loop needs to connect to a node by itself: the address resolved, the
// dial timeout, and the connection cap it shares with the other loops.
type Endpoint struct {
	Addr        netip.AddrPort
	DialTimeout time.Duration
	MaxConns    int
	// Conns counts the loops' open connections to the node (the HTTP client counts its own).
	Conns *atomic.Int64
	// Transport identifies the transport the endpoint belongs to: a reload that changes it gives
	// the node a new one, and connections of the old one are not reused.
	Transport *Transport
}

// resolveEvery is how long a resolved node address is used before it is resolved again (in the
// background: the loops keep the old address meanwhile).
const resolveEvery = 30 * time.Second

// resolveTimeout bounds one resolution.
const resolveTimeout = 5 * time.Second

type resolved struct {
	addr netip.AddrPort
	at   time.Time
}

// Endpoint returns the node's endpoint for an event loop; ok is false for a TLS node (its traffic
// stays with the HTTP client) and until its host name is first resolved, which this starts.
func (n *Node) Endpoint() (Endpoint, bool) { return n.transport.Load().endpoint() }

func (t *Transport) endpoint() (Endpoint, bool) {
	if t.tls != nil {
		return Endpoint{}, false
	}
	r := t.resolved.Load()
	if r == nil || (!r.at.IsZero() && time.Since(r.at) > resolveEvery) {
		t.resolveInBackground()
	}
	if r == nil {
		return Endpoint{}, false
	}
	return Endpoint{Addr: r.addr, DialTimeout: t.dialTimeout, MaxConns: t.opts.MaxConns, Conns: &t.loopConns,
		Transport: t}, true
}

// resolveLiteral sets the address at once when the node names an IP; a zero time marks it final.
func (t *Transport) resolveLiteral() {
	if ap, err := netip.ParseAddrPort(t.addr); err == nil {
		t.resolved.Store(&resolved{addr: ap})
	}
}

// resolveInBackground resolves the node's host name, one resolution at a time; a failure keeps the
// address known before, if any (the dial to it will tell whether it still works).
func (t *Transport) resolveInBackground() {
	if !t.resolving.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer t.resolving.Store(false)
		host, port, err := net.SplitHostPort(t.addr)
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
		defer cancel()
		ap, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil || len(ap) == 0 {
			return
		}
		pn, err := net.LookupPort("tcp", port)
		if err != nil {
			return
		}
		addr := ap[0]
		for _, a := range ap { // the first IPv4 address, as Go's dialer tries first
			if a.Is4() || a.Is4In6() {
				addr = a.Unmap()
				break
			}
		}
		t.resolved.Store(&resolved{addr: netip.AddrPortFrom(addr, uint16(pn)), at: time.Now()})
	}()
}
