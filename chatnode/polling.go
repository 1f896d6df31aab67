package chatnode

import (
	"bytes"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/engineio"
)

// request is what the engine needs from the query string of one request.
type request struct {
	transport string
	sid       string
	eio       string
	jsonp     []byte // the j= index, nil when not JSONP
	b64       bool
	upgrade   bool // the request asks for a WebSocket upgrade
}

func parseRequest(ctx *fasthttp.RequestCtx) request {
	q := ctx.QueryArgs()
	r := request{
		transport: string(q.Peek("transport")),
		sid:       string(q.Peek("sid")),
		eio:       string(q.Peek("EIO")),
		b64:       len(q.Peek("b64")) > 0,
		upgrade:   ctx.Request.Header.ConnectionUpgrade() && bytes.EqualFold(ctx.Request.Header.Peek("Upgrade"), []byte("websocket")),
	}
	if q.Has("j") {
		r.jsonp = append([]byte{}, q.Peek("j")...)
	}
	return r
}

// ServeHTTP answers one request under the engine's path. The checks run in Node's order: transport,
// Origin, sid, then (handshake only) method, websocket-without-upgrade and protocol version.
func (e *Engine) ServeHTTP(ctx *fasthttp.RequestCtx) {
	r := parseRequest(ctx)
	if r.transport != "polling" && r.transport != "websocket" {
		writeError(ctx, errTransportUnknown, false)
		return
	}
	if !validOrigin(ctx.Request.Header.Peek("Origin")) {
		writeError(ctx, errBadRequest, r.upgrade)
		return
	}
	if r.sid != "" {
		e.serveSession(ctx, r)
		return
	}
	e.serveHandshake(ctx, r)
}

