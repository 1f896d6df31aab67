package httpwire

import (
	"strings"
	"testing"
)

func respHead(line string, fields ...string) string { return head(line, fields...) }

func TestParseResponseRules(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want error
	}{
		{"200", respHead("HTTP/1.1 200 OK", "Content-Length: 5"), nil},
		{"no reason", respHead("HTTP/1.1 200"), nil},
		{"empty reason", respHead("HTTP/1.1 200 "), nil},
		{"reason with spaces and obs-text", respHead("HTTP/1.1 404 Not \xc3\xa9 Found"), nil},
		{"HTTP/1.0", respHead("HTTP/1.0 200 OK"), nil},
		{"HTTP/1.2 reads as 1.1", respHead("HTTP/1.2 200 OK"), nil},
		{"100 Continue", respHead("HTTP/1.1 100 Continue"), nil},
		{"599", respHead("HTTP/1.1 599 X"), nil},

		{"SSH banner", "SSH-2.0-OpenSSH_9.6\r\n", ErrNotHTTP},
		{"HTML", "<html><body>hi</body></html>", ErrNotHTTP},
		{"HTTP/2", respHead("HTTP/2 200"), ErrNotHTTP},
		{"HTTP/2.0", respHead("HTTP/2.0 200 OK"), ErrNotHTTP},
		{"lower-case", respHead("http/1.1 200 OK"), ErrNotHTTP},
		{"two-digit status", respHead("HTTP/1.1 20 OK"), ErrNotHTTP},
		{"four-digit status", respHead("HTTP/1.1 2000 OK"), ErrNotHTTP},
		{"status 600", respHead("HTTP/1.1 600 X"), ErrNotHTTP},
		{"status 099", respHead("HTTP/1.1 099 X"), ErrNotHTTP},
		{"two spaces", respHead("HTTP/1.1  200 OK"), ErrNotHTTP},
		{"control byte in reason", respHead("HTTP/1.1 200 O\x01K"), ErrNotHTTP},
		{"empty lines first", "\r\n" + respHead("HTTP/1.1 200 OK"), ErrNotHTTP},
		{"bare LF status line", "HTTP/1.1 200 OK\n\r\n", ErrBareLF},
		{"bare LF blank line", "HTTP/1.1 200 OK\r\nX: 1\r\n\n", ErrBareLF},

		{"obs-fold", respHead("HTTP/1.1 200 OK", "X: a", " b"), ErrObsFold},
		{"space before colon", respHead("HTTP/1.1 200 OK", "Content-Length : 5"), ErrSpaceBeforeColon},
		{"bad name", respHead("HTTP/1.1 200 OK", "X@: 1"), ErrBadHeaderName},
		{"control byte in value", respHead("HTTP/1.1 200 OK", "X: \x00"), ErrBadHeaderValue},
		{"two CLs", respHead("HTTP/1.1 200 OK", "Content-Length: 5", "Content-Length: 5"), ErrDuplicateContentLength},
		{"signed CL", respHead("HTTP/1.1 200 OK", "Content-Length: +5"), ErrBadContentLength},
		{"chunked", respHead("HTTP/1.1 200 OK", "Transfer-Encoding: chunked"), nil},
		{"CL and chunked", respHead("HTTP/1.1 200 OK", "Content-Length: 5", "Transfer-Encoding: chunked"), nil},
		{"gzip, chunked", respHead("HTTP/1.1 200 OK", "Transfer-Encoding: gzip, chunked"), ErrUnsupportedTE},
		{"two TEs", respHead("HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked"), ErrDuplicateTE},
		{"TE on HTTP/1.0", respHead("HTTP/1.0 200 OK", "Transfer-Encoding: chunked"), ErrTEOnHTTP10},
		{"Host is no concern of a response", respHead("HTTP/1.1 200 OK", "Host: a", "Host: b/c"), nil},
		{"Set-Cookie repeats", respHead("HTTP/1.1 200 OK", "Set-Cookie: a=1", "Set-Cookie: b=2"), nil},
		{"Connection naming Content-Length", respHead("HTTP/1.1 200 OK", "Connection: content-length", "Content-Length: 2"), ErrBadConnection},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r Response
			n, err := ParseResponse([]byte(c.in), Limits{}, &r)
			if err != c.want {
				t.Fatalf("%q: err %v, want %v", c.in, err, c.want)
			}
			if err == nil && n != len(c.in) {
				t.Fatalf("%q: n %d, want %d", c.in, n, len(c.in))
			}
			checkResponseSplits(t, []byte(c.in), Limits{})
		})
	}
}

