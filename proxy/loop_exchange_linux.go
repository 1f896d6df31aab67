//go:build linux

package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"

	"github.com/sidpin/sidpin/affinity"
	"github.com/sidpin/sidpin/backends"
	"github.com/sidpin/sidpin/engineio"
	"github.com/sidpin/sidpin/internal/evloop"
	"github.com/sidpin/sidpin/internal/httpwire"
	"github.com/sidpin/sidpin/metrics"
	"github.com/sidpin/sidpin/sessionlog"
)

// loopExchange is one polling request's trip to its node and back, in the loop. While the node holds
// the request it is this struct and the two sockets: no goroutine, no buffer.
type loopExchange struct {
	s     *shard
	c     *clientConn
	nc    *nodeConn
	pool  *backends.Pool
	node  *backends.Node
	ep    backends.Endpoint
	sid   string
	eio   int
	jsonp bool
	get   bool
	ttl   time.Duration // the node's deadline: the session's pin TTL, as on the fasthttp path
	start int64

	// The request: req is what goes to the node (the head and the body bytes read with it). It is
	// kept until the first answer byte when the node connection was reused, so that one the node
	// was closing as the request went out is retried once on a new connection (the node never saw it).
	req      []byte
	reqOff   int
	keepReq  bool
	retried  bool
	bodyLeft int64                  // body bytes still to come from the client
	bodyScan *engineio.CloseScanner // a POST body that comes in several reads
	pending  []byte                 // body bytes the node could not take yet
	closing  bool                   // the POST carries a close packet

	// The answer.
	answered bool   // its head went to the client: no answer of sidpin's own is possible any more
	head     []byte // a head that came in pieces
	status   int
	framing  httpwire.Framing
	left     int64 // FramingLength: body bytes to come
	chunks   *httpwire.ChunkedReader
	watch    *closeWatch // a GET's 200: watched for a close packet
	body400  []byte      // the start of a 400's body, for "code":1
	nodeKeep bool        // the node connection may serve another request afterwards
	paused   bool        // the node is not read until the client took what is pending
	drained  bool        // the node's last read came back short: nothing waits unread
	done     bool

	hs *loopHandshake // a polling handshake: the answer is held until the session is pinned

	// The session log's record of the session (nil: log off), and the body bytes each way.
	rec               *sessionlog.Record
	bytesIn, bytesOut int64
}

// loopExchanges counts the requests the loop front sent to their nodes (tests, diagnostics).
var loopExchanges atomic.Int64

// maxBody400 is how much of a 400's body is kept to look for Engine.IO's error code (its bodies are
// some 40 bytes).
const maxBody400 = 1 << 10

func (s *shard) newExchange(c *clientConn, pool *backends.Pool, node *backends.Node, ep backends.Endpoint, pin affinity.Pin, r request) *loopExchange {
	x := &loopExchange{s: s, c: c, pool: pool, node: node, ep: ep, sid: r.sid, eio: pin.EIO, jsonp: r.jsonp,
		ttl: pin.TTL, start: s.loop.Now()}
	if r.sid != "" {
		x.rec = s.p.sessionRecord(pin)
	}
	return x
}

// begin sends the request: its head as the node must see it, the body bytes read with it, and then
// the rest of the body as the client sends it.
func (x *loopExchange) begin(req *httpwire.Request, body []byte, bodyLeft int64) {
	s, c := x.s, x.c
	loopExchanges.Add(1)
	x.get = string(req.Method) == "GET"
	head := s.appendNodeRequest(s.out[:0], req, c, x.upgrading())
	x.req = make([]byte, len(head)+len(body))
	copy(x.req[copy(x.req, head):], body)
	s.out = head[:0]
	x.bodyLeft = bodyLeft
	x.bytesIn = int64(len(body)) + bodyLeft
	if !x.get {
		if bodyLeft == 0 {
			x.closing = postCloses(body, x.eio, x.jsonp)
		} else {
			scan := engineio.NewCloseScanner(x.eio, x.jsonp, engineio.FromClient)
			x.bodyScan = &scan
			_, _ = scan.Write(body)
		}
	}
	c.x = x
	if bodyLeft > 0 {
		c.wait(phaseHead) // the body must come within timeouts.client_read
	} else {
		c.wait(phaseNode)
	}
	nc, err := s.takeConn(x)
	if err != nil {
		x.failed(err)
		return
	}
	x.use(nc)
}

// use sends the request on nc (connected, or connecting: then once it is).
func (x *loopExchange) use(nc *nodeConn) {
	x.nc, nc.x = nc, x
	x.reqOff = 0
	x.keepReq = nc.reused && !x.retried
	if !nc.connecting {
		x.writeRequest()
	}
}

