package proxy

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/affinity"
	"github.com/sidpin/sidpin/engineio"
)

const openJSON = `{"sid":"abcDEF123_-xyz0000AA","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`

func gz(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

// deflate compresses like Node's httpCompression "deflate": zlib-wrapped.
func deflate(s string) []byte {
	var b bytes.Buffer
	w := zlib.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

func TestLearnSID(t *testing.T) {
	v4 := "0" + openJSON
	v3 := fmt.Sprintf("%d:0%s2:40", len(openJSON)+1, openJSON)
	jsonp := string(engineio.AppendJSONP(nil, []byte("3"), []byte(v3)))
	cases := []struct {
		name, encoding string
		body           []byte
		cookie         string
		wantSID        string
		wantInterval   int
	}{
		{"v4", "", []byte(v4), "", "abcDEF123_-xyz0000AA", 25000},
		{"v4 with initial packet", "", []byte(v4 + "\x1e4hello"), "", "abcDEF123_-xyz0000AA", 25000},
		{"v3 with 40 after it", "", []byte(v3), "", "abcDEF123_-xyz0000AA", 25000},
		{"v3 XHR2 binary", "", engineio.AppendPayloadV3Binary(nil, []engineio.Packet{{Type: engineio.Open, Data: []byte(openJSON)}, {Type: engineio.Message, Data: []byte{1}, Binary: true}}), "", "abcDEF123_-xyz0000AA", 25000},
		{"JSONP", "", []byte(jsonp), "", "abcDEF123_-xyz0000AA", 25000},
		{"gzip", "gzip", gz(v4), "", "abcDEF123_-xyz0000AA", 25000},
		{"deflate", "deflate", deflate(v4), "", "abcDEF123_-xyz0000AA", 25000},
		{"cookie fallback", "", []byte("garbage"), "cookieSID", "cookieSID", 0},
		{"gzip header over plain body falls back to cookie", "gzip", []byte(v4), "fromCookie", "fromCookie", 0},
		{"nothing", "", []byte("<html>"), "", "", 0},
		{"bad cookie", "", []byte("x"), "a b", "", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var resp fasthttp.Response
			resp.SetBody(c.body)
			if c.encoding != "" {
				resp.Header.Set("Content-Encoding", c.encoding)
			}
			if c.cookie != "" {
				var ck fasthttp.Cookie
				ck.SetKey("io")
				ck.SetValue(c.cookie)
				resp.Header.SetCookie(&ck)
			}
			info, ok := learnSID(&resp)
			if ok != (c.wantSID != "") || info.SID != c.wantSID || info.PingInterval != c.wantInterval {
				t.Fatalf("learnSID = %+v, %v", info, ok)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		uri     string
		upgrade bool
		want    request
	}{
		{"/socket.io/?EIO=4&transport=polling&t=x", false, request{kind: kindHandshake, transport: "polling", eio: 4}},
		{"/socket.io?EIO=4&transport=polling", false, request{kind: kindHandshake, transport: "polling", eio: 4}},
		{"/socket.io/?EIO=3&transport=polling&j=2&b64=1&sid=abc", false, request{kind: kindSession, sid: "abc", transport: "polling", eio: 3, jsonp: true, b64: true}},
		{"/socket.io/?transport=websocket&sid=a%2Bb&EIO=4", true, request{kind: kindSession, sid: "a+b", transport: "websocket", eio: 4, upgrade: true}},
		{"/socket.io/?EIO=4&transport=polling&sid=a&sid=b", false, request{kind: kindBadSID, transport: "polling", eio: 4}},
		{"/socket.io/?EIO=4&sid=", false, request{kind: kindBadSID, eio: 4}},
		{"/socket.io/?EIO=9&transport=polling", false, request{kind: kindHandshake, transport: "polling"}},
		{"/socket.io/socket.io.js", false, request{kind: kindHandshake}},
		{"/socket.iox/?sid=a", false, request{kind: kindPlain}},
		{"/", false, request{kind: kindPlain}},
		{"/healthz?sid=abc", false, request{kind: kindPlain}},
	}
	for _, c := range cases {
		var req fasthttp.Request
		req.SetRequestURI(c.uri)
		if c.upgrade {
			req.Header.Set("Connection", "keep-alive, Upgrade")
			req.Header.Set("Upgrade", "websocket")
		}
		got := classify("/socket.io/", req.URI().Path(), req.URI().QueryArgs(), isUpgrade(&req.Header))
		if got != c.want {
			t.Errorf("%s: %+v, want %+v", c.uri, got, c.want)
		}
	}
}

func TestPostCloses(t *testing.T) {
	cases := []struct {
		body  string
		eio   int
		jsonp bool
		want  bool
	}{
		{"1", 4, false, true},
		{"4hi\x1e1", 4, false, true},
		{"41", 4, false, false},
		{"4hello\x1e2", 4, false, false},
		{"1:1", 3, false, true},
		{"2:411:1", 3, false, true},
		{"2:41", 3, false, false},
		{"d=1%3A1", 3, true, true},
		{`___eio[0]("1:1");`, 3, true, false}, // an answer's wrapping, not a POST body
		{"d=2%3A41", 3, true, false},
		{"", 4, false, false},
	}
	for _, c := range cases {
		if got := postCloses([]byte(c.body), c.eio, c.jsonp); got != c.want {
			t.Errorf("postCloses(%q, %d, %v) = %v", c.body, c.eio, c.jsonp, got)
		}
	}
}

func FuzzClassify(f *testing.F) {
	for _, s := range []string{"/socket.io/?EIO=4&transport=polling&sid=abc", "/socket.io?sid=%00", "/x?sid=a&sid=b", "/socket.io/?j=1&b64&EIO=3", "/socket.io/?sid=" + string(bytes.Repeat([]byte("a"), 300))} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, uri string, upgrade bool) {
		var req fasthttp.Request
		req.SetRequestURI(uri)
		if upgrade {
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
		}
		r := classify("/socket.io/", req.URI().Path(), req.URI().QueryArgs(), isUpgrade(&req.Header))
		switch {
		case r.kind == kindSession && !validSID([]byte(r.sid)):
			t.Fatalf("session with an invalid sid %q", r.sid)
		case r.kind != kindSession && r.sid != "":
			t.Fatalf("sid %q on a %v request", r.sid, r.kind)
		case r.kind == kindSession && string(req.URI().QueryArgs().Peek("sid")) != r.sid:
			t.Fatalf("sid %q is not the query's", r.sid)
		}
	})
}

func FuzzLearnSID(f *testing.F) {
	f.Add([]byte("0"+openJSON), "")
	f.Add(gz("0"+openJSON), "gzip")
	f.Add([]byte(`___eio[1]("118:0{\"sid\":\"x\"}");`), "")
	f.Add([]byte("\x00\x01\xff0"), "deflate")
	f.Fuzz(func(t *testing.T, body []byte, encoding string) {
		var resp fasthttp.Response
		resp.SetBody(body)
		if encoding != "" {
			resp.Header.Set("Content-Encoding", encoding)
		}
		if info, ok := learnSID(&resp); ok && info.SID == "" {
			t.Fatal("learned an empty sid")
		}
	})
}

// BenchmarkEstablishedSessionRouting measures what sidpin does per request of an established
// session before forwarding: classify it and look its pin up (1k, 100k pins).
func BenchmarkEstablishedSessionRouting(b *testing.B) {
	for _, pins := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("pins=%d", pins), func(b *testing.B) {
			store, _ := affinity.NewMemoryStore(affinity.MemoryOptions{SweepEvery: time.Hour})
			defer store.Close()
			ctx := context.Background()
			for i := 0; i < pins; i++ {
				store.Pin(ctx, affinity.Pin{SID: fmt.Sprintf("sid%017d", i), Pool: "p", Node: "n", TTL: time.Hour})
			}
			var req fasthttp.Request
			req.SetRequestURI(fmt.Sprintf("/socket.io/?EIO=4&transport=polling&t=PZ3x&sid=sid%017d", pins/2))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r := classify("/socket.io/", req.URI().Path(), req.URI().QueryArgs(), isUpgrade(&req.Header))
				if _, ok, _ := store.Lookup(ctx, r.sid); !ok {
					b.Fatal("pin not found")
				}
				store.Touch(r.sid)
			}
		})
	}
}

