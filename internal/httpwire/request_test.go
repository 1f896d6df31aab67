package httpwire

import (
	"strconv"
	"strings"
	"testing"
)

// head builds a request head from a request line and header lines.
func head(line string, fields ...string) string {
	return line + "\r\n" + strings.Join(append(fields, ""), "\r\n") + "\r\n"
}

func TestParseRequestRules(t *testing.T) {
	const get = "GET / HTTP/1.1"
	cases := []struct {
		name string
		in   string
		want error
	}{
		// The request line.
		{"origin-form", head("GET /socket.io/?EIO=4&transport=polling HTTP/1.1", "Host: x"), nil},
		{"absolute-form", head("GET http://x:80/p?q HTTP/1.1", "Host: X:80"), nil},
		{"absolute-form https, any case", head("GET HTTPS://x/ HTTP/1.1", "Host: x"), nil},
		{"HTTP/1.0 without Host", head("GET / HTTP/1.0"), nil},
		{"lower-case method is a token", head("get / HTTP/1.1", "Host: x"), nil},
		{"empty lines before the request line", "\r\n\r\n" + head(get, "Host: x"), nil},
		{"bare LF before the request line", "\n" + head(get, "Host: x"), ErrBareLF},
		{"method not a token", head("G(T / HTTP/1.1", "Host: x"), ErrBadRequestLine},
		{"no method", head(" / HTTP/1.1", "Host: x"), ErrBadRequestLine},
		{"two spaces", head("GET  / HTTP/1.1", "Host: x"), ErrBadRequestLine},
		{"tab for space", head("GET\t/ HTTP/1.1", "Host: x"), ErrBadRequestLine},
		{"no version", "GET /\r\nHost: x\r\n\r\n", ErrBadRequestLine},
		{"control byte in target", head("GET /a\x01 HTTP/1.1", "Host: x"), ErrBadTarget},
		{"DEL in target", head("GET /a\x7f HTTP/1.1", "Host: x"), ErrBadTarget},
		{"raw UTF-8 in target", head("GET /é HTTP/1.1", "Host: x"), ErrBadTarget},
		{"fragment in target", head("GET /a#b HTTP/1.1", "Host: x"), ErrBadTarget},
		{"asterisk-form", head("OPTIONS * HTTP/1.1", "Host: x"), ErrBadTarget},
		{"authority-form", head("CONNECT x:443 HTTP/1.1", "Host: x:443"), ErrBadTarget},
		{"other scheme", head("GET ws://x/ HTTP/1.1", "Host: x"), ErrBadTarget},
		{"absolute-form without path", head("GET http://x HTTP/1.1", "Host: x"), ErrBadTarget},
		{"absolute-form with query, no path", head("GET http://x?a HTTP/1.1", "Host: x"), ErrBadTarget},
		{"absolute-form, empty authority", head("GET http:///p HTTP/1.1", "Host: x"), ErrBadTarget},
		{"absolute-form with userinfo", head("GET http://u@x/ HTTP/1.1", "Host: x"), ErrBadTarget},
		{"relative target", head("GET a/b HTTP/1.1", "Host: x"), ErrBadTarget},
		{"HTTP/1.2", head("GET / HTTP/1.2", "Host: x"), ErrVersion},
		{"HTTP/2.0", head("GET / HTTP/2.0", "Host: x"), ErrVersion},
		{"HTTP/0.9", head("GET / HTTP/0.9"), ErrVersion},
		{"lower-case version", head("GET / http/1.1", "Host: x"), ErrBadRequestLine},
		{"version too long", head("GET / HTTP/1.10", "Host: x"), ErrBadRequestLine},
		{"version too short", head("GET / HTTP/1", "Host: x"), ErrBadRequestLine},
		{"space after version", head("GET / HTTP/1.1 ", "Host: x"), ErrBadRequestLine},
		{"bare LF after the request line", "GET / HTTP/1.1\nHost: x\r\n\r\n", ErrBareLF},
		{"CR without LF after the request line", "GET / HTTP/1.1\rHost: x\r\n\r\n", ErrBareCR},

		// Header lines.
		{"bare LF after a header", "GET / HTTP/1.1\r\nHost: x\n\r\n", ErrBareLF},
		{"bare LF blank line", "GET / HTTP/1.1\r\nHost: x\r\n\n", ErrBareLF},
		{"CR without LF in a value", head(get, "Host: x", "X: a\rb"), ErrBareCR},
		{"CR without LF ending the head", "GET / HTTP/1.1\r\nHost: x\r\n\rx", ErrBareCR},
		{"obs-fold", head(get, "Host: x", "X: a", " b"), ErrObsFold},
		{"obs-fold with a tab", head(get, "Host: x", "X: a", "\tb"), ErrObsFold},
		{"whitespace before the first header", head(get, " Host: x"), ErrObsFold},
		{"space before colon", head(get, "Host : x"), ErrSpaceBeforeColon},
		{"tab before colon", head(get, "Host\t: x"), ErrSpaceBeforeColon},
		{"space inside a name", head(get, "Host: x", "X Bad: 1"), ErrSpaceBeforeColon},
		{"control byte in a name", head(get, "Host: x", "X\x01: 1"), ErrBadHeaderName},
		{"separator in a name", head(get, "Host: x", "X(: 1"), ErrBadHeaderName},
		{"empty name", head(get, "Host: x", ": 1"), ErrBadHeaderName},
		{"no colon", head(get, "Host: x", "X-No-Colon"), ErrBadHeaderName},
		{"NUL in a value", head(get, "Host: x", "X-Ctl: a\x00b"), ErrBadHeaderValue},
		{"DEL in a value", head(get, "Host: x", "X-Ctl: a\x7fb"), ErrBadHeaderValue},
		{"obs-text in a value", head(get, "Host: x", "X: caf\xc3\xa9"), nil},
		{"empty value", head(get, "Host: x", "X:"), nil},

		// Framing: the smuggling cases of proxy TestRequestSmuggling, and more.
		{"CL.TE", head("POST /p HTTP/1.1", "Host: x", "Content-Length: 4", "Transfer-Encoding: chunked"), nil},
		{"TE.CL", head("POST /p HTTP/1.1", "Host: x", "Transfer-Encoding: chunked", "Content-Length: 40"), nil},
		{"two different CLs", head("POST /p HTTP/1.1", "Host: x", "Content-Length: 4", "Content-Length: 40"), ErrDuplicateContentLength},
		{"two equal CLs", head("POST /p HTTP/1.1", "Host: x", "Content-Length: 4", "Content-Length: 4"), ErrDuplicateContentLength},
		{"signed CL", head("POST /p HTTP/1.1", "Host: x", "Content-Length: +4"), ErrBadContentLength},
		{"negative CL", head("POST /p HTTP/1.1", "Host: x", "Content-Length: -1"), ErrBadContentLength},
		{"CL list", head("POST /p HTTP/1.1", "Host: x", "Content-Length: 4, 4"), ErrBadContentLength},
		{"space inside CL", head("POST /p HTTP/1.1", "Host: x", "Content-Length: 4 0"), ErrBadContentLength},
		{"empty CL", head("POST /p HTTP/1.1", "Host: x", "Content-Length: "), ErrBadContentLength},
		{"hex CL", head("POST /p HTTP/1.1", "Host: x", "Content-Length: 0x10"), ErrBadContentLength},
		{"CL 2^62", head("POST /p HTTP/1.1", "Host: x", "Content-Length: "+strconv.FormatInt(1<<62, 10)), nil},
		{"CL over 2^62", head("POST /p HTTP/1.1", "Host: x", "Content-Length: "+strconv.FormatInt(1<<62+1, 10)), ErrBadContentLength},
		{"CL over int64", head("POST /p HTTP/1.1", "Host: x", "Content-Length: 99999999999999999999"), ErrBadContentLength},
		{"obfuscated TE", head("POST /p HTTP/1.1", "Host: x", "Transfer-Encoding: xchunked", "Content-Length: 4"), ErrUnsupportedTE},
		{"TE list", head("POST /p HTTP/1.1", "Host: x", "Transfer-Encoding: chunked, identity"), ErrUnsupportedTE},
		{"TE identity", head("POST /p HTTP/1.1", "Host: x", "Transfer-Encoding: identity"), ErrUnsupportedTE},
		{"TE gzip", head("POST /p HTTP/1.1", "Host: x", "Transfer-Encoding: gzip"), ErrUnsupportedTE},
		{"empty TE", head("POST /p HTTP/1.1", "Host: x", "Transfer-Encoding:"), ErrUnsupportedTE},
		{"two TEs", head("POST /p HTTP/1.1", "Host: x", "Transfer-Encoding: chunked", "Transfer-Encoding: identity"), ErrDuplicateTE},
		{"two chunked TEs", head("POST /p HTTP/1.1", "Host: x", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked"), ErrDuplicateTE},
		{"TE with a space before the colon", head("POST /p HTTP/1.1", "Host: x", "Transfer-Encoding : chunked"), ErrSpaceBeforeColon},
		{"TE on HTTP/1.0", head("POST /p HTTP/1.0", "Host: x", "Transfer-Encoding: chunked"), ErrTEOnHTTP10},
		{"TE in capitals, OWS around", head("POST /p HTTP/1.1", "Host: x", "TRANSFER-ENCODING: \tChunked "), nil},

		// Host.
		{"HTTP/1.1 without Host", head(get, "X: 1"), ErrMissingHost},
		{"two Hosts", head(get, "Host: x", "Host: x"), ErrDuplicateHost},
		{"empty Host", head(get, "Host: "), ErrBadHost},
		{"Host with a path", head(get, "Host: x/y"), ErrBadHost},
		{"Host with userinfo", head(get, "Host: u@x"), ErrBadHost},
		{"Host with a space", head(get, "Host: x y"), ErrBadHost},
		{"Host IPv6 and port", head(get, "Host: [::1]:3200"), nil},
		{"percent-encoded Host", head(get, "Host: %61dmin"), ErrBadHost},
		{"percent-encoded authority", head("GET http://%61dmin/ HTTP/1.0"), ErrBadTarget},
		{"absolute-form, other Host", head("GET http://a/x HTTP/1.1", "Host: b"), ErrHostMismatch},
		{"absolute-form, no Host, HTTP/1.0", head("GET http://a/x HTTP/1.0"), nil},

		// Connection and Upgrade.
		{"Connection option not a token", head(get, "Host: x", "Connection: a b"), ErrBadConnection},
		{"Connection with empty elements", head(get, "Host: x", "Connection: , ,close,"), nil},
		{"Connection naming Content-Length", head("POST /p HTTP/1.1", "Host: x", "Connection: Content-Length", "Content-Length: 5"), ErrBadConnection},
		{"Connection naming Host", head(get, "Host: x", "Connection: keep-alive, host"), ErrBadConnection},
		{"Connection naming Transfer-Encoding, hop-by-hop anyway", head(get, "Host: x", "Connection: Transfer-Encoding, TE"), nil},
		{"two Upgrades", head(get, "Host: x", "Upgrade: websocket", "Upgrade: h2c"), ErrDuplicateUpgrade},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r Request
			n, err := ParseRequest([]byte(c.in), Limits{}, &r)
			if err != c.want {
				t.Fatalf("%q: err %v, want %v", c.in, err, c.want)
			}
			if err == nil && n != len(c.in) {
				t.Fatalf("%q: n %d, want %d", c.in, n, len(c.in))
			}
			checkRequestSplits(t, []byte(c.in), Limits{})
		})
	}
}

