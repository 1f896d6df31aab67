// Package sessionlog writes one log line per ended Engine.IO session: who it was (sid, pool, node,
// client address, Engine.IO version), how it went (transports in order, start, duration, requests,
// bytes each way) and why it ended. The proxy keeps a Record for every session it relays while the
// log is on; a nil *Log is the log switched off and costs nothing.
//
// With several instances sharing a pin table, each instance writes a line for the part of a session
// it relayed: the requests and bytes it saw, and the end it saw (EndUnseen when the pin went away
// without this instance seeing why).
package sessionlog

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Cause is why a session ended, as the line's "end" field says it.
type Cause string

// The end causes.
const (
	EndClientClose   Cause = "client_close"    // the client sent a close packet, or closed its WebSocket first
	EndNodeClose     Cause = "node_close"      // the node sent a close packet, or closed its WebSocket first
	EndExpired       Cause = "expired"         // nothing came for its pin's lifetime (or its WebSocket moved nothing for timeouts.websocket_idle)
	EndNodeDown      Cause = "node_down"       // the node went down, or was removed
	EndKicked        Cause = "kicked"          // an operator kicked it (admin API or page)
	EndMigrated      Cause = "migrated"        // a paced migration of its node ended it
	EndShutdown      Cause = "shutdown"        // this sidpin stopped while it was live
	EndUnknownAtNode Cause = "unknown_at_node" // the node answered that it does not know the sid
	EndUnseen        Cause = "unseen"          // its pin went away without this instance seeing why (shared tables)
)

// Transport names, as the pin table has them.
const (
	Polling   = "polling"
	WebSocket = "websocket"
)

// Start is what is known of a session when it begins.
type Start struct {
	SID, Pool, Node, Client string
	EIO                     int
	Transport               string        // the first transport: Polling or WebSocket
	At                      time.Time     // when it began (the pin's creation)
	TTL                     time.Duration // how long its pin lives without traffic
}

// Record is one session's story so far. Counters move from any goroutine; a nil *Record (no
// session log, or a session it does not know) ignores them.
type Record struct {
	Start
	upgraded atomic.Bool  // it moved from polling to a WebSocket
	requests atomic.Int64 // HTTP requests relayed (the handshake and the upgrade included)
	bytesIn  atomic.Int64 // body and WebSocket stream bytes from the client to the node
	bytesOut atomic.Int64 // body and WebSocket stream bytes from the node to the client
	lastSeen atomic.Int64 // unix nanos of its last request here
	tunnel   atomic.Bool  // a WebSocket of it is open here: it is not idle, whatever lastSeen says
	// cause is the end sidpin gave a session whose WebSocket was still open (a kick, a node down): the
	// line waits for the tunnel's end, which brings its bytes.
	cause atomic.Pointer[Cause]
}

// Handshake adds the body bytes of the handshake each way (Begin counted the request).
func (r *Record) Handshake(in, out int64) {
	if r != nil {
		r.bytesIn.Add(in)
		r.bytesOut.Add(out)
	}
}

// Request counts one relayed HTTP request and its body bytes each way.
func (r *Record) Request(in, out int64, now time.Time) {
	if r == nil {
		return
	}
	r.requests.Add(1)
	r.bytesIn.Add(in)
	r.bytesOut.Add(out)
	r.lastSeen.Store(now.UnixNano())
}

// Upgraded marks the session as moved to a WebSocket; its tunnel is open until TunnelClosed.
func (r *Record) Upgraded() {
	if r == nil {
		return
	}
	r.upgraded.Store(true)
	r.tunnel.Store(true)
	r.requests.Add(1) // the probe's upgrade request
}

// TunnelOpen marks a WebSocket-first session's tunnel as open.
func (r *Record) TunnelOpen() {
	if r != nil {
		r.tunnel.Store(true)
	}
}

// TunnelClosed adds what the session's WebSocket relayed each way.
func (r *Record) TunnelClosed(in, out int64, now time.Time) {
	if r == nil {
		return
	}
	r.bytesIn.Add(in)
	r.bytesOut.Add(out)
	r.lastSeen.Store(now.UnixNano())
	r.tunnel.Store(false)
}

// Transports is the transports in order: "polling", "websocket" or "polling→websocket".
func (r *Record) Transports() string {
	switch {
	case r.Transport == WebSocket:
		return WebSocket
	case r.upgraded.Load():
		return Polling + "→" + WebSocket
	}
	return r.Transport
}

// shardCount spreads the records over locks: requests of many sessions run at once.
const shardCount = 32

// Log keeps the records of live sessions and writes a line when one ends.
type Log struct {
	out    *slog.Logger
	shards [shardCount]shard
	now    func() time.Time
	lines  atomic.Int64
}

type shard struct {
	mu sync.Mutex
	m  map[string]*Record
	// ended are the sids ended lately (unix nanos): a request that was under way when its session
	// ended must not start a record again (Join).
	ended map[string]int64
}

// endedKeep is how long an ended sid is remembered, and endedMax how many per shard at most.
const (
	endedKeep = time.Minute
	endedMax  = 2048
)

// New writes its lines to out (at level INFO, message "session ended").
func New(out *slog.Logger) *Log {
	l := &Log{out: out, now: time.Now}
	for i := range l.shards {
		l.shards[i].m = make(map[string]*Record)
		l.shards[i].ended = make(map[string]int64)
	}
	return l
}

