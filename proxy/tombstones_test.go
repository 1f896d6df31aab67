package proxy

import (
	"testing"
	"time"
)

func TestTombstones(t *testing.T) {
	now := time.Now()
	ts := newTombstones(2, time.Minute)
	ts.add("a", now)
	ts.add("b", now)
	ts.add("c", now) // full: not remembered
	cases := []struct {
		sid  string
		at   time.Time
		want bool
	}{
		{"a", now, true},
		{"b", now.Add(59 * time.Second), true},
		{"c", now, false},
		{"a", now.Add(2 * time.Minute), false},
	}
	for _, c := range cases {
		if got := ts.has(c.sid, c.at); got != c.want {
			t.Errorf("has(%s, +%v) = %v, want %v", c.sid, c.at.Sub(now), got, c.want)
		}
	}
	ts.add("d", now.Add(2*time.Minute)) // the expired ones make room
	if !ts.has("d", now.Add(2*time.Minute)) {
		t.Error("expired entries must give way")
	}
}