func TestParseRequestDecodes(t *testing.T) {
	in := head("GET http://Chat.Example:80/socket.io/?EIO=4&transport=polling HTTP/1.1",
		"host: chat.example:80", "Connection: keep-alive, Upgrade, X-Hop", "Upgrade: websocket",
		"X-Hop: 1", "X-Spaces: \t a  b \t", "Content-Length: 007", "Cookie: io=abc")
	var r Request
	n, err := ParseRequest([]byte(in+"body"), Limits{}, &r)
	if err != nil || n != len(in) {
		t.Fatalf("n %d err %v", n, err)
	}
	for _, c := range []struct{ name, got, want string }{
		{"method", string(r.Method), "GET"},
		{"target", string(r.Target), "http://Chat.Example:80/socket.io/?EIO=4&transport=polling"},
		{"path", string(r.Path), "/socket.io/"},
		{"query", string(r.Query), "EIO=4&transport=polling"},
		{"authority", string(r.Authority), "Chat.Example:80"},
		{"host", string(r.Host), "chat.example:80"},
		{"version", string(r.Version), "HTTP/1.1"},
		{"upgrade", string(r.Upgrade), "websocket"},
		{"spaces trimmed", string(r.Get("x-spaces")), "a  b"},
		{"get any case", string(r.Get("cookie")), "io=abc"},
		{"get by a name in any case", string(r.Get("Cookie")), "io=abc"},
		{"raw", string(r.Raw()), in},
	} {
		if c.got != c.want {
			t.Errorf("%s: %q, want %q", c.name, c.got, c.want)
		}
	}
	if r.Minor != 1 || r.ContentLength != 7 || r.Chunked || !r.ConnKeepAlive || !r.ConnUpgrade || r.ConnClose {
		t.Errorf("decoded: %s", describeRequest(n, err, &r))
	}
	if r.Len() != 7 || !r.IsHopByHop([]byte("x-hop")) || !r.IsHopByHop([]byte("Keep-Alive")) || r.IsHopByHop([]byte("Cookie")) {
		t.Errorf("fields: %d; hop-by-hop X-Hop %v", r.Len(), r.IsHopByHop([]byte("x-hop")))
	}
	if r.Framing() != FramingLength || !r.KeepAlive() {
		t.Errorf("framing %v keep-alive %v", r.Framing(), r.KeepAlive())
	}
}

