package admin_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/sidpin/sidpin/affinity"
	"github.com/sidpin/sidpin/backends"
)

// TestSidsAreEscapedInPaths: a node once handed out the sid "../nodes/chat/n1/drain?"; rendered raw
// into the Kick form's action, the browser resolved it to a drain of n1. Every sid must render as one
// escaped path segment, and its Kick must kick that pin and nothing else.
func TestSidsAreEscapedInPaths(t *testing.T) {
	sids := []string{"../nodes/default/node1/drain?", "..%2Fnodes%2Fdefault%2Fnode1%2Fdrain", "a/b", "x?y#z", "100%", "sp ace", "é"}
	f := startAdmin(t, "s3cret")
	b := newBrowser(t, f.base)
	b.signIn("s3cret")
	for _, sid := range sids {
		pin(t, f, sid)
		kick := b.formOf("?sid="+url.QueryEscape(sid), "Kick", "/ui/pins/")
		if want := "/ui/pins/" + url.PathEscape(sid) + "/kick"; kick.action != want {
			t.Errorf("sid %q: the Kick form posts to %q, want %q", sid, kick.action, want)
		}
		resp, body := b.submit(kick)
		if resp.StatusCode != http.StatusSeeOther {
			t.Errorf("sid %q: Kick answered %d %.200q", sid, resp.StatusCode, body)
		}
		if _, ok, _ := f.store.Lookup(context.Background(), sid); ok {
			t.Errorf("sid %q: still pinned after its Kick", sid)
		}
		nodesUp(t, f, "the Kick of sid "+sid)
	}
}

// TestRoutesMatchEscapedSegments: the API unescapes each path segment on its own; an escaped "/"
// stays inside its segment, and a raw "../" (curl --path-as-is) does not lead to another route.
func TestRoutesMatchEscapedSegments(t *testing.T) {
	f := startAdmin(t, "s3cret")
	b := newBrowser(t, f.base)
	bearer := map[string]string{"Authorization": "Bearer s3cret"}
	for _, sid := range []string{"a/b", "../nodes/default/node1/drain?", "x?y#z", "100%"} {
		pin(t, f, sid)
		resp, body := b.do("GET", "/api/pins/"+url.PathEscape(sid), nil, bearer)
		var got struct{ SID string }
		if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &got) != nil || got.SID != sid {
			t.Errorf("GET /api/pins/%s: %d %.200q, want the pin of %q", url.PathEscape(sid), resp.StatusCode, body, sid)
		}
		if resp, body := b.do("DELETE", "/api/pins/"+url.PathEscape(sid), nil, bearer); resp.StatusCode != 200 {
			t.Errorf("DELETE /api/pins/%s: %d %.200q", url.PathEscape(sid), resp.StatusCode, body)
		}
		nodesUp(t, f, "the API kick of "+sid)
	}
	cases := []struct {
		path string
		want int
	}{
		{"/api/nodes/default%2Fnode1/x/drain", 404}, // pool "default/node1", node "x"
		{"/api/nodes/default/node1%2Fdrain", 404},
		{"/api/pins/..%2Fnodes%2Fdefault%2Fnode1%2Fdrain", 404}, // a POST to a pin is no route
		{"/ui/pins/../nodes/default/node1/drain", 404},
		{"/api/pins/../nodes/default/node1/drain", 404},
		{"/api/nodes/default/%6Eode1/drain", 200}, // an escaped name is still the name
	}
	for _, c := range cases {
		resp, body := b.send("POST", f.base+c.path, nil, bearer)
		if resp.StatusCode != c.want {
			t.Errorf("POST %s: %d %.200q, want %d", c.path, resp.StatusCode, body, c.want)
		}
		if c.want == 404 {
			nodesUp(t, f, "POST "+c.path)
		}
	}
}

func pin(t *testing.T, f fixture, sid string) {
	t.Helper()
	if _, _, err := f.store.Pin(context.Background(), affinity.Pin{SID: sid, Pool: "default", Node: "node2",
		Transport: affinity.TransportPolling, EIO: 4, TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
}

// nodesUp fails the test unless both nodes are up (nothing drained them).
func nodesUp(t *testing.T, f fixture, what string) {
	t.Helper()
	for _, n := range []string{"node1", "node2"} {
		if got := f.proxy.Nodes().Node("default", n).State(); got != backends.StateUp {
			t.Errorf("%s: %s is %s", what, n, got)
			if err := f.proxy.SetDrain(context.Background(), "default", n, false); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestSecureCookieOverTLS: served over TLS, the sign-in cookie is Secure, and the page's own posts
// (Origin https://…) pass the origin check.
func TestSecureCookieOverTLS(t *testing.T) {
	f := startAdminOn(t, "s3cret", "https", tls.NewListener(listenT(t), &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}))
	b := newBrowser(t, f.base)
	if c := b.signIn("s3cret"); !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
		t.Fatalf("cookie over TLS: %+v, want Secure, HttpOnly, SameSite=Strict", c)
	}
	if resp, body := b.submit(b.formOf("", "Drain", "/ui/nodes/default/node1/")); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("drain over TLS: %d %.200q", resp.StatusCode, body)
	}
	if resp, _ := b.do("POST", "/ui/nodes/default/node1/undrain", nil, from("http://"+b.base.Host, "")); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a post from http:// to the https:// listener: %d, want 403", resp.StatusCode)
	}
}

// selfSigned is a certificate for 127.0.0.1, made for one test.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