func (l *Log) shard(sid string) *shard {
	// FNV-1a: sids are random already, any cheap mix spreads them.
	h := uint32(2166136261)
	for i := 0; i < len(sid); i++ {
		h = (h ^ uint32(sid[i])) * 16777619
	}
	return &l.shards[h%shardCount]
}

// Begin starts the record of a session (its handshake counts as its first request); a session
// already recorded keeps its record.
func (l *Log) Begin(s Start) *Record { return l.start(s, 1, false) }

// Join starts the record of a session first seen here after its start (another instance pinned it,
// in a shared table), unless it ended lately: a request under way as it ended is no new story.
func (l *Log) Join(s Start) *Record { return l.start(s, 0, true) }

func (l *Log) start(s Start, requests int64, unlessEnded bool) *Record {
	if l == nil {
		return nil
	}
	sh := l.shard(s.SID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if r := sh.m[s.SID]; r != nil {
		return r
	}
	if _, ok := sh.ended[s.SID]; ok && unlessEnded {
		return nil
	}
	r := &Record{Start: s}
	r.requests.Store(requests)
	r.lastSeen.Store(l.now().UnixNano())
	sh.m[s.SID] = r
	return r
}

// Get is the record of sid, nil when there is none (or the log is off).
func (l *Log) Get(sid string) *Record {
	if l == nil {
		return nil
	}
	sh := l.shard(sid)
	sh.mu.Lock()
	r := sh.m[sid]
	sh.mu.Unlock()
	return r
}

// End writes the line of sid's session with cause and forgets it; the first end given wins. A
// session whose WebSocket is open here keeps its record until the tunnel closed (TunnelClosed, then
// End again), so that its line has the tunnel's bytes.
func (l *Log) End(sid string, cause Cause) {
	if l == nil {
		return
	}
	sh := l.shard(sid)
	sh.mu.Lock()
	r := sh.m[sid]
	switch {
	case r == nil:
	case r.tunnel.Load():
		r.cause.CompareAndSwap(nil, &cause)
		r = nil
	default:
		delete(sh.m, sid)
		sh.remember(sid, l.now())
	}
	sh.mu.Unlock()
	if r != nil {
		l.write(r, cause)
	}
}

// remember notes sid as ended; the shard's lock is held.
func (sh *shard) remember(sid string, now time.Time) {
	if len(sh.ended) < endedMax {
		sh.ended[sid] = now.UnixNano()
	}
}

// EndAll ends every recorded session with cause (this instance is stopping), tunnels or not.
func (l *Log) EndAll(cause Cause) int {
	return l.endWhere(func(*Record) bool { return true }, cause)
}

// EndNode ends the recorded sessions of pool/node with cause (the node went down); those with an
// open WebSocket end as their tunnel closes, with that cause.
func (l *Log) EndNode(pool, node string, cause Cause) int {
	return l.endWhere(func(r *Record) bool {
		if r.Pool != pool || r.Node != node {
			return false
		}
		if r.tunnel.Load() {
			r.cause.CompareAndSwap(nil, &cause)
			return false
		}
		return true
	}, cause)
}

func (l *Log) endWhere(match func(*Record) bool, cause Cause) int {
	if l == nil {
		return 0
	}
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		var recs []*Record
		now := l.now()
		sh.mu.Lock()
		for sid, r := range sh.m {
			if match(r) {
				recs = append(recs, r)
				delete(sh.m, sid)
				sh.remember(sid, now)
			}
		}
		sh.mu.Unlock()
		for _, r := range recs {
			l.write(r, cause)
		}
		n += len(recs)
	}
	return n
}

// Idle lists the sids of sessions with no open tunnel here and no request for longer than their
// pin's TTL: the pin table says whether they expired or live on through another instance. It also
// forgets the sids ended more than a minute ago.
func (l *Log) Idle(now time.Time) []string {
	if l == nil {
		return nil
	}
	var sids []string
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		for sid, at := range sh.ended {
			if now.UnixNano()-at > int64(endedKeep) {
				delete(sh.ended, sid)
			}
		}
		for sid, r := range sh.m {
			if !r.tunnel.Load() && now.UnixNano()-r.lastSeen.Load() > int64(r.TTL) {
				sids = append(sids, sid)
			}
		}
		sh.mu.Unlock()
	}
	return sids
}

// Seen stamps sid as alive now (its pin lives on: another instance relays it).
func (l *Log) Seen(sid string, now time.Time) {
	if r := l.Get(sid); r != nil {
		r.lastSeen.Store(now.UnixNano())
	}
}

// Len is the number of sessions recorded.
func (l *Log) Len() int {
	if l == nil {
		return 0
	}
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// Lines is the number of lines written.
func (l *Log) Lines() int64 {
	if l == nil {
		return 0
	}
	return l.lines.Load()
}

func (l *Log) write(r *Record, cause Cause) {
	if c := r.cause.Load(); c != nil {
		cause = *c
	}
	l.lines.Add(1)
	end := l.now()
	l.out.LogAttrs(context.Background(), slog.LevelInfo, "session ended",
		slog.String("sid", r.SID),
		slog.String("pool", r.Pool),
		slog.String("node", r.Node),
		slog.String("client", r.Client),
		slog.Int("eio", r.EIO),
		slog.String("transports", r.Transports()),
		slog.Time("start", r.At),
		slog.Int64("duration_ms", end.Sub(r.At).Milliseconds()),
		slog.Int64("requests", r.requests.Load()),
		slog.Int64("bytes_in", r.bytesIn.Load()),
		slog.Int64("bytes_out", r.bytesOut.Load()),
		slog.String("end", string(cause)),
	)
}
