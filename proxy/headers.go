package proxy

import (
	"bytes"
	"net"
	"net/netip"

	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/configs"
	"github.com/sidpin/sidpin/internal/hophdr"
)

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

// cleanRequest removes hop-by-hop headers, those named in Connection included, and sidpin's own
// cookie. A stray Upgrade on a polling request goes with them.
func cleanRequest(h *fasthttp.RequestHeader) {
	dropAdminCookie(h)
	for _, name := range connectionTokens(h.Peek(fasthttp.HeaderConnection)) {
		h.DelBytes(name)
	}
	for _, name := range hophdr.Names {
		h.Del(name)
	}
}

// cleanUpgradeRequest removes from an upgrade request the headers its Connection names (but Upgrade,
// which the relay writes back itself with Connection) and sidpin's own cookie; the relay leaves out
// the hop-by-hop ones as it writes the request.
func cleanUpgradeRequest(h *fasthttp.RequestHeader) {
	dropAdminCookie(h)
	for _, name := range connectionTokens(h.Peek(fasthttp.HeaderConnection)) {
		if !bytes.EqualFold(name, []byte("upgrade")) {
			h.DelBytes(name)
		}
	}
}

// dropAdminCookie removes the admin page's sign-in cookie: browsers send it to every port of the host
// name, the client listener's included, and a node has no business seeing it.
func dropAdminCookie(h *fasthttp.RequestHeader) {
	if bytes.Contains(h.Peek(fasthttp.HeaderCookie), []byte(configs.AdminCookie)) {
		h.DelCookie(configs.AdminCookie)
	}
}

// cleanResponse does the same for a node's answer.
func cleanResponse(h *fasthttp.ResponseHeader) {
	for _, name := range connectionTokens(h.Peek(fasthttp.HeaderConnection)) {
		h.DelBytes(name)
	}
	for _, name := range hophdr.Names {
		h.Del(name)
	}
}

// addForwarded sets the X-Forwarded-* headers the node gets: X-Forwarded-For extended with the
// connection's address when a trusted proxy sent it (clients.trusted_proxies), else replaced by it;
// X-Forwarded-Proto kept from a trusted proxy, else sidpin's; X-Forwarded-Host always sidpin's.
func (p *Proxy) addForwarded(ctx *fasthttp.RequestCtx) {
	h := &ctx.Request.Header
	conn := connAddr(ctx)
	trusted := p.peers.trusts(conn.Addr())
	ip := conn.Addr().AppendTo(nil)
	if prior := h.Peek("X-Forwarded-For"); trusted && len(prior) > 0 {
		xff := make([]byte, 0, len(prior)+2+len(ip))
		xff = append(append(append(xff, prior...), ", "...), ip...)
		h.SetBytesV("X-Forwarded-For", xff)
	} else {
		h.SetBytesV("X-Forwarded-For", ip)
	}
	if !trusted || len(h.Peek("X-Forwarded-Proto")) == 0 {
		proto := "http"
		if p.tls {
			proto = "https"
		}
		h.Set("X-Forwarded-Proto", proto)
	}
	// Replaced, never passed through: a node may build URLs from it, and only the Host sidpin saw is true.
	h.SetBytesV("X-Forwarded-Host", h.Host())
}

// connAddr is the address of the request's connection: the client's, or (clients.proxy_protocol)
// the one its PROXY header gave.
func connAddr(ctx *fasthttp.RequestCtx) netip.AddrPort {
	if ta, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	return netip.AddrPort{}
}

// clientOfCtx is who the request comes from (see peers.clientOf): what pins, logs and limits use.
func (p *Proxy) clientOfCtx(ctx *fasthttp.RequestCtx) netip.AddrPort {
	return p.peers.clientOf(connAddr(ctx), ctx.Request.Header.Peek("X-Forwarded-For"))
}

// validHeaders reports whether every header name is an RFC 9110 token and no value holds a control
// character other than tab. fasthttp accepts "X Bad: 1", and a node's parser may read such a header
// differently than sidpin does: it is refused rather than forwarded.
func validHeaders(h *fasthttp.RequestHeader) bool {
	for k, v := range h.All() {
		if len(k) == 0 {
			return false
		}
		for _, c := range k {
			if !tokenChar[c] {
				return false
			}
		}
		for _, c := range v {
			if c < ' ' && c != '\t' || c == 0x7f {
				return false
			}
		}
	}
	return true
}

// tokenChar marks the bytes of an RFC 9110 token: letters, digits and !#$%&'*+-.^_`|~.
var tokenChar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()
