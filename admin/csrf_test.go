package admin_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sidpin/sidpin/affinity"
	"github.com/sidpin/sidpin/backends"
)

// attacker is a page of the operator's browser on another port of the same host: same-site with the
// admin listener, so SameSite=Strict cookies go along with its requests.
const attacker = "http://127.0.0.1:8080"

func from(origin, site string) map[string]string {
	h := map[string]string{}
	if origin != "" {
		h["Origin"] = origin
	}
	if site != "" {
		h["Sec-Fetch-Site"] = site
	}
	return h
}

// modes are the two ways the listener runs: with a token (sign-in) and without (loopback only).
var modes = []struct{ name, token string }{{"token", "s3cret"}, {"no token", ""}}

// openPage signs b in (with a token) and loads the page; it returns the page's CSRF token.
func openPage(t *testing.T, b *browser, token string) string {
	t.Helper()
	if token != "" {
		b.signIn(token)
	}
	return b.formOf("", "Drain", "/ui/nodes/default/node1/").csrf
}

// pinVictim pins the session that the attacks below try to kick.
func pinVictim(t *testing.T, f fixture) {
	t.Helper()
	if _, _, err := f.store.Pin(context.Background(), affinity.Pin{SID: "victim", Pool: "default", Node: "node2",
		Transport: affinity.TransportPolling, EIO: 4, TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
}

// unharmed fails the test when an attack changed anything: a node draining, the victim kicked.
func unharmed(t *testing.T, f fixture, what string) {
	t.Helper()
	nodesUp(t, f, what)
	if _, ok, _ := f.store.Lookup(context.Background(), "victim"); !ok {
		t.Errorf("%s: the victim's pin was kicked", what)
		pinVictim(t, f)
	}
}

// TestCrossOriginPostsAreRefused: a page on another port of the host (same-site, so the cookie goes
// along) or on another site posts to the admin listener; every such post is refused with 403 and
// changes nothing, with or without a token, the page's CSRF token or not.
func TestCrossOriginPostsAreRefused(t *testing.T) {
	const drain = "/ui/nodes/default/node1/drain"
	cases := []struct {
		name, method, path string
		header             map[string]string
		withCSRF           bool
	}{
		{"form on a sibling port (same-site)", "POST", drain, from(attacker, "same-site"), false},
		{"same, with the page's CSRF token", "POST", drain, from(attacker, "same-site"), true},
		{"form on another site", "POST", drain, from("http://attacker.example", "cross-site"), false},
		{"Origin only, no fetch metadata", "POST", drain, from(attacker, ""), true},
		{"fetch metadata only", "POST", drain, from("", "same-site"), true},
		{"Sec-Fetch-Site none", "POST", drain, from("", "none"), true},
		{"opaque Origin (sandboxed frame)", "POST", drain, from("null", "cross-site"), true},
		{"kick from a sibling port", "POST", "/ui/pins/victim/kick", from(attacker, "same-site"), true},
		{"the API's drain", "POST", "/api/nodes/default/node1/drain", from(attacker, "same-site"), false},
		{"the API's kick", "DELETE", "/api/pins/victim", from(attacker, "same-site"), false},
		{"sign-out from a sibling port", "POST", "/logout", from(attacker, "same-site"), true},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			f := startAdmin(t, m.token)
			pinVictim(t, f)
			b := newBrowser(t, f.base)
			csrf := openPage(t, b, m.token)
			for _, c := range cases {
				form := url.Values{}
				if c.withCSRF {
					form.Set("csrf", csrf)
				}
				resp, body := b.do(c.method, c.path, form, c.header)
				if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "cross-origin") {
					t.Errorf("%s: %s %s answered %d %.200q, want 403 cross-origin", c.name, c.method, c.path, resp.StatusCode, body)
				}
				unharmed(t, f, c.name)
				if status, _, _ := b.page(""); status != 200 {
					t.Errorf("%s: the operator's session no longer works: %d", c.name, status)
				}
			}
		})
	}
}

// TestCrossOriginSignInIsRefused: another page cannot sign the operator's browser in (login CSRF).
func TestCrossOriginSignInIsRefused(t *testing.T) {
	f := startAdmin(t, "s3cret")
	for _, h := range []map[string]string{from(attacker, "same-site"), from("http://attacker.example", "cross-site"),
		from(attacker, ""), from("", "same-site")} {
		b := newBrowser(t, f.base)
		resp, body := b.do("POST", "/login", url.Values{"token": {"s3cret"}}, h)
		if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
			t.Errorf("sign-in posted with %v: %d %v %.200q, want 403 and no cookie", h, resp.StatusCode, resp.Cookies(), body)
		}
	}
}

