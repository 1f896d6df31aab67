package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/affinity"
	"github.com/sidpin/sidpin/backends"
	"github.com/sidpin/sidpin/engineio"
)

// sniffLimit bounds what is read of a handshake answer to find its open packet (~150 bytes in
// practice), and what is inflated of it when the node compressed it. The answer passes on unchanged.
const sniffLimit = 8 << 10

// serveHandshake opens a new polling session on a picked node and pins the sid from the node's
// answer before the answer is released to the client.
func (p *Proxy) serveHandshake(ctx *fasthttp.RequestCtx, pool *backends.Pool, r request) {
	if r.isEngineHandshake() { // not the client bundle and the like: they open no session
		if !p.admitHandshake(ctx, r) {
			return
		}
		defer p.store.ReleasePin()
	}
	cleanRequest(&ctx.Request.Header)
	p.addForwarded(ctx)
	node, up := p.pickAndSend(ctx, pool, r)
	if up == nil {
		return
	}
	defer node.EndHandshake()
	if !ctx.IsGet() || r.transport != "polling" || up.StatusCode() != fasthttp.StatusOK {
		relayAnswer(ctx, up, relay{}) // refused handshakes, served client files and errors pass through unpinned
		return
	}
	info, found := sniffHandshake(ctx, up)
	if !found {
		p.log.Debug("handshake answer without a sid", "pool", pool.Name, "node", node.Name)
		return
	}
	if err := p.pin(pool, node, info, r, clientString(p.clientOfCtx(ctx)), affinity.TransportPolling); err != nil {
		p.refuseHandshake(ctx, node, info, err)
		return
	}
	p.sessions.Get(info.SID).Handshake(0, int64(len(ctx.Response.Body())))
}

// admitHandshake decides, before any node sees the request, whether a new session may open: the
// client's address must be within its handshake rate (limits.per_client), and the pin table must have
// room. A refused handshake leaves nothing behind on a node. On true the caller must call
// p.store.ReleasePin once the pin is stored or the handshake failed.
func (p *Proxy) admitHandshake(ctx *fasthttp.RequestCtx, r request) bool {
	client := p.clientOfCtx(ctx)
	switch status, retry := p.allowNew(client.Addr(), clientString(client)); status {
	case fasthttp.StatusTooManyRequests:
		ctx.Error(textTooManySessions, status)
		ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, strconv.Itoa(retryAfterSecs(retry))) // after Error, which resets the headers
		if r.upgrade {
			ctx.SetConnectionClose()
		}
		return false
	case fasthttp.StatusServiceUnavailable:
		ctx.Error(textPinTableFull, status)
		return false
	}
	return true
}

// allowNew decides, for both fronts, whether a client may open a new session: a token of its
// address's handshake rate, then room in the pin table. 0 when it may (the caller must release the
// reservation), else the status to answer: 429 (retry is when a token is there) or 503.
func (p *Proxy) allowNew(addr netip.Addr, client string) (status int, retry time.Duration) {
	sctx, cancel := p.storeCtx()
	ok, retry := p.limits.AllowHandshake(sctx, addr)
	cancel()
	if !ok {
		return fasthttp.StatusTooManyRequests, retry
	}
	if !p.store.ReservePin() {
		p.log.Warn("pin table full: handshake refused", "client", client)
		return fasthttp.StatusServiceUnavailable, 0
	}
	return 0, 0
}

// retryAfterSecs is a Retry-After in whole seconds, at least 1.
func retryAfterSecs(retry time.Duration) int { return max(1, int((retry+time.Second-1)/time.Second)) }

// refuseHandshake answers a handshake whose session cannot be pinned: a node's answer sidpin will not
// vouch for (bad sid or ping values) gets 502, a pin table that failed gets 503.
func (p *Proxy) refuseHandshake(ctx *fasthttp.RequestCtx, node *backends.Node, info engineio.OpenInfo, err error) {
	ctx.Response.Reset()
	status, text := p.handshakeRefusal(node, info, err)
	ctx.Error(text, status)
}

// handshakeRefusal logs why a handshake's session could not be pinned and says how to answer.
func (p *Proxy) handshakeRefusal(node *backends.Node, info engineio.OpenInfo, err error) (status int, text string) {
	if errors.Is(err, errBadOpen) {
		p.log.Error("the node's handshake answer is refused; session not pinned", "pool", node.Pool, "node", node.Name, "err", err)
		return fasthttp.StatusBadGateway, textBadOpen
	}
	p.log.Error("session not pinned; handshake refused", "sid", info.SID, "node", node.Name, "err", err)
	return fasthttp.StatusServiceUnavailable, textCannotPin
}

// sidpin's answers to a handshake it refuses.
const (
	textBadOpen         = "sidpin: the chat node's handshake answer is invalid"
	textCannotPin       = "sidpin: cannot pin the session"
	textNoNode          = "sidpin: no chat node is available"
	textTooManySessions = "sidpin: too many new sessions from this address; retry later"
	textPinTableFull    = "sidpin: the pin table is full"
)

// pickAndSend forwards a sid-less request to a node chosen for a new session and returns the node
// with its answer (head read, body unread), or nil after answering the client. A node that cannot be
// reached never saw the request, so one other node is tried.
func (p *Proxy) pickAndSend(ctx *fasthttp.RequestCtx, pool *backends.Pool, r request) (*backends.Node, *fasthttp.Response) {
	handshake := r.isEngineHandshake()
	wait := p.cfg().Timeouts.UpstreamResponse.D()
	if handshake {
		wait = p.cfg().Timeouts.Handshake.D()
	}
	deadline := time.Now().Add(wait)
	for attempt := 0; attempt < 2; attempt++ {
		node, err := p.pick(pool)
		if err != nil {
			ctx.Error(textNoNode, fasthttp.StatusServiceUnavailable)
			return nil, nil
		}
		up, err := p.send(ctx, exchange{node: node, deadline: deadline, handshake: handshake})
		if err == nil {
			return node, up
		}
		node.EndHandshake()
		if backends.ClassifyHTTP(err, handshake) != backends.FaultRefused {
			return nil, nil
		}
	}
	return nil, nil
}