func TestParseRequestQueryAndPath(t *testing.T) {
	for _, c := range []struct {
		target, path, query string
		hasQuery            bool
	}{
		{"/", "/", "", false},
		{"/a?", "/a", "", true},
		{"/a?b?c", "/a", "b?c", true},
		{"http://x/?q", "/", "q", true},
	} {
		var r Request
		if _, err := ParseRequest([]byte(head("GET "+c.target+" HTTP/1.1", "Host: x")), Limits{}, &r); err != nil {
			t.Fatal(err)
		}
		if string(r.Path) != c.path || string(r.Query) != c.query || (r.Query != nil) != c.hasQuery {
			t.Errorf("%s: path %q query %q (%v)", c.target, r.Path, r.Query, r.Query != nil)
		}
	}
}

func TestRequestFraming(t *testing.T) {
	for _, c := range []struct {
		fields    []string
		minor     string
		framing   Framing
		keepAlive bool
	}{
		{nil, "1", FramingNone, true},
		{[]string{"Content-Length: 0"}, "1", FramingNone, true},
		{[]string{"Content-Length: 5"}, "1", FramingLength, true},
		{[]string{"Transfer-Encoding: chunked", "Content-Length: 5"}, "1", FramingChunked, true},
		{[]string{"Connection: close"}, "1", FramingNone, false},
		{nil, "0", FramingNone, false},
		{[]string{"Connection: Keep-Alive"}, "0", FramingNone, true},
	} {
		var r Request
		in := head("POST / HTTP/1."+c.minor, append([]string{"Host: x"}, c.fields...)...)
		if _, err := ParseRequest([]byte(in), Limits{}, &r); err != nil {
			t.Fatal(err)
		}
		if r.Framing() != c.framing || r.KeepAlive() != c.keepAlive {
			t.Errorf("%q: framing %v keep-alive %v", in, r.Framing(), r.KeepAlive())
		}
	}
}

