package backends

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/configs"
)

// Transport is how sidpin reaches one node, and the one place that knows it: the address, TLS, the
// dialer (whose connections are tracked, so a node that goes down has its requests cut, and which
// dials nothing once the node is gone), the pooled HTTP client of polling and plain requests, the
// health checks' own client, and the WebSocket dial. A reload that changes any of it gives a kept node
// a new Transport; requests in flight finish on the old one.
type Transport struct {
	opts        TransportOptions // what it was built from
	addr        string
	tls         *tls.Config // nil: plain TCP
	dialTimeout time.Duration
	gone        func() bool // the node's sessions are over: dial nothing more
	conns       *connSet
	client      *fasthttp.HostClient
	prober      *fasthttp.HostClient // active HTTP checks: their own connection, apart from the traffic's

	// The event loops' side (see Endpoint): the resolved address and their connection count.
	resolved  atomic.Pointer[resolved]
	resolving atomic.Bool
	loopConns atomic.Int64
}

// TransportOptions are the config values a Transport is built from.
type TransportOptions struct {
	MaxConns       int
	DialTimeout    time.Duration
	MaxHeaderBytes int
	TLS            *tls.Config // nil: plain TCP
}

// transportOptions reads a node's transport settings from cfg; host is the node URL's host name.
func transportOptions(cfg *configs.Config, pc *configs.Pool, https bool, host string) (TransportOptions, error) {
	o := TransportOptions{
		MaxConns:       cfg.Limits.MaxConnections,
		DialTimeout:    cfg.Timeouts.UpstreamDial.D(),
		MaxHeaderBytes: cfg.Limits.MaxHeaderBytes,
	}
	if https {
		c, err := pc.TLS.ClientConfig(host)
		if err != nil {
			return o, fmt.Errorf("tls: %w", err)
		}
		o.TLS = c
	}
	return o, nil
}

// same reports whether a Transport built from o would be the same as one built from p.
func (o TransportOptions) same(p TransportOptions) bool {
	return o.MaxConns == p.MaxConns && o.DialTimeout == p.DialTimeout && o.MaxHeaderBytes == p.MaxHeaderBytes &&
		sameTLS(o.TLS, p.TLS)
}

func sameTLS(a, b *tls.Config) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.ServerName == b.ServerName && a.InsecureSkipVerify == b.InsecureSkipVerify &&
		a.RootCAs.Equal(b.RootCAs) && sameCerts(a.Certificates, b.Certificates)
}

func sameCerts(a, b []tls.Certificate) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if len(a[i].Certificate) == 0 || len(b[i].Certificate) == 0 || string(a[i].Certificate[0]) != string(b[i].Certificate[0]) {
			return false
		}
	}
	return true
}

// newTransport builds the transport to the node at addr.
func newTransport(addr string, o TransportOptions, gone func() bool) *Transport {
	t := &Transport{opts: o, addr: addr, tls: o.TLS, dialTimeout: o.DialTimeout, gone: gone, conns: &connSet{}}
	t.client = &fasthttp.HostClient{
		Addr:               addr,
		IsTLS:              o.TLS != nil,
		TLSConfig:          o.TLS,
		Dial:               t.dialTracked,
		MaxConns:           o.MaxConns,
		MaxConnWaitTimeout: time.Second,
		// Below Node's 5 s keepAliveTimeout, so an idle connection is dropped here before the node
		// closes it under a request.
		MaxIdleConnDuration:       idleConnTimeout,
		WriteTimeout:              10 * time.Second,
		MaxIdemponentCallAttempts: 2,
		// It never retries what may have reached the node: a polling GET can take packets off it.
		RetryIfErr:                    t.retryUnansweredOnce,
		DisablePathNormalizing:        true,
		DisableHeaderNamesNormalizing: true,
		NoDefaultUserAgentHeader:      true,
		ReadBufferSize:                o.MaxHeaderBytes,
	}
	t.prober = &fasthttp.HostClient{
		Addr:                          addr,
		IsTLS:                         o.TLS != nil,
		TLSConfig:                     o.TLS,
		Dial:                          t.dial,
		MaxConns:                      1,
		MaxIdleConnDuration:           idleConnTimeout,
		MaxIdemponentCallAttempts:     1,
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: true,
		MaxResponseBodySize:           64 << 10,
	}
	t.resolveLiteral()
	return t
}