// appendNodeRequest writes the request head the node gets: hop-by-hop headers (and those the
// client's Connection names) left out, X-Forwarded-For extended, X-Forwarded-Proto and -Host set,
// as cleanRequest and addForwarded do on the fasthttp path. An upgrade gets its Connection and
// Upgrade back, and loses Sec-WebSocket-Extensions (compressed frames would hide the Engine.IO
// packets watched) and Content-Length, as writeUpgradeRequest does.
func (s *shard) appendNodeRequest(dst []byte, req *httpwire.Request, c *clientConn, upgrade bool) []byte {
	dst = append(dst, req.Method...)
	dst = append(dst, ' ')
	dst = append(dst, req.Target...)
	dst = append(dst, " HTTP/1.1\r\n"...)
	if upgrade {
		dst = append(dst, "Connection: Upgrade\r\nUpgrade: websocket\r\n"...)
	}
	// A trusted proxy's X-Forwarded-For is extended and its -Proto kept; anyone else's are replaced.
	trusted := s.p.peers.trusts(c.addr.Addr())
	var xff, proto []byte
	for i := range req.Len() {
		f := req.Field(i)
		switch {
		case req.IsHopByHop(f.Name), equalFoldString(f.Name, "X-Forwarded-Host"):
		case equalFoldString(f.Name, "X-Forwarded-Proto"):
			if trusted && proto == nil {
				proto = f.Value
			}
		case upgrade && (equalFoldString(f.Name, "Sec-WebSocket-Extensions") || equalFoldString(f.Name, "Content-Length")):
		case equalFoldString(f.Name, "X-Forwarded-For"):
			switch {
			case !trusted:
			case xff == nil:
				xff = f.Value
			default:
				xff = append(append(append([]byte(nil), xff...), ", "...), f.Value...)
			}
		default:
			dst = httpwire.AppendField(dst, f.Name, f.Value)
		}
	}
	dst = append(dst, "X-Forwarded-For: "...)
	if len(xff) > 0 {
		dst = append(append(dst, xff...), ", "...)
	}
	dst = c.clientIP(dst)
	if proto == nil {
		proto = protoHTTP
	}
	dst = append(append(append(dst, "\r\nX-Forwarded-Proto: "...), proto...), "\r\nX-Forwarded-Host: "...)
	dst = append(dst, req.Host...)
	return append(dst, "\r\n\r\n"...)
}

var protoHTTP = []byte("http")

// writeRequest writes what is left of the request to the node.
func (x *loopExchange) writeRequest() {
	n, errno := evloop.WriteAll(x.nc.fd, x.req[x.reqOff:])
	x.reqOff += n
	switch errno {
	case 0:
	case unix.EAGAIN:
		return // the node's next Out edge goes on
	default:
		x.nodeFailed(errno)
		return
	}
	if !x.keepReq && x.hs == nil { // a handshake's request may go to a second node
		x.req = nil
	}
	if x.bodyLeft > 0 {
		x.readBody()
	}
}

// readBody moves the request body from the client to the node, reading no further than the body
// (what follows is the client's next request, and stays in the socket), and stopping while the node
// cannot take more.
func (x *loopExchange) readBody() {
	c := x.c
	if x.nc == nil || x.nc.connecting || x.reqOff < len(x.req) || x.pending != nil {
		return
	}
	for x.bodyLeft > 0 && !x.done {
		buf := c.s.loop.Scratch()
		buf = buf[:min(int64(len(buf)), x.bodyLeft)]
		n, errno := evloop.Read(c.fd, buf)
		switch {
		case errno == unix.EAGAIN:
			c.unread = false
			return
		case errno != 0 || n == 0:
			c.abort() // the body was cut short: the node sees the connection close
			return
		}
		x.bodyLeft -= int64(n)
		_, _ = x.bodyScan.Write(buf[:n])
		if !x.sendBody(buf[:n]) {
			return
		}
	}
	x.bodyDone()
}

func (x *loopExchange) bodyDone() {
	if x.bodyLeft == 0 && x.pending == nil && !x.done {
		x.closing = x.bodyScan.Closed()
		x.c.wait(phaseNode)
	}
}

// sendBody writes body bytes to the node; false when it could not take them all (the rest is
// pending) or failed.
func (x *loopExchange) sendBody(b []byte) bool {
	n, errno := evloop.WriteAll(x.nc.fd, b)
	switch errno {
	case 0:
		return true
	case unix.EAGAIN:
		x.pending = append([]byte(nil), b[n:]...)
	default:
		x.nodeFailed(errno)
	}
	return false
}

