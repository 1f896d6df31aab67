package sessionlog

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// lines decodes the JSON lines written to buf.
func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		out = append(out, m)
	}
	return out
}

func newTestLog() (*Log, *bytes.Buffer, *time.Time) {
	var buf bytes.Buffer
	l := New(slog.New(slog.NewJSONHandler(&buf, nil)))
	now := time.Date(2026, 12, 2, 10, 14, 0, 0, time.UTC)
	l.now = func() time.Time { return now }
	return l, &buf, &now
}

func start(sid, transport string, at time.Time) Start {
	return Start{SID: sid, Pool: "chat", Node: "node1", Client: "10.0.0.7:5123", EIO: 4, Transport: transport, At: at, TTL: 45 * time.Second}
}

func TestLineCarriesTheStory(t *testing.T) {
	l, buf, now := newTestLog()
	r := l.Begin(start("s1", Polling, *now))
	r.Handshake(0, 100)
	r.Request(2, 50, *now)
	r.Upgraded()
	r.TunnelClosed(300, 400, *now)
	*now = now.Add(90 * time.Second)
	l.End("s1", EndClientClose)
	got := lines(t, buf)
	if len(got) != 1 {
		t.Fatalf("%d lines", len(got))
	}
	want := map[string]any{"msg": "session ended", "sid": "s1", "pool": "chat", "node": "node1", "client": "10.0.0.7:5123",
		"eio": 4.0, "transports": "polling→websocket", "start": "2026-12-02T10:14:00Z", "duration_ms": 90000.0,
		"requests": 3.0, "bytes_in": 302.0, "bytes_out": 550.0, "end": "client_close"}
	for k, v := range want {
		if got[0][k] != v {
			t.Errorf("%s = %v, want %v", k, got[0][k], v)
		}
	}
}

func TestEnds(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps func(l *Log, now time.Time)
		want  []string // the end of each line, in order
	}{
		{"the first end wins", func(l *Log, now time.Time) {
			l.Begin(start("a", Polling, now))
			l.End("a", EndKicked)
			l.End("a", EndClientClose)
		}, []string{"kicked"}},
		{"an open WebSocket's line waits for its end, with the first cause", func(l *Log, now time.Time) {
			l.Begin(start("a", WebSocket, now)).TunnelOpen()
			l.End("a", EndKicked)
			l.End("a", EndNodeDown)
			l.Get("a").TunnelClosed(1, 1, now)
			l.End("a", EndClientClose)
		}, []string{"kicked"}},
		{"a node's sessions end with it; its tunnels as they close", func(l *Log, now time.Time) {
			l.Begin(start("a", Polling, now))
			l.Begin(start("b", WebSocket, now)).TunnelOpen()
			other := start("c", Polling, now)
			other.Node = "node2"
			l.Begin(other)
			l.EndNode("chat", "node1", EndNodeDown)
			l.Get("b").TunnelClosed(1, 1, now)
			l.End("b", EndNodeClose)
		}, []string{"node_down", "node_down"}},
		{"a request under way as its session ended starts no new record", func(l *Log, now time.Time) {
			l.Begin(start("a", Polling, now))
			l.End("a", EndClientClose)
			if l.Join(start("a", Polling, now)) != nil {
				panic("joined an ended session")
			}
			l.End("a", EndExpired)
		}, []string{"client_close"}},
		{"shutdown ends every record, tunnels too", func(l *Log, now time.Time) {
			l.Begin(start("a", Polling, now))
			l.Begin(start("b", WebSocket, now)).TunnelOpen()
			l.EndAll(EndShutdown)
		}, []string{"shutdown", "shutdown"}},
		{"a nil log does nothing", func(_ *Log, now time.Time) {
			var l *Log
			l.Begin(start("a", Polling, now)).Request(1, 1, now)
			l.End("a", EndKicked)
			l.EndAll(EndShutdown)
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, buf, now := newTestLog()
			tc.steps(l, *now)
			var got []string
			for _, m := range lines(t, buf) {
				got = append(got, m["end"].(string))
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("ends %v, want %v", got, tc.want)
			}
		})
	}
}

func TestIdle(t *testing.T) {
	l, _, now := newTestLog()
	l.Begin(start("quiet", Polling, *now))
	l.Begin(start("tunnel", WebSocket, *now)).TunnelOpen()
	l.Begin(start("busy", Polling, *now))
	later := now.Add(46 * time.Second)
	l.Get("busy").Request(0, 0, later.Add(-time.Second))
	if got := l.Idle(later); len(got) != 1 || got[0] != "quiet" {
		t.Fatalf("Idle = %v, want [quiet]", got)
	}
	l.Seen("quiet", later)
	if got := l.Idle(later); len(got) != 0 {
		t.Fatalf("Idle after Seen = %v", got)
	}
}

func TestTransports(t *testing.T) {
	for _, tc := range []struct {
		first    string
		upgraded bool
		want     string
	}{{Polling, false, "polling"}, {Polling, true, "polling→websocket"}, {WebSocket, false, "websocket"}} {
		r := &Record{Start: Start{Transport: tc.first}}
		if tc.upgraded {
			r.Upgraded()
		}
		if got := r.Transports(); got != tc.want {
			t.Errorf("%s upgraded=%v: %q, want %q", tc.first, tc.upgraded, got, tc.want)
		}
	}
}

func BenchmarkRequest(b *testing.B) {
	l := New(slog.New(slog.DiscardHandler))
	now := time.Now()
	for i := range 10000 {
		l.Begin(start("sid"+string(rune('a'+i%26))+strings.Repeat("x", i%7), Polling, now))
	}
	l.Begin(start("the-sid", Polling, now))
	b.ReportAllocs()
	for b.Loop() {
		l.Get("the-sid").Request(10, 20, now)
	}
}