// idleConnTimeout is how long a kept-alive connection to a node may sit unused.
const idleConnTimeout = 4 * time.Second

// dial opens a TCP connection to the node (TLS is the caller's: the HTTP clients do it themselves).
func (t *Transport) dial(addr string) (net.Conn, error) {
	return fasthttp.DialTimeout(addr, t.dialTimeout)
}

// dialTracked is the traffic's dial: nothing once the node is gone, and every connection tracked.
func (t *Transport) dialTracked(addr string) (net.Conn, error) {
	if t.gone() {
		return nil, ErrNodeDown // a retry of a request cut by CloseConnections ends here
	}
	c, err := t.dial(addr)
	if err != nil {
		return nil, err
	}
	return t.conns.track(c), nil
}

// retryUnansweredOnce sends a request again, once, only when the node closed the connection before
// answering a single byte: a kept-alive connection it was closing as the request went out, so the
// request was never processed. Anything that got part of an answer, or timed out, is never sent
// twice. A connection sidpin cut itself (the node is gone) is never retried either: the node did get
// the request, and a second copy of a held poll would be an overlapping GET.
func (t *Transport) retryUnansweredOnce(_ *fasthttp.Request, attempts int, err error) (resetTimeout, retry bool) {
	return false, !t.gone() && attempts == 1 && errors.Is(err, io.EOF)
}

// Do sends req to the node and reads the answer's head into resp (its body too, unless
// resp.StreamBody), until deadline.
func (t *Transport) Do(req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time) error {
	// The client refuses a request whose scheme is not its own, and a request from a TLS client
	// arrives as https whatever the node speaks.
	if t.tls != nil {
		req.URI().SetScheme("https")
	} else {
		req.URI().SetScheme("http")
	}
	return t.client.DoDeadline(req, resp, deadline)
}

// DialWebSocket opens the connection of a WebSocket tunnel to the node: TCP, then TLS for an https
// node, each bounded by the dial timeout. The tunnel owns it.
func (t *Transport) DialWebSocket() (net.Conn, error) {
	d := net.Dialer{Timeout: t.dialTimeout, KeepAlive: 30 * time.Second}
	conn, err := d.Dial("tcp", t.addr)
	if err != nil || t.tls == nil {
		return conn, err
	}
	tc := tls.Client(conn, t.tls)
	_ = tc.SetDeadline(time.Now().Add(t.dialTimeout))
	if err := tc.Handshake(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	_ = tc.SetDeadline(time.Time{})
	return tc, nil
}

// probe runs one active check; nil means healthy. A tcp check is a connect; an http check a GET of
// its path over the transport's TLS, on the checks' own connection.
func (t *Transport) probe(h *configs.Health) (draining bool, err error) {
	if h.Kind == configs.HealthTCP {
		c, err := net.DialTimeout("tcp", t.addr, h.Timeout.D())
		if err != nil {
			return false, fmt.Errorf("tcp check: %w", err)
		}
		return false, c.Close()
	}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(h.Path)
	req.SetHost(t.addr)
	req.URI().SetScheme(map[bool]string{true: "https", false: "http"}[t.tls != nil])
	req.Header.Set("User-Agent", "sidpin-health-check")
	resp.SkipBody = true
	if err := t.prober.DoTimeout(req, resp, h.Timeout.D()); err != nil {
		return false, fmt.Errorf("http check %s: %w", h.Path, err)
	}
	if h.DrainingStatus != 0 && resp.StatusCode() == h.DrainingStatus {
		return true, nil // healthy, and asking to be drained
	}
	if resp.StatusCode() != h.ExpectStatus {
		return false, fmt.Errorf("http check %s: status %d, want %d", h.Path, resp.StatusCode(), h.ExpectStatus)
	}
	return false, nil
}

// CloseConnections closes the transport's open traffic connections: requests in flight on them fail
// at once. It returns how many there were.
func (t *Transport) CloseConnections() int { return t.conns.closeAll() }