// TestRequestLimits: each limit holds at its exact bound and refuses one byte (or line) more,
// as soon as that byte arrives.
func TestRequestLimits(t *testing.T) {
	base := head("GET / HTTP/1.1", "Host: x") // 27 bytes
	lim := Limits{MaxHeaderBytes: len(base) + 8, MaxLineBytes: 16, MaxHeaders: 2}
	cases := []struct {
		name string
		in   string
		want error
	}{
		{"head at the bound", head("GET / HTTP/1.1", "Host: x", "A: 123"), nil},
		{"head one byte over", head("GET / HTTP/1.1", "Host: x", "A: 1234"), ErrHeadTooLarge},
		{"line at the bound", head("GET / HTTP/1.1", "Host: 12345678"), nil},
		{"header line one byte over", head("GET / HTTP/1.1", "Host: 123456789"), ErrLineTooLong},
		{"request line over", head("GET /12 HTTP/1.1", "Host: x"), ErrLineTooLong},
		{"headers at the bound", head("GET / HTTP/1.1", "Host: x", "A:"), nil},
		{"one header too many", head("GET / HTTP/1.1", "Host: x", "A:", "B:"), ErrTooManyHeaders},
	}
	for _, c := range cases {
		var r Request
		if _, err := ParseRequest([]byte(c.in), lim, &r); err != c.want {
			t.Errorf("%s: %q: %v, want %v", c.name, c.in, err, c.want)
		}
		checkRequestSplits(t, []byte(c.in), lim)
	}
	// A limit reached with the buffer full is told at once: the caller's buffer need not be larger.
	var r Request
	if _, err := ParseRequest([]byte("GET /"+strings.Repeat("a", 27)), Limits{MaxHeaderBytes: 32}, &r); err != ErrHeadTooLarge {
		t.Errorf("a full buffer: %v", err)
	}
	if _, err := ParseRequest([]byte("GET /aaaaaaaaaaa"), Limits{MaxLineBytes: 16}, &r); err != ErrLineTooLong {
		t.Errorf("a full line: %v", err)
	}
}