// nodeEvent handles the node socket's readiness.
func (x *loopExchange) nodeEvent(ev uint32) {
	if ev&evloop.Out != 0 {
		switch {
		case x.reqOff < len(x.req):
			x.writeRequest()
		case x.pending != nil:
			b := x.pending
			x.pending = nil
			if x.sendBody(b) {
				x.bodyDone()
				if x.bodyLeft > 0 {
					x.readBody()
				}
			}
		}
	}
	if !x.done && ev&(evloop.In|evloop.RdHup|evloop.Hup|evloop.Err) != 0 {
		x.readAnswer()
	}
}

// readAnswer reads the node's answer and passes it on, until the node has no more for now, the
// answer is over, or the client must catch up first.
func (x *loopExchange) readAnswer() {
	for !x.done {
		if x.c.out != nil || x.hs != nil && x.hs.pinning {
			x.paused = true // clientDrained resumes
			return
		}
		buf := x.s.loop.Scratch()
		n, errno := evloop.Read(x.nc.fd, buf)
		switch {
		case errno == unix.EAGAIN:
			return
		case errno != 0:
			x.nodeFailed(errno)
			return
		case n == 0:
			x.nodeEOF()
			return
		}
		x.req, x.keepReq = nil, false // an answer began: never sent twice
		x.drained = n < len(buf)
		switch {
		case x.switchedTo():
			x.readFirstFrame(buf[:n])
		case !x.answered:
			x.readHead(buf[:n])
		default:
			x.relayBody(buf[:n], nil)
		}
		if x.done || n < len(buf) && !x.nc.peerClosed {
			return // over, or drained: more comes with a new edge
		}
	}
}

// clientDrained resumes an answer paused while the client caught up.
func (x *loopExchange) clientDrained() {
	if x.paused && !x.done {
		x.paused = false
		x.readAnswer()
	}
}

// readHead reads the answer's head from b (after what came before of it).
func (x *loopExchange) readHead(b []byte) {
	s := x.s
	data := b
	if x.head != nil {
		x.head = append(x.head, b...)
		data = x.head
	}
	resp := &s.resp
	resp.Reset()
	n, err := httpwire.ParseResponse(data, s.wireLimits(), resp)
	switch {
	case err == httpwire.ErrNeedMore:
		if x.head == nil {
			x.head = append([]byte(nil), b...)
		}
		return
	case err != nil:
		x.nodeFailed(notHTTP(err))
		return
	case resp.Interim():
		rest := append([]byte(nil), data[n:]...) // a 1xx before the answer: skipped
		x.head = nil
		if len(rest) > 0 {
			x.readHead(rest)
		}
		return
	case resp.Status == fasthttp.StatusSwitchingProtocols && x.upgrading():
		x.node.ObserveSuccess()
		x.switched(data[:n], data[n:])
		return
	case resp.Status == fasthttp.StatusSwitchingProtocols:
		x.nodeFailed(notHTTP(errors.New("101 to a request that asked no upgrade")))
		return
	}
	x.node.ObserveSuccess()
	x.startAnswer(resp)
	head := s.appendClientAnswer(s.out[:0], resp, x.c.closeAfter)
	s.out = head[:0]
	x.head = nil
	if h := x.hs; h != nil && h.ws == nil && x.status == fasthttp.StatusOK {
		h.holdAnswer(resp, head)
		head = nil
	}
	x.relayBody(data[n:], head)
}

// startAnswer reads how the answer is framed, and sets up what watches it for the session's end.
func (x *loopExchange) startAnswer(resp *httpwire.Response) {
	x.answered = true
	x.status = resp.Status
	x.framing = resp.Framing(false)
	x.nodeKeep = resp.KeepAlive() && x.framing != httpwire.FramingClose
	switch x.framing {
	case httpwire.FramingLength:
		x.left = resp.ContentLength
	case httpwire.FramingChunked:
		x.chunks = &httpwire.ChunkedReader{}
		x.chunks.Reset(x.s.wireLimits())
	case httpwire.FramingClose:
		x.c.closeAfter = true // the client's answer also ends with the connection
	}
	if x.s.p.draining.Load() || x.upgrading() {
		x.c.closeAfter = true // a refused upgrade's connection ends with the answer, as passRefusal's
	}
	switch {
	case x.status == fasthttp.StatusBadRequest:
		x.body400 = make([]byte, 0, 64)
	case x.status == fasthttp.StatusOK && x.get && x.hs == nil:
		x.watch = newCloseWatch(x.eio, x.jsonp, contentCoding(resp.Get("Content-Encoding")))
	}
}