// validOrigin rejects Origin values with characters not allowed in a header (Node's check).
func validOrigin(origin []byte) bool {
	for _, c := range origin {
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

func (e *Engine) serveSession(ctx *fasthttp.RequestCtx, r request) {
	s := e.lookup(r.sid)
	if s == nil && r.transport == "polling" && ctx.IsGet() {
		s = e.lookupLingering(r.sid) // a GET sent together with the close that ended the session
	}
	if s == nil {
		writeError(ctx, errUnknownSID, r.upgrade)
		return
	}
	if r.transport == "websocket" {
		if !r.upgrade {
			writeError(ctx, errBadRequest, false)
			return
		}
		e.serveProbe(ctx, s)
		return
	}
	if s.Transport() != "polling" {
		writeError(ctx, errBadRequest, false) // polling after the upgrade: transport mismatch
		return
	}
	switch {
	case ctx.IsGet():
		s.servePollGet(ctx, r)
	case ctx.IsPost():
		s.servePollPost(ctx, r)
	default:
		ctx.SetStatusCode(fasthttp.StatusInternalServerError) // what Node answers
	}
}

func (e *Engine) serveHandshake(ctx *fasthttp.RequestCtx, r request) {
	if !ctx.IsGet() {
		writeError(ctx, errBadHandshakeMethod, r.upgrade)
		return
	}
	if r.transport == "websocket" && !r.upgrade {
		writeError(ctx, errBadRequest, false)
		return
	}
	ver, ok := e.version(r.eio)
	if !ok {
		writeError(ctx, errUnsupportedVersion, r.upgrade)
		return
	}
	if r.transport == "websocket" {
		e.serveDirectWebSocket(ctx, ver, r)
		return
	}
	s := newSession(e, ver, r.b64, ctx.RemoteAddr().String(), queryMap(ctx), transportPolling)
	if !e.register(s) {
		ctx.Error("server shutting down", fasthttp.StatusServiceUnavailable)
		return
	}
	e.handler.OnOpen(s)
	s.startHeartbeat()

	// The open packet, plus whatever the handler queued on open (a v3 Socket.IO server's "40").
	s.mu.Lock()
	pkts := append([]engineio.Packet{{Type: engineio.Open, Data: engineio.AppendOpen(nil, s.openInfo())}}, s.queue...)
	s.queue = nil
	s.mu.Unlock()
	if e.cfg.Cookie != "" {
		var c fasthttp.Cookie
		c.SetKey(e.cfg.Cookie)
		c.SetValue(s.id)
		c.SetPath("/")
		c.SetHTTPOnly(true)
		c.SetSameSite(fasthttp.CookieSameSiteLaxMode)
		ctx.Response.Header.SetCookie(&c)
	}
	s.writePayload(ctx, r, pkts)
}

// version accepts EIO=4, and EIO=3 when enabled. Node counts any value but "4" as 3; we refuse
// unknown versions instead of guessing.
func (e *Engine) version(eio string) (engineio.Version, bool) {
	switch {
	case eio == "4":
		return engineio.V4, true
	case eio == "3" && e.cfg.AllowEIO3:
		return engineio.V3, true
	}
	return 0, false
}

func queryMap(ctx *fasthttp.RequestCtx) map[string]string {
	m := map[string]string{}
	for k, v := range ctx.QueryArgs().All() {
		m[string(k)] = string(v)
	}
	return m
}

// refuseOverlapLocked answers a request that comes while another of its kind (a GET, a POST) is in
// progress: a protocol error, which closes the session, and a 400. It reports whether it did.
func (s *Session) refuseOverlapLocked(ctx *fasthttp.RequestCtx, busy bool, why string) bool {
	if !busy {
		return false
	}
	s.closeLocked(why, false)
	ctx.SetStatusCode(fasthttp.StatusBadRequest)
	return true
}

// servePollGet holds a GET until there is something to send, then answers with all of it.
func (s *Session) servePollGet(ctx *fasthttp.RequestCtx, r request) {
	s.mu.Lock()
	// Two concurrent GETs are a protocol error: the first gets the close packet, this one a 400.
	if s.refuseOverlapLocked(ctx, s.getWaiting, "overlapping poll") {
		s.mu.Unlock()
		return
	}
	s.getWaiting = true
	pkts, ok := s.waitForPacketsLocked(ctx)
	s.getWaiting = false
	s.mu.Unlock()
	if !ok {
		writeError(ctx, errUnknownSID, false) // the closed session's last answer went to another GET
		return
	}
	s.writePayload(ctx, r, pkts)
}

// waitForPacketsLocked returns what a GET answers: queued packets, else a noop during an upgrade, else
// the close or noop of an ended session (false when another GET already took it). It releases the lock
// while waiting.
func (s *Session) waitForPacketsLocked(ctx *fasthttp.RequestCtx) ([]engineio.Packet, bool) {
	for {
		switch {
		case len(s.queue) > 0 && !s.closed:
			pkts := s.queue
			s.queue = nil
			return pkts, true
		case s.closed:
			final, ok := s.takeFinalLocked()
			return []engineio.Packet{final}, ok
		case s.upgrading || s.transport == transportWebSocket:
			return []engineio.Packet{noopPacket}, true
		}
		s.mu.Unlock()
		select {
		case <-s.getWake:
		case <-ctx.Done(): // server shutdown
			s.mu.Lock()
			s.closeLocked("server shutting down", false)
			continue
		}
		s.mu.Lock()
	}
}

// writePayload encodes packets for the session's version and the request's form (binary, b64, JSONP).
func (s *Session) writePayload(ctx *fasthttp.RequestCtx, r request, pkts []engineio.Packet) {
	jsonp := r.jsonp != nil
	var body []byte
	contentType := "text/plain; charset=UTF-8"
	switch {
	case s.ver == engineio.V4:
		body = engineio.AppendPayloadV4(nil, pkts)
	case engineio.NeedsV3Binary(pkts, s.b64 || jsonp):
		body = engineio.AppendPayloadV3Binary(nil, pkts)
		contentType = "application/octet-stream"
	default:
		body = engineio.AppendPayloadV3String(nil, pkts)
	}
	if jsonp {
		body = engineio.AppendJSONP(nil, r.jsonp, body)
	}
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetContentType(contentType)
	ctx.SetBody(body)
}

// servePollPost decodes the client's packets. One POST at a time per session; oversized bodies get 413.
func (s *Session) servePollPost(ctx *fasthttp.RequestCtx, r request) {
	s.mu.Lock()
	if s.refuseOverlapLocked(ctx, s.postActive, "overlapping post") {
		s.mu.Unlock()
		return
	}
	s.postActive = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.postActive = false
		s.mu.Unlock()
	}()

	body := ctx.PostBody()
	if len(body) > s.engine.cfg.MaxPayload {
		s.Close("payload too large")
		ctx.SetStatusCode(fasthttp.StatusRequestEntityTooLarge)
		return
	}
	if err := s.decodePost(ctx, r, body); err != nil {
		s.engine.cfg.Logger.Debug("engine.io bad POST", "sid", s.id, "err", err)
		s.Close("parse error")
		ctx.SetStatusCode(fasthttp.StatusBadRequest)
		return
	}
	ctx.SetContentType("text/html")
	ctx.SetBodyString("ok")
}

var errInvalidContent = engineio.ErrInvalidPayload

func (s *Session) decodePost(ctx *fasthttp.RequestCtx, r request, body []byte) error {
	binary := strings.HasPrefix(string(ctx.Request.Header.ContentType()), "application/octet-stream")
	if r.jsonp != nil {
		payload, err := engineio.DecodeJSONPPost(body)
		if err != nil {
			return err
		}
		body, binary = payload, false
	}
	var ok = true
	handle := func(p engineio.Packet) error {
		if !s.onPacket(p) {
			ok = false
			return errInvalidContent
		}
		return nil
	}
	var err error
	switch {
	case s.ver == engineio.V4 && binary:
		return errInvalidContent // v4 polling is text only
	case s.ver == engineio.V4:
		err = engineio.DecodePayloadV4(body, handle)
	case binary:
		err = engineio.DecodePayloadV3Binary(body, handle)
	default:
		err = engineio.DecodePayloadV3String(body, handle)
	}
	if !ok {
		return nil // the packet handler already closed the session; the POST itself was fine
	}
	return err
}