// TestPagePostsNeedTheCSRFToken: a post of the page's routes with the cookie, from the page's own
// origin, is refused without the session's CSRF token; with it, it works.
func TestPagePostsNeedTheCSRFToken(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			f := startAdmin(t, m.token)
			pinVictim(t, f)
			other := newBrowser(t, f.base)
			otherCSRF := openPage(t, other, m.token)
			b := newBrowser(t, f.base)
			csrf := openPage(t, b, m.token)
			if csrf == "" || csrf == otherCSRF {
				t.Fatalf("the page's CSRF tokens: %q and another session's %q", csrf, otherCSRF)
			}
			for _, bad := range []struct{ name, csrf string }{{"none", ""}, {"wrong", "AAAAAAAAAAAAAAAAAAAAAAAAAA"},
				{"another session's", otherCSRF}, {"one character short", csrf[1:]}} {
				for _, path := range []string{"/ui/nodes/default/node1/drain", "/ui/pins/victim/kick", "/logout"} {
					resp, body := b.do("POST", path, url.Values{"csrf": {bad.csrf}}, b.sameOrigin())
					if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "CSRF") {
						t.Errorf("POST %s with %s CSRF token: %d %.200q, want 403", path, bad.name, resp.StatusCode, body)
					}
					unharmed(t, f, "POST "+path+" with "+bad.name+" CSRF token")
				}
			}
			resp, _ := b.do("POST", "/ui/nodes/default/node1/drain", url.Values{"csrf": {csrf}}, b.sameOrigin())
			if got := f.proxy.Nodes().Node("default", "node1").State(); resp.StatusCode != http.StatusSeeOther || got != backends.StateDraining {
				t.Fatalf("the page's own drain post: %d, node1 %s", resp.StatusCode, got)
			}
		})
	}
}

// TestWhoNeedsTheCSRFToken: with a token, a cookie alone does not drive the API either; a bearer token
// needs no CSRF token (no page can make a browser send it); without a token, scripts keep using the
// API with nothing, but a page's routes always need the token.
func TestWhoNeedsTheCSRFToken(t *testing.T) {
	const csrfHere = "<the page's CSRF token>"
	const apiDrain = "/api/nodes/default/node1/drain"
	cases := []struct {
		name, token string
		cookie      bool
		header      map[string]string
		form        bool
		path        string
		want        int
	}{
		{"cookie, no CSRF token, API", "s3cret", true, nil, false, apiDrain, 403},
		{"cookie and X-CSRF-Token, API", "s3cret", true, map[string]string{"X-CSRF-Token": csrfHere}, false, apiDrain, 200},
		{"cookie and csrf field, API", "s3cret", true, nil, true, apiDrain, 200},
		{"bearer, from a foreign Origin", "s3cret", false, map[string]string{"Authorization": "Bearer s3cret", "Origin": attacker}, false, apiDrain, 200},
		{"bearer and a cookie", "s3cret", true, map[string]string{"Authorization": "Bearer s3cret"}, false, apiDrain, 200},
		{"bearer, page route", "s3cret", false, map[string]string{"Authorization": "Bearer s3cret"}, false, "/ui/nodes/default/node1/drain", 303},
		{"no token, a script", "", false, nil, false, apiDrain, 200},
		{"no token, a page route without cookie", "", false, nil, false, "/ui/nodes/default/node1/drain", 403},
		{"no token, a page route with the cookie only", "", true, nil, false, "/ui/nodes/default/node1/drain", 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := startAdmin(t, c.token)
			b := newBrowser(t, f.base)
			csrf := openPage(t, b, c.token)
			if !c.cookie {
				b.cookie = nil
			}
			h := map[string]string{}
			for k, v := range c.header {
				h[k] = strings.ReplaceAll(v, csrfHere, csrf)
			}
			var form url.Values
			if c.form {
				form = url.Values{"csrf": {csrf}}
			}
			resp, body := b.do("POST", c.path, form, h)
			if resp.StatusCode != c.want {
				t.Fatalf("POST %s: %d %.200q, want %d", c.path, resp.StatusCode, body, c.want)
			}
			drained := f.proxy.Nodes().Node("default", "node1").State() == backends.StateDraining
			if drained != (c.want < 400) {
				t.Fatalf("POST %s answered %d, and node1 draining is %v", c.path, resp.StatusCode, drained)
			}
		})
	}
}

