package httpwire

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// describeRequest renders everything ParseRequest reports, to compare two parses.
func describeRequest(n int, err error, r *Request) string {
	if err != nil {
		return fmt.Sprintf("err=%v", err)
	}
	return fmt.Sprintf("n=%d m=%q t=%q p=%q q=%q(%v) v=%q/%d a=%q(%v) host=%q(%v) %s",
		n, r.Method, r.Target, r.Path, r.Query, r.Query != nil, r.Version, r.Minor,
		r.Authority, r.Authority != nil, r.Host, r.Host != nil, describeHeader(&r.Header))
}

func describeResponse(n int, err error, r *Response) string {
	if err != nil {
		return fmt.Sprintf("err=%v", err)
	}
	return fmt.Sprintf("n=%d status=%d reason=%q v=%q/%d %s", n, r.Status, r.Reason, r.Version, r.Minor, describeHeader(&r.Header))
}

func describeHeader(h *Header) string {
	var b strings.Builder
	fmt.Fprintf(&b, "cl=%d chunked=%v close=%v ka=%v up=%v upgrade=%q fields=[", h.ContentLength, h.Chunked,
		h.ConnClose, h.ConnKeepAlive, h.ConnUpgrade, h.Upgrade)
	for i := range h.Len() {
		f := h.Field(i)
		fmt.Fprintf(&b, "%q:%q ", f.Name, f.Value)
	}
	return b.String() + "]"
}

// parseRequestOnce parses in with a new Request.
func parseRequestOnce(in []byte, lim Limits) (string, *Request) {
	var r Request
	n, err := ParseRequest(in, lim, &r)
	return describeRequest(n, err, &r), &r
}

// parseRequestSplit feeds in in growing prefixes cut at the sizes next gives, until a result
// other than ErrNeedMore. The buffer grows by append from one byte of capacity, so it moves to a
// new array now and then, as an event loop's may; the old one is then clobbered, which catches a
// parser that kept reading it. A result of ErrNeedMore on the whole input is reported as such.
func parseRequestSplit(in []byte, lim Limits, next func() int) string {
	var r Request
	buf := make([]byte, 0, 1)
	for {
		buf = grow(buf, in[len(buf):min(len(in), len(buf)+next())])
		n, err := ParseRequest(buf, lim, &r)
		if err != ErrNeedMore || len(buf) == len(in) {
			clobber(buf, n) // nothing may alias the bytes after the head
			return describeRequest(n, err, &r)
		}
	}
}

func parseResponseSplit(in []byte, lim Limits, next func() int) string {
	var r Response
	buf := make([]byte, 0, 1)
	for {
		buf = grow(buf, in[len(buf):min(len(in), len(buf)+next())])
		n, err := ParseResponse(buf, lim, &r)
		if err != ErrNeedMore || len(buf) == len(in) {
			clobber(buf, n)
			return describeResponse(n, err, &r)
		}
	}
}

// grow appends more to buf, clobbering the old array when append moves it.
func grow(buf, more []byte) []byte {
	old := buf
	buf = append(buf, more...)
	if cap(old) > 0 && len(old) > 0 && &old[:1][0] != &buf[:1][0] {
		clobber(old, 0)
	}
	return buf
}

// clobber overwrites buf from n on, so a parser that kept reading an old copy is caught.
func clobber(buf []byte, n int) {
	for i := n; i < len(buf); i++ {
		buf[i] = 0xff
	}
}

func byteAtATime() int { return 1 }

// randomSplits returns sizes of 1 to 2*mean bytes from a seeded generator.
func randomSplits(seed uint64, mean int) func() int {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return func() int { return 1 + rng.IntN(2*mean) }
}

// checkSplitsAgree checks that a head parsed whole, byte by byte and in random pieces gives the
// same result.
func checkRequestSplits(t *testing.T, in []byte, lim Limits) string {
	t.Helper()
	whole, _ := parseRequestOnce(in, lim)
	for name, next := range map[string]func() int{"byte": byteAtATime, "random": randomSplits(uint64(len(in)), 7)} {
		if got := parseRequestSplit(in, lim, next); got != whole {
			t.Fatalf("%q\n %s: %s\n whole: %s", in, name, got, whole)
		}
	}
	return whole
}

func checkResponseSplits(t *testing.T, in []byte, lim Limits) string {
	t.Helper()
	var r Response
	n, err := ParseResponse(in, lim, &r)
	whole := describeResponse(n, err, &r)
	for name, next := range map[string]func() int{"byte": byteAtATime, "random": randomSplits(uint64(len(in)), 7)} {
		if got := parseResponseSplit(in, lim, next); got != whole {
			t.Fatalf("%q\n %s: %s\n whole: %s", in, name, got, whole)
		}
	}
	return whole
}
