package admin

import (
	"testing"
	"time"
)

// TestSessionTableIsBounded: at maxSessions live sessions, a sign-in evicts the oldest one; expired
// sessions go first, before any live one.
func TestSessionTableIsBounded(t *testing.T) {
	now := time.Now()
	tab := newSessions()
	tab.now = func() time.Time { return now }
	ids := make([]string, 0, maxSessions+1)
	for range maxSessions + 1 {
		id, _ := tab.create()
		ids = append(ids, id)
		now = now.Add(time.Millisecond)
	}
	if len(tab.byKey) != maxSessions {
		t.Fatalf("%d sessions held, want at most %d", len(tab.byKey), maxSessions)
	}
	if _, ok := tab.lookup(ids[0]); ok {
		t.Fatal("the oldest session survived a sign-in at the bound")
	}
	for _, id := range []string{ids[1], ids[maxSessions]} {
		if _, ok := tab.lookup(id); !ok {
			t.Fatalf("session %s was evicted", id)
		}
	}
	now = now.Add(sessionIdle)
	id, _ := tab.create()
	if len(tab.byKey) != 1 {
		t.Fatalf("%d sessions after every other one expired, want 1", len(tab.byKey))
	}
	if _, ok := tab.lookup(id); !ok {
		t.Fatal("the new session is not there")
	}
}

// TestSessionIDs: ids and CSRF tokens are random (≥ 128 bits) and the table keeps only their hashes.
func TestSessionIDs(t *testing.T) {
	tab := newSessions()
	seen := map[string]bool{}
	for range 100 {
		id, s := tab.create()
		if len(id) < 26 || len(s.csrf) < 26 || seen[id] || seen[s.csrf] || id == s.csrf {
			t.Fatalf("id %q, csrf %q: want distinct random strings of ≥ 26 base32 characters", id, s.csrf)
		}
		seen[id], seen[s.csrf] = true, true
	}
	for k := range tab.byKey {
		if seen[string(k[:])] {
			t.Fatal("the table is keyed by an id itself")
		}
	}
	if _, ok := tab.lookup("nope"); ok {
		t.Fatal("an unknown id found a session")
	}
}