func (p *Proxy) pick(pool *backends.Pool) (*backends.Node, error) {
	sctx, cancel := p.storeCtx()
	defer cancel()
	node, countsErr, err := pool.Choose(sctx, p.store) // the caller ends the handshake Choose begins
	if countsErr != nil {
		p.log.Warn("session counts unavailable; balancing without them", "pool", pool.Name, "err", countsErr)
	}
	return node, err
}

// sniffHandshake relays a polling handshake answer and reads the open packet from at most sniffLimit
// bytes of its body, in any encoding; the io cookie is the fallback.
func sniffHandshake(ctx *fasthttp.RequestCtx, up *fasthttp.Response) (engineio.OpenInfo, bool) {
	encoding := contentCoding(up.Header.ContentEncoding())
	cookie := ioCookie(&up.Header)
	var head []byte
	if size := up.Header.ContentLength(); size >= 0 && size <= bufferLimit {
		relayAnswer(ctx, up, relay{})
		head = ctx.Response.Body()
	} else {
		buf := make([]byte, sniffLimit)
		n, _ := io.ReadFull(up.BodyStream(), buf)
		head = buf[:n]
		relayAnswer(ctx, up, relay{prefix: head})
	}
	return sniffOpen(head, encoding, cookie)
}

// learnSID reads the open packet from a whole handshake answer (tests and small answers).
func learnSID(resp *fasthttp.Response) (engineio.OpenInfo, bool) {
	return sniffOpen(resp.Body(), contentCoding(resp.Header.ContentEncoding()), ioCookie(&resp.Header))
}

// sniffOpen finds the session a handshake answer opens: the open packet in the start of its body (in
// the answer's encoding), else the io cookie (empty: none).
func sniffOpen(head []byte, encoding, cookie string) (engineio.OpenInfo, bool) {
	if info, err := engineio.SniffHandshake(inflateHead(head, encoding)); err == nil {
		return info, true
	}
	if cookie != "" {
		return engineio.OpenInfo{SID: cookie}, true
	}
	return engineio.OpenInfo{}, false
}

func ioCookie(h *fasthttp.ResponseHeader) string {
	var c fasthttp.Cookie
	c.SetKey("io")
	if h.Cookie(&c) && validSID(c.Value()) {
		return string(c.Value())
	}
	return ""
}

func contentCoding(v []byte) string {
	switch {
	case bytes.EqualFold(v, []byte("gzip")):
		return "gzip"
	case bytes.EqualFold(v, []byte("deflate")):
		return "deflate"
	case len(v) == 0:
		return ""
	}
	return "other"
}

// inflateHead returns at most sniffLimit bytes of body decoded: the start of a compressed answer
// inflates into its first bytes, whatever the whole would inflate to (a bomb costs nothing here).
func inflateHead(body []byte, encoding string) []byte {
	if encoding == "" {
		return body
	}
	return inflate(body, encoding, sniffLimit)
}

// errBadOpen marks a node's open packet that sidpin refuses to pin.
var errBadOpen = errors.New("invalid open packet")

// pin stores the session's pin, with a lifetime from the node's own ping values (bounded by
// timeouts.max_pin_lifetime). A sid or ping values sidpin would not accept from a client are refused.
func (p *Proxy) pin(pool *backends.Pool, node *backends.Node, info engineio.OpenInfo, r request, client, transport string) error {
	if !validSID([]byte(info.SID)) {
		return fmt.Errorf("%w: sid %.40q is not 1-%d printable ASCII characters without space or %s", errBadOpen, info.SID, maxSIDLen, sidForbidden)
	}
	if info.PingInterval < 0 || info.PingTimeout < 0 {
		return fmt.Errorf("%w: negative pingInterval %d or pingTimeout %d", errBadOpen, info.PingInterval, info.PingTimeout)
	}
	sctx, cancel := p.storeCtx()
	defer cancel()
	pin := affinity.Pin{
		SID: info.SID, Pool: pool.Name, Node: node.Name, Transport: transport, EIO: r.eio, ClientAddr: client, TTL: p.pinTTL(info),
	}
	cur, created, err := p.store.Pin(sctx, pin)
	switch {
	case err != nil:
		return err
	case !created && cur.Node != node.Name:
		return errors.New("the node handed out a sid pinned to another node")
	case created:
		p.metrics.Handshake(pool.Name, node.Name, transport)
		p.beginSession(pin)
	}
	p.log.Debug("session pinned", "sid", info.SID, "pool", pool.Name, "node", node.Name, "transport", transport)
	return nil
}

// pinTTL is how long a session's pin lives without traffic: the node's pingInterval + pingTimeout
// (upstream_response when it announced none) plus pin_slack, at most max_pin_lifetime.
func (p *Proxy) pinTTL(info engineio.OpenInfo) time.Duration {
	t := p.cfg().Timeouts
	limit := t.MaxPinLifetime.D()
	ttl := t.UpstreamResponse.D()
	if info.PingInterval > 0 {
		ms := min(int64(info.PingInterval)+int64(info.PingTimeout), math.MaxInt64/int64(time.Millisecond))
		ttl = time.Duration(ms) * time.Millisecond
	}
	return min(ttl+t.PinSlack.D(), limit)
}