// appendClientAnswer writes the answer head the client gets: the node's, hop-by-hop headers left out
// but the framing (Content-Length, or Transfer-Encoding: chunked, relayed as it comes).
func (s *shard) appendClientAnswer(dst []byte, resp *httpwire.Response, closing bool) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = fmt.Appendf(dst, "%d ", resp.Status)
	dst = append(dst, resp.Reason...)
	dst = append(dst, "\r\n"...)
	for i := range resp.Len() {
		f := resp.Field(i)
		if resp.IsHopByHop(f.Name) && !(resp.Chunked && equalFoldString(f.Name, "Transfer-Encoding")) {
			continue
		}
		dst = httpwire.AppendField(dst, f.Name, f.Value)
	}
	if closing {
		dst = append(dst, "Connection: close\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// relayBody passes on the part of b that belongs to the answer's body (after head, when given: one
// write for both), watching it; the answer ends where its framing says.
func (x *loopExchange) relayBody(b, head []byte) {
	part, end := b, false
	switch x.framing {
	case httpwire.FramingNone:
		part, end = b[:0], true
	case httpwire.FramingLength:
		take := min(int64(len(b)), x.left)
		part = b[:take]
		x.left -= take
		end = x.left == 0
	case httpwire.FramingChunked:
		used, done, err := x.chunks.Feed(b, x.observe)
		if err != nil {
			x.broken()
			return
		}
		part, end = b[:used], done
	}
	if x.framing != httpwire.FramingChunked {
		x.observe(part)
	}
	x.bytesOut += int64(len(part))
	if len(part) < len(b) {
		x.nodeKeep = false // the node sent more than its answer: its connection is not trusted again
	}
	out := part
	if head != nil {
		out = append(head, part...)
		x.s.out = out[:0]
	}
	if end && x.hs == nil { // a handshake's bytes are counted as it is pinned (releaseHandshake)
		x.rec.Request(x.bytesIn, x.bytesOut, time.Unix(0, x.s.loop.Now()))
		x.sessionRules() // before the last bytes go: a client that sees the answer sees the session ended
	}
	if h := x.hs; h != nil && h.hold != nil {
		if !x.relayHeld(out, end) || h.hold != nil {
			return // still held, or refused
		}
	} else if !x.c.send(out) {
		return // the client failed: clientGone ended the exchange
	}
	if end {
		x.finish(true)
	}
}

// observe shows answer body bytes to what watches the session's end.
func (x *loopExchange) observe(p []byte) {
	switch {
	case x.hs != nil && x.hs.hold != nil:
		x.hs.collect(p)
	case x.watch != nil:
		_, _ = x.watch.Write(p)
	case x.body400 != nil && len(x.body400) < maxBody400:
		x.body400 = append(x.body400, p[:min(len(p), maxBody400-len(x.body400))]...)
	}
}

// nodeEOF handles the node closing its connection.
func (x *loopExchange) nodeEOF() {
	switch {
	case !x.answered:
		x.nodeFailed(io.EOF)
	case x.framing == httpwire.FramingClose:
		x.nodeKeep = false
		x.sessionRules() // the answer ends with the node's connection
		x.finish(true)
	default:
		x.broken() // the answer was cut short
	}
}

// broken ends an answer that cannot be completed: the client's connection closes (its client sees
// the answer cut), and so does the node's.
func (x *loopExchange) broken() {
	x.finish(false)
	x.c.close()
}

// timedOut runs when the node's deadline passed.
func (x *loopExchange) timedOut() {
	if x.answered {
		x.broken()
		return
	}
	x.nodeFailed(fasthttp.ErrTimeout)
}

// errNotHTTP marks an answer that is not HTTP: the node's fault, unless a limit of sidpin's refused it.
type errNotHTTP struct{ err error }

func (e errNotHTTP) Error() string { return "error when reading response headers: " + e.err.Error() }
func (e errNotHTTP) Unwrap() error { return e.err }

func notHTTP(err error) error {
	if httpwire.IsLimit(err) {
		return fmt.Errorf("the answer's head is over limits.max_header_bytes: %w", err)
	}
	return errNotHTTP{err}
}

// nodeFailed handles a failure before or during the answer: a reused connection the node closed
// under the request is retried once; otherwise the client gets sidpin's answer, as on the fasthttp
// path (and the node is judged only by what it did).
func (x *loopExchange) nodeFailed(err error) {
	if x.done {
		return
	}
	if x.answered {
		x.broken()
		return
	}
	if x.node.Gone() {
		x.nodeCut()
		return
	}
	if x.retryable(err) {
		x.retried = true
		x.s.closeNodeConn(x.nc)
		x.nc = nil
		nc, derr := x.s.dial(x.s.poolFor(x.node, x.ep), x)
		if derr != nil {
			x.failed(derr)
			return
		}
		x.use(nc)
		return
	}
	x.failed(err)
}

// retryable: the node closed a kept-alive connection before a byte of answer, and the request is
// whole in hand.
func (x *loopExchange) retryable(err error) bool {
	return x.keepReq && x.req != nil && !x.retried && x.bodyLeft == 0 && x.pending == nil &&
		(errors.Is(err, io.EOF) || errors.Is(err, unix.ECONNRESET) || errors.Is(err, unix.EPIPE))
}

// failed answers the client for a node that failed (or could not be reached) before answering.
func (x *loopExchange) failed(err error) {
	fault := backends.ClassifyHTTP(err, x.hs != nil)
	x.node.ObserveFault(fault, err)
	x.s.p.log.Warn("upstream request failed", "pool", x.node.Pool, "node", x.node.Name, "fault", fault, "err", err)
	if x.hs != nil && fault == backends.FaultRefused && x.retryHandshake() {
		return
	}
	answer := answerBadGateway
	switch {
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout):
		answer = answerGatewayTimeout
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		answer = answerNoFreeConns
	}
	x.answerOwn(answer)
}

// nodeCut answers a request whose node went down under it: its session went with the node.
func (x *loopExchange) nodeCut() {
	if x.answered {
		x.broken()
		return
	}
	if x.hs != nil { // no session yet: the node that was to open it went down
		x.answerOwn(answerBadGateway)
		return
	}
	x.s.p.unpinAsync(x.sid, sessionlog.EndNodeDown)
	x.s.p.metrics.SessionUnknown(x.pool.Name, metrics.CauseNodeDown)
	x.answerOwn(answerUnknownSID)
}

// answerOwn ends the exchange with an answer of sidpin's own; the connection closes after it when
// the request's body was not all read.
func (x *loopExchange) answerOwn(answer canned) {
	x.status = answer.status
	x.nodeKeep = false
	if x.bodyLeft > 0 || x.pending != nil {
		x.c.closeAfter = true
	}
	x.finishNode(false)
	x.done = true
	x.endHandshake()
	x.observeMetrics()
	c := x.c
	c.x = nil
	c.answerCanned(answer, c.closeAfter)
}

// finish ends the exchange: the node connection goes back to the pool (or closes) and the client
// connection moves on. A whole answer's session rules ran where it ended (sessionRules).
func (x *loopExchange) finish(complete bool) {
	if x.done {
		return
	}
	x.done = true
	x.finishNode(complete)
	x.endHandshake()
	x.observeMetrics()
	x.c.answered()
}

func (x *loopExchange) finishNode(complete bool) {
	if nc := x.nc; nc != nil {
		x.nc, nc.x = nil, nil
		if complete && x.nodeKeep && !nc.peerClosed {
			x.s.putIdle(nc)
		} else {
			x.s.closeNodeConn(nc)
		}
	}
}

// sessionRules unpin a session that an answer ended, as relaySessionAnswer does; they run once,
// where the answer's end is read, before its last bytes go to the client.
func (x *loopExchange) sessionRules() {
	p := x.s.p
	switch {
	case x.hs != nil: // a handshake: no session to end yet
	case x.status == fasthttp.StatusBadRequest:
		if bytes.Contains(x.body400, []byte(`"code":1,`)) {
			p.metrics.SessionUnknown(x.pool.Name, metrics.CauseNodeSaid)
			p.unpinAsync(x.sid, sessionlog.EndUnknownAtNode)
		}
	case x.status != fasthttp.StatusOK:
	case x.closing:
		p.unpinAsync(x.sid, sessionlog.EndClientClose)
	case x.watch != nil && x.watch.closed():
		p.unpinAsync(x.sid, sessionlog.EndNodeClose)
	}
}

func (x *loopExchange) observeMetrics() {
	kind := metrics.KindSession
	switch {
	case x.upgrading():
		kind = metrics.KindUpgrade
	case x.hs != nil:
		kind = metrics.KindHandshake
	}
	x.s.p.metrics.Pool(x.pool.Name).Observe(kind, x.status, float64(x.s.loop.Now()-x.start)/1e9)
}

// clientGone ends the exchange of a client that went away: the node connection closes, as the
// client's own would have without a proxy.
func (x *loopExchange) clientGone() {
	if x.done {
		return
	}
	x.done = true
	x.nodeKeep = false
	x.finishNode(false)
	x.endHandshake()
}
