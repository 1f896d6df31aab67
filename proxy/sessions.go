package proxy

import (
	"context"
	"time"

	"github.com/sidpin/sidpin/affinity"
	"github.com/sidpin/sidpin/sessionlog"
	"github.com/sidpin/sidpin/upgrade"
)

// The session log (log.sessions): p.sessions keeps a record of each session relayed here, and the
// places that end sessions name the cause. Every call is a no-op when the log is off.

// sessionSweepEvery is how often records without traffic are checked against the pin table (a
// variable for tests).
var sessionSweepEvery = 5 * time.Second

// unpin ends sid's session: its pin goes, and its line is written with cause.
func (p *Proxy) unpin(sid string, cause sessionlog.Cause) {
	p.sessions.End(sid, cause)
	sctx, cancel := p.storeCtx()
	defer cancel()
	if _, err := p.store.Unpin(sctx, sid); err != nil {
		p.log.Warn("unpin failed", "sid", sid, "err", err)
		return
	}
	p.log.Debug("session unpinned", "sid", sid, "end", cause)
}

// beginSession records a session pinned here (its handshake is its first request).
func (p *Proxy) beginSession(pin affinity.Pin) {
	if p.sessions != nil {
		p.sessions.Begin(startOf(pin, time.Now()))
	}
}

// sessionRecord is the record of pin's session, started here when another instance pinned it.
func (p *Proxy) sessionRecord(pin affinity.Pin) *sessionlog.Record {
	if p.sessions == nil {
		return nil
	}
	if r := p.sessions.Get(pin.SID); r != nil {
		return r
	}
	return p.sessions.Join(startOf(pin, pin.Created))
}

// sessionRequest counts a request of a session relayed here, and its body bytes each way. A session
// pinned by another instance (a shared table) gets its record here at its first request.
func (p *Proxy) sessionRequest(pin affinity.Pin, in, out int64) {
	if p.sessions != nil {
		p.sessionRecord(pin).Request(in, out, time.Now())
	}
}

// startOf is what a pin tells of its session's start; at is when it began.
func startOf(pin affinity.Pin, at time.Time) sessionlog.Start {
	transport := sessionlog.Polling
	if pin.Transport == affinity.TransportWebSocket {
		transport = sessionlog.WebSocket
	}
	if at.IsZero() {
		at = time.Now()
	}
	return sessionlog.Start{SID: pin.SID, Pool: pin.Pool, Node: pin.Node, Client: pin.ClientAddr,
		EIO: pin.EIO, Transport: transport, At: at, TTL: pin.TTL}
}

// tunnelEnded ends the session of a WebSocket that ended: the peer that went first is the cause,
// unless sidpin ended it (a kick, a node down or a shutdown named its cause before).
func (p *Proxy) tunnelEnded(sid string, e upgrade.Ended) {
	p.sessions.Get(sid).TunnelClosed(int64(e.ToNode), int64(e.ToClient), time.Now())
	cause := sessionlog.EndClientClose
	switch {
	case p.draining.Load():
		cause = sessionlog.EndShutdown
	case e.Idle:
		cause = sessionlog.EndExpired
	case e.NodeFirst:
		cause = sessionlog.EndNodeClose
	}
	p.unpin(sid, cause)
}

// evictedCause is why a session another instance evicted ended: a migration drains its node first.
func (p *Proxy) evictedCause(sid string) sessionlog.Cause {
	if r := p.sessions.Get(sid); r != nil {
		if n := p.nodes.Node(r.Pool, r.Node); n != nil && n.Draining() {
			return sessionlog.EndMigrated
		}
	}
	return sessionlog.EndKicked
}

// sweepSessions ends the records of sessions whose pin went while nothing came here: expired, or
// (with a table shared by instances) ended through another instance. A pin that lives on keeps its
// record.
func (p *Proxy) sweepSessions() {
	now := time.Now()
	gone := sessionlog.EndExpired
	if !p.memStore {
		gone = sessionlog.EndUnseen
	}
	for _, sid := range p.sessions.Idle(now) {
		sctx, cancel := p.storeCtx()
		pin, ok, err := p.store.Lookup(sctx, sid)
		cancel()
		switch {
		case err != nil:
			// The table does not answer: ask again next round.
		case ok && !pin.Expired(now):
			p.sessions.Seen(sid, now)
		default:
			p.sessions.End(sid, gone)
		}
	}
}

// every runs f every d until ctx ends.
func every(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}
