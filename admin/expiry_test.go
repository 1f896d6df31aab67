package admin_test

import (
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/sidpin/sidpin/admin"
	"github.com/sidpin/sidpin/backends"
)

// clock is a settable time for the sign-in table.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestSessionsExpire: a session ends after an hour without a request, and 12 hours after sign-in
// however busy; after that its cookie and its CSRF token drive nothing.
func TestSessionsExpire(t *testing.T) {
	steps := func(n int, every time.Duration) []time.Duration {
		s := make([]time.Duration, n)
		for i := range s {
			s[i] = every
		}
		return s
	}
	cases := []struct {
		name  string
		alive []time.Duration // waits after each of which the page still works
		last  time.Duration   // the wait after which it no longer does
	}{
		{"idle", steps(3, 59*time.Minute), 61 * time.Minute},
		{"absolute", steps(13, 55*time.Minute), 10 * time.Minute}, // 11 h 55 min, then 12 h 05 min
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := startAdmin(t, "s3cret")
			clk := &clock{now: time.Now()}
			admin.SetClock(f.server, clk.Now)
			b := newBrowser(t, f.base)
			b.signIn("s3cret")
			csrf := openPage(t, b, "")
			for i, d := range c.alive {
				clk.advance(d)
				if status, _, _ := b.page(""); status != 200 {
					t.Fatalf("step %d (+%v): the page answered %d, want 200", i, d, status)
				}
			}
			clk.advance(c.last)
			if status, _, _ := b.page(""); status != 401 {
				t.Fatalf("after +%v: the page answered %d, want 401 (expired)", c.last, status)
			}
			resp, _ := b.do("POST", "/ui/nodes/default/node1/drain", url.Values{"csrf": {csrf}}, b.sameOrigin())
			if got := f.proxy.Nodes().Node("default", "node1").State(); resp.StatusCode != http.StatusUnauthorized || got != backends.StateUp {
				t.Fatalf("drain with the expired session: %d, node1 %s; want 401 and up", resp.StatusCode, got)
			}
		})
	}
}
