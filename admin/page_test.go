package admin_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sidpin/sidpin/affinity"
	"github.com/sidpin/sidpin/backends"
)

// TestPageSignInAndDrain walks the admin page as a browser does: the sign-in form, the cookie, the
// page, its Drain, Kick and Sign out buttons.
func TestPageSignInAndDrain(t *testing.T) {
	f := startAdmin(t, "s3cret")
	b := newBrowser(t, f.base)
	if status, _, _ := b.page(""); status != 401 {
		t.Fatalf("GET / without sign-in: %d, want 401 and the sign-in form", status)
	}
	if resp, _ := b.do("POST", "/login", url.Values{"token": {"wrong"}}, b.sameOrigin()); resp.StatusCode != 401 || b.cookie != nil {
		t.Fatalf("wrong token: %d %v", resp.StatusCode, resp.Cookies())
	}
	cookie := b.signIn("s3cret")
	if strings.Contains(cookie.Value, "s3cret") || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("the cookie must not carry the token and must be HttpOnly, SameSite=Strict: %+v", cookie)
	}
	status, _, body := b.page("")
	if status != 200 || !strings.Contains(body, `data-node="default/node1"`) || !strings.Contains(body, "Drain") {
		t.Fatalf("page: %d %.500q", status, body)
	}
	if resp, _ := b.submit(b.formOf("", "Drain", "/ui/nodes/default/node1/")); resp.StatusCode != 303 {
		t.Fatalf("drain button: %d", resp.StatusCode)
	}
	if got := f.proxy.Nodes().Node("default", "node1").State(); got != backends.StateDraining {
		t.Fatalf("node1 is %s after the drain button", got)
	}
	if resp, _ := b.submit(b.formOf("", "Undrain", "/ui/nodes/default/node1/")); resp.StatusCode != 303 {
		t.Fatalf("undrain button: %d", resp.StatusCode)
	}
	if got := f.proxy.Nodes().Node("default", "node1").State(); got != backends.StateUp {
		t.Fatalf("node1 is %s after the undrain button", got)
	}
	if _, _, err := f.store.Pin(context.Background(), affinity.Pin{SID: "kick-me", Pool: "default", Node: "node2",
		Transport: affinity.TransportWebSocket, EIO: 4, TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	kick := b.formOf("?sid=kick-me", "Kick", "/ui/pins/")
	if kick.action != "/ui/pins/kick-me/kick" {
		t.Fatalf("kick button of kick-me posts to %q", kick.action)
	}
	if resp, _ := b.submit(kick); resp.StatusCode != 303 {
		t.Fatalf("kick button: %d", resp.StatusCode)
	}
	if _, ok, _ := f.store.Lookup(context.Background(), "kick-me"); ok {
		t.Fatal("the kicked pin is still there")
	}
	signOut := b.formOf("", "Sign out", "/logout")
	if resp, _ := b.submit(signOut); resp.StatusCode != 303 || b.cookie != nil {
		t.Fatalf("sign-out button: %d, cookie %v (want it deleted)", resp.StatusCode, resp.Cookies())
	}
	b.cookie = cookie // the old cookie, kept by someone: it no longer signs in
	if status, _, _ := b.page(""); status != 401 {
		t.Fatalf("GET / with the signed-out cookie: %d, want 401", status)
	}
	if resp, _ := b.submit(form{action: "/ui/nodes/default/node1/drain", csrf: signOut.csrf}); resp.StatusCode != 401 {
		t.Fatalf("drain with the signed-out cookie and its CSRF token: %d, want 401", resp.StatusCode)
	}
	if got := f.proxy.Nodes().Node("default", "node1").State(); got != backends.StateUp {
		t.Fatalf("node1 is %s after a drain with a signed-out cookie", got)
	}
}
