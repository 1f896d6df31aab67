package httpwire

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/valyala/fasthttp"
)

// pollingHead is a browser's Engine.IO polling GET of an established session: ~300 bytes, 8 headers.
const pollingHead = "GET /socket.io/?EIO=4&transport=polling&t=PqX3k2a&sid=Xk3j9Q2mV0aBcDeFAAAB HTTP/1.1\r\n" +
	"Host: chat.example.com\r\n" +
	"User-Agent: Mozilla/5.0 Chrome/126.0\r\n" +
	"Accept: */*\r\n" +
	"Accept-Language: en-US,en;q=0.9\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Referer: https://chat.example.com/\r\n" +
	"Cookie: io=Xk3j9Q2mV0aBcDeFAAAB\r\n" +
	"Connection: keep-alive\r\n" +
	"\r\n"

// nodeAnswerHead is Node engine.io's answer head to a polling GET.
const nodeAnswerHead = "HTTP/1.1 200 OK\r\n" +
	"Content-Type: text/plain; charset=UTF-8\r\n" +
	"Content-Length: 103\r\n" +
	"cache-control: no-store\r\n" +
	"Date: Tue, 01 Dec 2026 10:00:00 GMT\r\n" +
	"Connection: keep-alive\r\n" +
	"Keep-Alive: timeout=5\r\n" +
	"\r\n"

func TestBenchHeadsAreTypical(t *testing.T) {
	var r Request
	if n, err := ParseRequest([]byte(pollingHead), Limits{}, &r); err != nil || n != len(pollingHead) {
		t.Fatal(n, err)
	}
	t.Logf("polling head: %d bytes, %d headers", len(pollingHead), r.Len())
	var resp Response
	if n, err := ParseResponse([]byte(nodeAnswerHead), Limits{}, &resp); err != nil || n != len(nodeAnswerHead) {
		t.Fatal(n, err)
	}
}

func BenchmarkParseRequest(b *testing.B) {
	buf := []byte(pollingHead)
	var r Request
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseRequest(buf, Limits{}, &r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseRequestByteAtATime is the worst delivery: one byte per read.
func BenchmarkParseRequestByteAtATime(b *testing.B) {
	buf := []byte(pollingHead)
	var r Request
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		for i := 1; i <= len(buf); i++ {
			if _, err := ParseRequest(buf[:i], Limits{}, &r); err != nil && err != ErrNeedMore {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkParseResponse(b *testing.B) {
	buf := []byte(nodeAnswerHead)
	var r Response
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseResponse(buf, Limits{}, &r); err != nil {
			b.Fatal(err)
		}
	}
}

// The same heads through fasthttp's parsers, for scale.
func BenchmarkFasthttpRequestHeader(b *testing.B) {
	reqBuf := []byte(pollingHead)
	var h fasthttp.RequestHeader
	rd := bytes.NewReader(nil)
	br := bufio.NewReaderSize(rd, 4096)
	b.SetBytes(int64(len(pollingHead)))
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(reqBuf)
		br.Reset(rd)
		if err := h.Read(br); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFasthttpResponseHeader(b *testing.B) {
	respBuf := []byte(nodeAnswerHead)
	var h fasthttp.ResponseHeader
	rd := bytes.NewReader(nil)
	br := bufio.NewReaderSize(rd, 4096)
	b.SetBytes(int64(len(nodeAnswerHead)))
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(respBuf)
		br.Reset(rd)
		if err := h.Read(br); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendRequestHead(b *testing.B) {
	var r Request
	if _, err := ParseRequest([]byte(pollingHead), Limits{}, &r); err != nil {
		b.Fatal(err)
	}
	extra := []Field{{[]byte("X-Forwarded-For"), []byte("203.0.113.7")}, {[]byte("X-Forwarded-Proto"), []byte("https")}}
	dst := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendRequestHead(dst[:0], &r, r.NotForwarded, extra)
	}
}

func BenchmarkChunked(b *testing.B) {
	body := []byte("1f4\r\n" + string(bytes.Repeat([]byte("x"), 500)) + "\r\n10;ext=1\r\n0123456789abcdef\r\n0\r\nX-T: 1\r\n\r\n")
	var c ChunkedReader
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		c.Reset(Limits{})
		p := body
		for len(p) > 0 {
			_, n, done, err := c.Next(p)
			if err != nil {
				b.Fatal(err)
			}
			p = p[n:]
			if done {
				break
			}
		}
	}
}
