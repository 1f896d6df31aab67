package main

import (
	"context"
	"crypto/tls"
	"net"
	"sync/atomic"
)

// sourceDialer dials from loopback source addresses in turn, so that a proxy's per-client limits see
// the load as many clients, as a real deployment would, not as one address.
type sourceDialer struct {
	cfg  config
	next atomic.Uint64
}

func newSourceDialer(cfg config) *sourceDialer { return &sourceDialer{cfg: cfg} }

func (d *sourceDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	nd := net.Dialer{Timeout: d.cfg.timeout}
	if d.cfg.sources > 1 {
		i := d.next.Add(1) % uint64(d.cfg.sources)
		nd.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, byte(1+i/250), byte(1+i%250))}
	}
	c, err := nd.DialContext(ctx, network, addr)
	if err != nil || !d.cfg.tls {
		return c, err
	}
	// Every mode speaks HTTP or WebSocket over what this returns: TLS here makes them all https/wss.
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, ServerName: "sidpin.bench"}) //nolint:gosec // the bench's own certificate, loopback only
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return tc, nil
}