// TestEarlyRefusal: junk is refused as soon as it arrives, never waiting for the end of a line or
// of the head (a slowloris sending junk is cut at its first wrong byte).
func TestEarlyRefusal(t *testing.T) {
	for _, c := range []struct {
		in   string
		want error
	}{
		{"\x16\x03\x01", ErrBadRequestLine}, // a TLS ClientHello
		{"GET /a\x00", ErrBadTarget},
		{"GET / HTTP/3", ErrVersion},
		{"GET / HTTPS", ErrBadRequestLine},
		{"GET / HTTP/1.1\r\nX\x00", ErrBadHeaderName},
		{"GET / HTTP/1.1\r\nX: a\x01", ErrBadHeaderValue},
		{"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n", ErrDuplicateContentLength},
	} {
		var r Request
		if _, err := ParseRequest([]byte(c.in), Limits{}, &r); err != c.want {
			t.Errorf("%q: %v, want %v", c.in, err, c.want)
		}
	}
}

// TestEveryPrefixNeedsMore: every proper prefix of a valid head is ErrNeedMore.
func TestEveryPrefixNeedsMore(t *testing.T) {
	in := pollingHead
	for i := range len(in) {
		var r Request
		if _, err := ParseRequest([]byte(in[:i]), Limits{}, &r); err != ErrNeedMore {
			t.Fatalf("%q: %v", in[:i], err)
		}
	}
}

// TestResumeNeedsSameRequest: after ErrNeedMore a shorter buffer starts over, and Reset abandons.
func TestResumeAndReset(t *testing.T) {
	var r Request
	if _, err := ParseRequest([]byte("GET /abc"), Limits{}, &r); err != ErrNeedMore {
		t.Fatal(err)
	}
	if n, err := ParseRequest([]byte("GET /"), Limits{}, &r); err != ErrNeedMore || n != 0 {
		t.Fatalf("a shorter buffer: %d %v", n, err)
	}
	r.Reset()
	in := head("PUT /x HTTP/1.1", "Host: y")
	if n, err := ParseRequest([]byte(in), Limits{}, &r); err != nil || n != len(in) || string(r.Method) != "PUT" {
		t.Fatalf("after Reset: %d %v %q", n, err, r.Method)
	}
	// A finished parse is not resumed: the same Request parses the next head of a connection.
	if n, err := ParseRequest([]byte(head("GET /next HTTP/1.0")), Limits{}, &r); err != nil || string(r.Path) != "/next" || r.Host != nil || r.Len() != 0 {
		t.Fatalf("next head: %d %v %s", n, err, describeRequest(n, err, &r))
	}
}

func TestStatus(t *testing.T) {
	for err, want := range map[error]int{
		nil: 0, ErrNeedMore: 0, ErrBadTarget: 400, ErrHeadTooLarge: 431, ErrLineTooLong: 431,
		ErrTooManyHeaders: 431, ErrUnsupportedTE: 501, ErrVersion: 505, ErrNotHTTP: 502,
	} {
		if got := Status(err); got != want {
			t.Errorf("%v: %d, want %d", err, got, want)
		}
	}
}

// TestNothingBeforeComplete: after ErrNeedMore or a refusal no field is visible.
func TestNothingBeforeComplete(t *testing.T) {
	var r Request
	for _, in := range []string{"GET / HTTP/1.1\r\nHost: x\r\nX: 1\r\n", head("GET / HTTP/1.1", "X: 1")} {
		_, err := ParseRequest([]byte(in), Limits{}, &r)
		if err == nil || r.Len() != 0 || r.Get("x") != nil || r.IsHopByHop([]byte("x")) || r.Method != nil {
			t.Fatalf("%q: %v, %d fields", in, err, r.Len())
		}
	}
}