func TestInNormalForm(t *testing.T) {
	cases := []struct {
		target string
		want   bool
	}{
		{"/socket.io/?EIO=4&transport=polling", true},
		{"/socket.io/?q=../..//%2e", true}, // the query is not the path
		{"/", true},
		{"/a/b/", true},
		{"/a.b/..c/c../...", true},
		{"http://chat.example.com/socket.io/?EIO=4", true},
		{"/socket.io/../x?EIO=4&transport=polling", false},
		{"/socket.io/..", false},
		{"/a/./b", false},
		{"/.", false},
		{"//socket.io/", false},
		{"/socket.io//", false},
		{"/socket.io/%2e%2e/x", false},
		{"/socket.io/%2E./x", false},
		{"/a%2fb", false},
		{"/a%2Fb", false},
		{"/a%5cb", false},
		{`/a\..\b`, false},
		{"socket.io/", false},
		{"*", false},
		{"", false},
		{"http://h/socket.io/../x", false},
		{"ftp://h/x", false},
		{"http://h", false},
	}
	for _, c := range cases {
		if got := inNormalForm([]byte(c.target)); got != c.want {
			t.Errorf("inNormalForm(%q) = %v, want %v", c.target, got, c.want)
		}
	}
}

// FuzzInNormalForm: a target accepted as normal routes on the path it forwards: fasthttp's normalised
// path is the target's own path, percent-decoded.
func FuzzInNormalForm(f *testing.F) {
	for _, s := range []string{"/socket.io/?EIO=4", "/socket.io/../x", "/a//b", "/%2e", `/a\b`, "http://h/a/./b", "/sock%65t.io/x", "/a%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		if !inNormalForm([]byte(target)) {
			return
		}
		path, _ := targetPath([]byte(target))
		decoded, err := url.PathUnescape(string(path))
		if err != nil || strings.ContainsAny(decoded, "\x00") {
			return // fasthttp keeps an invalid escape as it is; a NUL is the node's problem
		}
		var u fasthttp.URI
		if err := u.Parse(nil, []byte(target)); err != nil {
			return
		}
		if got := string(u.Path()); got != decoded {
			t.Fatalf("%q is accepted, but routing sees %q and the node gets %q", target, got, decoded)
		}
	})
}
