package httpwire

import (
	"bufio"
	"bytes"
	"io"
	"net/http/httputil"
	"net/textproto"
	"testing"

	"github.com/valyala/fasthttp"
)

// Where sidpin is deliberately stricter than the parsers it replaces. Each row is accepted by
// fasthttp (or, for chunked bodies, by net/http) and refused here, and says why; doc.go lists them.

func TestStricterThanFasthttpRequest(t *testing.T) {
	for _, c := range []struct {
		why  string
		in   string
		want error
	}{
		{"bare LF: parsers that do and do not accept it frame differently", "GET / HTTP/1.1\r\nHost: x\nX: 1\r\n\r\n", ErrBareLF},
		{"bare LF before the request line", "\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", ErrBareLF},
		{"obs-fold: joined by some, split by others", head("GET / HTTP/1.1", "Host: x", "X: a", " b"), ErrObsFold},
		{"space inside a name: not a token", head("GET / HTTP/1.1", "Host: x", "X Bad: 1"), ErrSpaceBeforeColon},
		{"raw UTF-8 in the target: decoded differently", head("GET /\xc3\xa9 HTTP/1.1", "Host: x"), ErrBadTarget},
		{"fragment in the target: never sent", head("GET /a#b HTTP/1.1", "Host: x"), ErrBadTarget},
		{"asterisk-form: no use behind sidpin", head("OPTIONS * HTTP/1.1", "Host: x"), ErrBadTarget},
		{"authority-form: sidpin is no forward proxy", head("CONNECT x:443 HTTP/1.1", "Host: x:443"), ErrBadTarget},
		{"a scheme other than http(s)", head("GET ftp://x/ HTTP/1.1", "Host: x"), ErrBadTarget},
		{"absolute-form without a path", head("GET http://x HTTP/1.1", "Host: x"), ErrBadTarget},
		{"Host other than the target's authority: fasthttp reads Host, net/http the authority", head("GET http://a/ HTTP/1.1", "Host: b"), ErrHostMismatch},
		{"Host with a path", head("GET / HTTP/1.1", "Host: x/y"), ErrBadHost},
		{"Host with userinfo", head("GET / HTTP/1.1", "Host: u@x"), ErrBadHost},
		{"percent-encoded authority: net/http decodes it, fasthttp does not", head("GET http://%61dmin/ HTTP/1.1", "Host: %61dmin"), ErrBadTarget},
		{"empty Host", head("GET / HTTP/1.0", "Host:"), ErrBadHost},
		{"HTTP/1.2: only 1.0 and 1.1 are spoken", head("GET / HTTP/1.2", "Host: x"), ErrVersion},
		{"HTTP/2.0 in an HTTP/1 request line", head("GET / HTTP/2.0", "Host: x"), ErrVersion},
		{"Transfer-Encoding: identity: not chunked", head("POST / HTTP/1.1", "Host: x", "Transfer-Encoding: identity"), ErrUnsupportedTE},
		{"two Upgrades: first-wins and merging readers differ", head("GET / HTTP/1.1", "Host: x", "Upgrade: websocket", "Upgrade: h2c"), ErrDuplicateUpgrade},
		{"a Connection option that is not a token names no header", head("GET / HTTP/1.1", "Host: x", "Connection: a b"), ErrBadConnection},
		{"Connection naming Content-Length: honoured, it drops the body's length", head("POST / HTTP/1.1", "Host: x", "Connection: Content-Length", "Content-Length: 5"), ErrBadConnection},
	} {
		var fh fasthttp.RequestHeader
		if err := fh.Read(bufio.NewReader(bytes.NewReader([]byte(c.in)))); err != nil {
			t.Errorf("%s: fasthttp refuses %q too: %v", c.why, c.in, err)
		}
		var r Request
		if _, err := ParseRequest([]byte(c.in), Limits{}, &r); err != c.want {
			t.Errorf("%s: %q: %v, want %v", c.why, c.in, err, c.want)
		}
	}
}

func TestStricterThanFasthttpResponse(t *testing.T) {
	for _, c := range []struct {
		why  string
		in   string
		want error
	}{
		{"Transfer-Encoding on HTTP/1.0: fasthttp ignores it, RFC 9112 §6.1 calls it faulty framing", respHead("HTTP/1.0 200 OK", "Transfer-Encoding: chunked"), ErrTEOnHTTP10},
		{"a status outside 100-599", respHead("HTTP/1.1 600 X"), ErrNotHTTP},
		{"HTTP/2.0 in a status line", respHead("HTTP/2.0 200 OK"), ErrNotHTTP},
		{"two spaces after the version", respHead("HTTP/1.1  200 OK"), ErrNotHTTP},
		{"empty lines before the status line", "\r\n" + respHead("HTTP/1.1 200 OK"), ErrNotHTTP},
		{"bare LF", "HTTP/1.1 200 OK\r\nX: 1\nContent-Length: 0\r\n\r\n", ErrBareLF},
		{"obs-fold (RFC 9112 §5.2 lets a proxy refuse it)", respHead("HTTP/1.1 200 OK", "X: a", " b"), ErrObsFold},
		{"space inside a name", respHead("HTTP/1.1 200 OK", "X Y: 1"), ErrSpaceBeforeColon},
		{"space before the colon", respHead("HTTP/1.1 200 OK", "X : 1"), ErrSpaceBeforeColon},
	} {
		var fh fasthttp.ResponseHeader
		if err := fh.Read(bufio.NewReader(bytes.NewReader([]byte(c.in)))); err != nil {
			t.Errorf("%s: fasthttp refuses %q too: %v", c.why, c.in, err)
		}
		var r Response
		if _, err := ParseResponse([]byte(c.in), Limits{}, &r); err != c.want {
			t.Errorf("%s: %q: %v, want %v", c.why, c.in, err, c.want)
		}
	}
}

func TestStricterThanNetHTTPChunked(t *testing.T) {
	for _, c := range []struct {
		why  string
		in   string
		want error
	}{
		{"whitespace after the size (net/http trims it)", "5 \r\nhello\r\n0\r\n\r\n", ErrBadChunk},
		{"a control byte in an extension", "5;a\x01\r\nhello\r\n0\r\n\r\n", ErrBadChunk},
		{"obs-fold in the trailers", "0\r\nX: 1\r\n 2\r\n\r\n", ErrBadTrailer},
		{"bare LF in the trailers", "0\r\nX: 1\n\r\n", ErrBareLF},
	} {
		br := bufio.NewReader(bytes.NewReader([]byte(c.in)))
		_, err := io.ReadAll(httputil.NewChunkedReader(br))
		if err == nil {
			_, err = textproto.NewReader(br).ReadMIMEHeader()
		}
		if err != nil {
			t.Errorf("%s: net/http refuses %q too: %v", c.why, c.in, err)
		}
		var cr ChunkedReader
		if _, _, err := cr.Feed([]byte(c.in), nil); err != c.want {
			t.Errorf("%s: %q: %v, want %v", c.why, c.in, err, c.want)
		}
	}
}