// TestNotHTTPAtOnce: a node's first wrong byte tells, and a head too large is another error.
func TestNotHTTPAtOnce(t *testing.T) {
	var r Response
	for in, want := range map[string]error{
		"H": ErrNeedMore, "HTTP/1.": ErrNeedMore, "HTTP/1.1 20": ErrNeedMore,
		"X": ErrNotHTTP, "HTTP/1.x": ErrNotHTTP, "HTTP/1.1 2x": ErrNotHTTP,
		"HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("b", 100): ErrLineTooLong,
		"HTTP/1.1 200 OK\r\n" + strings.Repeat("X: 1\r\n", 30):  ErrHeadTooLarge,
	} {
		if _, err := ParseResponse([]byte(in), Limits{MaxHeaderBytes: 128, MaxLineBytes: 64}, &r); err != want {
			t.Errorf("%.30q: %v, want %v", in, err, want)
		}
	}
	if IsLimit(ErrNotHTTP) || !IsLimit(ErrHeadTooLarge) || !IsLimit(ErrLineTooLong) || !IsLimit(ErrTooManyHeaders) {
		t.Error("IsLimit")
	}
}

func TestParseResponseDecodes(t *testing.T) {
	in := respHead("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade",
		"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
	var r Response
	n, err := ParseResponse([]byte(in+"\x81\x05hello"), Limits{}, &r)
	if err != nil || n != len(in) {
		t.Fatal(n, err)
	}
	if r.Status != 101 || string(r.Reason) != "Switching Protocols" || string(r.Version) != "HTTP/1.1" ||
		string(r.Upgrade) != "websocket" || !r.ConnUpgrade || r.Interim() || r.Len() != 3 {
		t.Fatalf("%s", describeResponse(n, err, &r))
	}
}

// TestInterimThenFinal: a 100 Continue head is followed by the real answer, parsed after it.
func TestInterimThenFinal(t *testing.T) {
	in := []byte("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	var r Response
	n, err := ParseResponse(in, Limits{}, &r)
	if err != nil || !r.Interim() || r.Framing(false) != FramingNone {
		t.Fatalf("%s", describeResponse(n, err, &r))
	}
	m, err := ParseResponse(in[n:], Limits{}, &r)
	if err != nil || r.Interim() || r.Status != 200 || string(in[n+m:]) != "ok" {
		t.Fatalf("%s", describeResponse(m, err, &r))
	}
}

func TestResponseFraming(t *testing.T) {
	for _, c := range []struct {
		in        string
		headReq   bool
		framing   Framing
		keepAlive bool
	}{
		{respHead("HTTP/1.1 200 OK", "Content-Length: 5"), false, FramingLength, true},
		{respHead("HTTP/1.1 200 OK", "Content-Length: 5"), true, FramingNone, true},
		{respHead("HTTP/1.1 200 OK", "Content-Length: 0"), false, FramingNone, true},
		{respHead("HTTP/1.1 200 OK", "Transfer-Encoding: chunked"), false, FramingChunked, true},
		{respHead("HTTP/1.1 200 OK"), false, FramingClose, true},
		{respHead("HTTP/1.1 204 No Content"), false, FramingNone, true},
		{respHead("HTTP/1.1 304 Not Modified", "Content-Length: 5"), false, FramingNone, true},
		{respHead("HTTP/1.1 200 OK", "Connection: close", "Content-Length: 1"), false, FramingLength, false},
		{respHead("HTTP/1.0 200 OK", "Content-Length: 1"), false, FramingLength, false},
		{respHead("HTTP/1.0 200 OK", "Connection: keep-alive", "Content-Length: 1"), false, FramingLength, true},
	} {
		var r Response
		if _, err := ParseResponse([]byte(c.in), Limits{}, &r); err != nil {
			t.Fatal(err)
		}
		if r.Framing(c.headReq) != c.framing || r.KeepAlive() != c.keepAlive {
			t.Errorf("%q (HEAD %v): framing %v keep-alive %v", c.in, c.headReq, r.Framing(c.headReq), r.KeepAlive())
		}
	}
}
