package httpwire

import (
	"bytes"
	"testing"
)

func TestAppendRequestHead(t *testing.T) {
	in := head("GET /socket.io/?EIO=4&transport=polling&sid=abc HTTP/1.0",
		"Host: chat", "Connection: keep-alive, X-Hop", "Keep-Alive: timeout=5", "X-Hop: 1",
		"Upgrade: websocket", "Cookie:  io=abc ", "Accept: */*")
	var r Request
	if _, err := ParseRequest([]byte(in), Limits{}, &r); err != nil {
		t.Fatal(err)
	}
	extra := []Field{{[]byte("X-Forwarded-For"), []byte("203.0.113.7")}}
	got := AppendRequestHead([]byte("prefix|"), &r, r.NotForwarded, extra)
	want := "prefix|GET /socket.io/?EIO=4&transport=polling&sid=abc HTTP/1.1\r\n" +
		"Host: chat\r\nCookie: io=abc\r\nAccept: */*\r\nX-Forwarded-For: 203.0.113.7\r\n\r\n"
	if string(got) != want {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
	// What sidpin writes, it parses back the same.
	var back Request
	if _, err := ParseRequest(got[len("prefix|"):], Limits{}, &back); err != nil {
		t.Fatalf("written head does not parse: %v", err)
	}
	if !bytes.Equal(back.Target, r.Target) || string(back.Get("cookie")) != "io=abc" || back.Len() != 4 {
		t.Fatalf("parsed back: %s", describeRequest(0, nil, &back))
	}
	if all := AppendRequestHead(nil, &r, nil, nil); bytes.Count(all, []byte("\r\n")) != r.Len()+2 {
		t.Fatalf("nil skip wrote %q", all)
	}
}

func TestAppendResponseHead(t *testing.T) {
	in := respHead("HTTP/1.0 404 Not Found", "Content-Type: text/plain", "Connection: close", "Content-Length: 3")
	var r Response
	if _, err := ParseResponse([]byte(in), Limits{}, &r); err != nil {
		t.Fatal(err)
	}
	got := AppendResponseHead(nil, &r, r.NotForwarded, []Field{{[]byte("Via"), []byte("sidpin")}})
	want := "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nVia: sidpin\r\n\r\n"
	if string(got) != want {
		t.Fatalf("got %q", got)
	}
}

// TestZeroAllocs: parsing, resuming, reading a chunked body and writing a head allocate nothing.
func TestZeroAllocs(t *testing.T) {
	reqBuf, respBuf, junk := []byte(pollingHead), []byte(nodeAnswerHead), []byte("GET /\x00")
	var req Request
	var resp Response
	var c ChunkedReader
	body := []byte("5\r\nhello\r\n3;x=1\r\nabc\r\n0\r\nT: 1\r\n\r\n")
	dst := make([]byte, 0, 2048)
	extra := []Field{{[]byte("X-Forwarded-For"), []byte("203.0.113.7")}}
	var seen int
	for name, f := range map[string]func(){
		"ParseRequest":  func() { _, _ = ParseRequest(reqBuf, Limits{}, &req) },
		"ParseResponse": func() { _, _ = ParseResponse(respBuf, Limits{}, &resp) },
		"ParseRequest in 3 pieces": func() {
			for _, end := range []int{10, 200, len(reqBuf)} {
				_, _ = ParseRequest(reqBuf[:end], Limits{}, &req)
			}
		},
		"ChunkedReader.Feed": func() {
			c.Reset(Limits{})
			_, _, _ = c.Feed(body, func(p []byte) { seen += len(p) })
		},
		"AppendRequestHead": func() {
			_, _ = ParseRequest(reqBuf, Limits{}, &req)
			dst = AppendRequestHead(dst[:0], &req, req.NotForwarded, extra)
		},
		"AppendResponseHead": func() {
			_, _ = ParseResponse(respBuf, Limits{}, &resp)
			dst = AppendResponseHead(dst[:0], &resp, resp.NotForwarded, nil)
		},
		"refusal": func() { _, _ = ParseRequest(junk, Limits{}, &req) },
	} {
		if n := testing.AllocsPerRun(200, f); n != 0 {
			t.Errorf("%s: %v allocs/op", name, n)
		}
	}
}

func TestIsHopByHop(t *testing.T) {
	for _, c := range []struct {
		connection string
		hop, kept  []string
	}{
		{"", []string{"Connection", "keep-alive", "TE", "Transfer-Encoding", "Proxy-Authorization", "UPGRADE"}, []string{"Cookie", "X-Te", "Close"}},
		{"close", []string{"close", "Keep-Alive"}, []string{"Cookie"}},
		{"Upgrade, X-Secret,  x-other ", []string{"x-secret", "X-Other", "upgrade"}, []string{"X-Secrets", "close"}},
	} {
		fields := []string{"Host: x"}
		if c.connection != "" {
			fields = append(fields, "Connection: "+c.connection)
		}
		var r Request
		if _, err := ParseRequest([]byte(head("GET / HTTP/1.1", fields...)), Limits{}, &r); err != nil {
			t.Fatal(err)
		}
		for _, name := range c.hop {
			if !r.IsHopByHop([]byte(name)) {
				t.Errorf("Connection %q: %s kept", c.connection, name)
			}
		}
		for _, name := range c.kept {
			if r.IsHopByHop([]byte(name)) {
				t.Errorf("Connection %q: %s dropped", c.connection, name)
			}
		}
	}
}

// TestForwardedFraming: the head sidpin forwards keeps the framing of the body it relays as
// received, whatever Connection names; Content-Length goes when the body is chunked.
func TestForwardedFraming(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{head("POST /p HTTP/1.1", "Host: x", "Content-Length: 4", "Transfer-Encoding: chunked"),
			"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"},
		{head("POST /p HTTP/1.1", "Host: x", "Connection: Transfer-Encoding, X", "Content-Length: 4", "X: 1"),
			"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n"},
		{head("POST /p HTTP/1.1", "Host: x", "Transfer-Encoding: Chunked", "Connection: close"),
			"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n"},
	} {
		var r Request
		if _, err := ParseRequest([]byte(c.in), Limits{}, &r); err != nil {
			t.Fatal(err)
		}
		if got := AppendRequestHead(nil, &r, r.NotForwarded, nil); string(got) != c.want {
			t.Errorf("%q:\n got  %q\n want %q", c.in, got, c.want)
		}
		if !r.IsHopByHop([]byte("Transfer-Encoding")) {
			t.Error("IsHopByHop is the plain definition")
		}
	}
}
