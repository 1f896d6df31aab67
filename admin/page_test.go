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
// page, and a drain button.
func TestPageSignInAndDrain(t *testing.T) {
	f := startAdmin(t, "s3cret")
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(f.base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("GET / without sign-in: %d, want 401 and the sign-in form", resp.StatusCode)
	}
	if resp, _ = noRedirect.PostForm(f.base+"/login", url.Values{"token": {"wrong"}}); resp.StatusCode != 401 {
		t.Fatalf("wrong token: %d", resp.StatusCode)
	}
	resp, err = noRedirect.PostForm(f.base+"/login", url.Values{"token": {"s3cret"}})
	if err != nil || resp.StatusCode != 303 || len(resp.Cookies()) != 1 {
		t.Fatalf("sign-in: %v %v %v", resp.StatusCode, resp.Cookies(), err)
	}
	cookie := resp.Cookies()[0]
	if strings.Contains(cookie.Value, "s3cret") || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("the cookie must not carry the token and must be HttpOnly, SameSite=Strict: %+v", cookie)
	}
	req, _ := http.NewRequest("GET", f.base+"/", nil)
	req.AddCookie(cookie)
	resp, err = noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(resp)
	if resp.StatusCode != 200 || !strings.Contains(body, `data-node="default/node1"`) || !strings.Contains(body, "Drain") {
		t.Fatalf("page: %d %.500q", resp.StatusCode, body)
	}
	req, _ = http.NewRequest("POST", f.base+"/ui/nodes/default/node1/drain", nil)
	req.AddCookie(cookie)
	if resp, err = noRedirect.Do(req); err != nil || resp.StatusCode != 303 {
		t.Fatalf("drain button: %v %v", resp.StatusCode, err)
	}
	if got := f.proxy.Nodes().Node("default", "node1").State(); got != backends.StateDraining {
		t.Fatalf("node1 is %s after the drain button", got)
	}
	if _, _, err := f.store.Pin(context.Background(), affinity.Pin{SID: "kick-me", Pool: "default", Node: "node2",
		Transport: affinity.TransportWebSocket, EIO: 4, TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	req, _ = http.NewRequest("GET", f.base+"/?sid=kick-me", nil)
	req.AddCookie(cookie)
	if resp, err = noRedirect.Do(req); err != nil || !strings.Contains(readAll(resp), `action="/ui/pins/kick-me/kick"`) {
		t.Fatalf("the pin search must show the pin with a kick button: %v", err)
	}
	req, _ = http.NewRequest("POST", f.base+"/ui/pins/kick-me/kick", nil)
	req.AddCookie(cookie)
	if resp, err = noRedirect.Do(req); err != nil || resp.StatusCode != 303 {
		t.Fatalf("kick button: %v %v", resp.StatusCode, err)
	}
	if _, ok, _ := f.store.Lookup(context.Background(), "kick-me"); ok {
		t.Fatal("the kicked pin is still there")
	}
}

func readAll(resp *http.Response) string {
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}