// TestSignInIsFreshEveryTime: two sign-ins give two sessions with different cookies and CSRF tokens,
// both working; a cookie is HttpOnly, SameSite=Strict, for the whole listener, with a bounded life,
// and not Secure over plain HTTP. Signing in again from a signed-in page rotates the session.
func TestSignInIsFreshEveryTime(t *testing.T) {
	f := startAdmin(t, "s3cret")
	b1, b2 := newBrowser(t, f.base), newBrowser(t, f.base)
	c1, c2 := b1.signIn("s3cret"), b2.signIn("s3cret")
	if c1.Value == c2.Value {
		t.Fatalf("two sign-ins gave the same cookie %q", c1.Value)
	}
	for _, c := range []*http.Cookie{c1, c2} {
		if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure ||
			c.MaxAge <= 0 || c.MaxAge > int((12*time.Hour).Seconds()) || len(c.Value) < 22 {
			t.Errorf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/, not Secure over HTTP, 0 < Max-Age ≤ 12 h, ≥ 128 bits", c)
		}
	}
	csrf1, csrf2 := openPage(t, b1, ""), openPage(t, b2, "")
	if csrf1 == csrf2 || csrf1 == "" {
		t.Fatalf("CSRF tokens of two sessions: %q and %q", csrf1, csrf2)
	}
	if resp, body := b1.do("POST", "/login", url.Values{"token": {"s3cret"}}, b1.sameOrigin()); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a second sign-in from a signed-in browser without its CSRF token: %d %.200q, want 403", resp.StatusCode, body)
	}
	resp, _ := b1.do("POST", "/login", url.Values{"token": {"s3cret"}, "csrf": {csrf1}}, b1.sameOrigin())
	if resp.StatusCode != http.StatusSeeOther || b1.cookie == nil || b1.cookie.Value == c1.Value {
		t.Fatalf("sign-in again with the CSRF token: %d, cookie %v (want a new one)", resp.StatusCode, b1.cookie)
	}
	old := newBrowser(t, f.base)
	old.cookie = c1
	if status, _, _ := old.page(""); status != 401 {
		t.Fatalf("the cookie of the rotated session: %d, want 401", status)
	}
}

// TestOldCookiesAreRefused: the cookie value of before (a fixed HMAC of the token), the token
// itself and made-up values sign nothing in.
func TestOldCookiesAreRefused(t *testing.T) {
	f := startAdmin(t, "s3cret")
	mac := hmac.New(sha256.New, []byte("s3cret"))
	mac.Write([]byte("sidpin admin page session"))
	for _, v := range []string{hex.EncodeToString(mac.Sum(nil)), "s3cret", "00ff00ff", strings.Repeat("A", 26)} {
		b := newBrowser(t, f.base)
		b.cookie = &http.Cookie{Name: "sidpin_admin", Value: v}
		if status, _, _ := b.page(""); status != 401 {
			t.Errorf("GET / with cookie %q: %d, want 401", v, status)
		}
		if resp, _ := b.do("POST", "/ui/nodes/default/node1/drain", nil, b.sameOrigin()); resp.StatusCode != 401 {
			t.Errorf("drain with cookie %q: %d, want 401", v, resp.StatusCode)
		}
	}
	if got := f.proxy.Nodes().Node("default", "node1").State(); got != backends.StateUp {
		t.Fatalf("node1 is %s", got)
	}
}

// TestPageCannotBeFramed: the page and the sign-in form refuse to be framed (a page that frames the
// operator's page could trick a click on Drain) and are never cached.
func TestPageCannotBeFramed(t *testing.T) {
	f := startAdmin(t, "s3cret")
	b := newBrowser(t, f.base)
	check := func(what string) {
		resp, _ := b.do("GET", "/", nil, nil)
		h := resp.Header
		if h.Get("X-Frame-Options") != "DENY" || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
			h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: X-Frame-Options %q, Content-Security-Policy %q, Cache-Control %q", what,
				h.Get("X-Frame-Options"), h.Get("Content-Security-Policy"), h.Get("Cache-Control"))
		}
	}
	check("the sign-in form")
	b.signIn("s3cret")
	check("the page")
}

// TestRebindingIsRefusedWithoutAToken: without a token the listener answers only requests addressed
// to a loopback IP or localhost; a page whose host name was made to resolve to 127.0.0.1 (DNS
// rebinding) sends its own name in Host and is refused, reads included.
func TestRebindingIsRefusedWithoutAToken(t *testing.T) {
	f := startAdmin(t, "")
	port := f.base[strings.LastIndexByte(f.base, ':'):]
	for host, want := range map[string]int{
		"127.0.0.1" + port: 200, "localhost" + port: 200, "LOCALHOST": 200, "[::1]" + port: 200,
		"attacker.example" + port: 403, "127.0.0.1.nip.io" + port: 403, "10.0.0.1" + port: 403,
	} {
		req, _ := http.NewRequest("GET", f.base+"/api/nodes", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
	// With a token the Host does not matter: the token is the guard.
	g := startAdmin(t, "secret")
	req, _ := http.NewRequest("GET", g.base+"/api/nodes", nil)
	req.Host = "admin.example.com"
	req.Header.Set("Authorization", "Bearer secret")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("with a token and another Host: %v %v", resp, err)
	}
}
