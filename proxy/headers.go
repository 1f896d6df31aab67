package proxy

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

// hopHeaders are meaningful only for one connection and never forwarded (RFC 9110 §7.6.1).
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// connectionTokens returns the header names listed in a Connection header value.
func connectionTokens(value []byte) [][]byte {
	var names [][]byte
	for _, tok := range bytes.Split(value, []byte{','}) {
		if tok = bytes.TrimSpace(tok); len(tok) > 0 {
			names = append(names, tok)
		}
	}
	return names
}

// cleanRequest removes hop-by-hop headers, those named in Connection included. A stray Upgrade on a
// polling request goes with them.
func cleanRequest(h *fasthttp.RequestHeader) {
	for _, name := range connectionTokens(h.Peek(fasthttp.HeaderConnection)) {
		h.DelBytes(name)
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
}

// cleanResponse does the same for a node's answer.
func cleanResponse(h *fasthttp.ResponseHeader) {
	for _, name := range connectionTokens(h.Peek(fasthttp.HeaderConnection)) {
		h.DelBytes(name)
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
}

// addForwarded appends the client to X-Forwarded-For and sets X-Forwarded-Proto and -Host, leaving
// Host as the client sent it (Socket.IO's CORS and cookies depend on it).
func addForwarded(h *fasthttp.RequestHeader, clientIP []byte, tls bool) {
	if prior := h.Peek("X-Forwarded-For"); len(prior) > 0 {
		xff := make([]byte, 0, len(prior)+2+len(clientIP))
		xff = append(append(append(xff, prior...), ", "...), clientIP...)
		h.SetBytesV("X-Forwarded-For", xff)
	} else {
		h.SetBytesV("X-Forwarded-For", clientIP)
	}
	proto := "http"
	if tls {
		proto = "https"
	}
	h.Set("X-Forwarded-Proto", proto)
	if len(h.Peek("X-Forwarded-Host")) == 0 {
		h.SetBytesV("X-Forwarded-Host", h.Host())
	}
}
