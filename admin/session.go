package admin

import (
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"time"
)

// The operator page's sign-ins. They live in memory only, so a restart (and with it a token change)
// ends every one of them.
const (
	sessionLifetime = 12 * time.Hour // from sign-in, however busy the session is
	sessionIdle     = time.Hour      // since the session's last request
	maxSessions     = 1000           // a bound on what repeated sign-ins can make the listener hold
)

// sessionKey is the SHA-256 of a session id. The table is keyed by it, so a lookup's timing can only
// depend on the hash of a guessed id, never on how much of the real id the guess got right.
type sessionKey [sha256.Size]byte

// session is one signed-in browser.
type session struct {
	key      sessionKey
	csrf     string // put in every form of the page and required back on every state-changing request
	created  time.Time
	lastUsed time.Time
}

// sessions is the bounded table of live sessions.
type sessions struct {
	mu    sync.Mutex
	byKey map[sessionKey]*session
	now   func() time.Time
}

func newSessions() *sessions {
	return &sessions{byKey: map[sessionKey]*session{}, now: time.Now}
}

// create starts a session and returns its id (the cookie value) and the session.
func (t *sessions) create() (string, session) {
	id := rand.Text() // 26 base32 characters: at least 128 random bits
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.purge(now)
	if len(t.byKey) >= maxSessions {
		t.evictOldest()
	}
	s := &session{key: sha256.Sum256([]byte(id)), csrf: rand.Text(), created: now, lastUsed: now}
	t.byKey[s.key] = s
	return id, *s
}

// lookup returns the live session of id and marks it used; an expired one is removed.
func (t *sessions) lookup(id string) (session, bool) {
	key := sha256.Sum256([]byte(id))
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.byKey[key]
	if !ok {
		return session{}, false
	}
	now := t.now()
	if expired(s, now) {
		delete(t.byKey, key)
		return session{}, false
	}
	s.lastUsed = now
	return *s, true
}

// end removes a session (sign-out, or a new sign-in from the same browser).
func (t *sessions) end(key sessionKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.byKey, key)
}

func expired(s *session, now time.Time) bool {
	return now.Sub(s.created) >= sessionLifetime || now.Sub(s.lastUsed) >= sessionIdle
}

// purge removes the expired sessions; t.mu is held. The table is small (maxSessions) and this runs
// only at sign-in, so a full scan is cheaper than keeping an expiry index.
func (t *sessions) purge(now time.Time) {
	for k, s := range t.byKey {
		if expired(s, now) {
			delete(t.byKey, k)
		}
	}
}

// evictOldest removes the session signed in first; t.mu is held.
func (t *sessions) evictOldest() {
	var oldest *session
	for _, s := range t.byKey {
		if oldest == nil || s.created.Before(oldest.created) {
			oldest = s
		}
	}
	if oldest != nil {
		delete(t.byKey, oldest.key)
	}
}
