package admin

import (
	"crypto/subtle"
	"net"
	"net/netip"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/configs"
)

// caller is what the listener knows of who sent a request.
type caller struct {
	bearer   bool // a valid bearer token: a script that knows the token, not a browser sent by some page
	open     bool // no token is configured (loopback only): every request is authorized
	signedIn bool // the request carries the sign-in cookie of a live session
	session  session
}

func (c caller) authorized() bool { return c.bearer || c.open || c.signedIn }

// needsCSRF reports whether a state-changing request to path must carry the session's CSRF token. A
// bearer token cannot come from another page (browsers do not add the header cross-origin). Without
// a token, scripts may still drive the API with nothing; the page's own routes always need the token.
func (c caller) needsCSRF(path string) bool {
	if c.bearer {
		return false
	}
	return !c.open || strings.HasPrefix(path, "/ui/") || path == "/logout"
}

// csrfOK compares the CSRF token of a form (field csrf) or of a script (X-CSRF-Token) with the
// session's, in constant time.
func (c caller) csrfOK(ctx *fasthttp.RequestCtx) bool {
	if !c.signedIn {
		return false
	}
	got := ctx.PostArgs().Peek("csrf")
	if len(got) == 0 {
		got = ctx.Request.Header.Peek("X-CSRF-Token")
	}
	return len(got) > 0 && subtle.ConstantTimeCompare(got, []byte(c.session.csrf)) == 1
}

// identify reads the bearer token and the sign-in cookie of a request.
func (s *Server) identify(ctx *fasthttp.RequestCtx) caller {
	c := caller{open: len(s.token) == 0, bearer: s.bearerOK(ctx)}
	if id := ctx.Request.Header.Cookie(configs.AdminCookie); len(id) > 0 {
		c.session, c.signedIn = s.sessions.lookup(string(id))
	}
	return c
}

// bearerOK compares the bearer token in constant time; without a configured token there is none.
func (s *Server) bearerOK(ctx *fasthttp.RequestCtx) bool {
	const prefix = "Bearer "
	h := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)
	if len(s.token) == 0 || len(h) < len(prefix) || !strings.EqualFold(string(h[:len(prefix)]), prefix) { // the scheme is case-insensitive
		return false
	}
	return subtle.ConstantTimeCompare(h[len(prefix):], s.token) == 1
}

// changesState reports whether a request may change something: anything but a read.
func changesState(ctx *fasthttp.RequestCtx) bool {
	return !ctx.IsGet() && !ctx.IsHead()
}

// crossOrigin says why a request did not come from a page of this listener, or "" when nothing says
// it did not. SameSite=Strict does not help here: it does not separate ports or sibling hosts, so a
// page on http://127.0.0.1:8080 is same-site with a listener on 127.0.0.1:3201. Browsers say where a
// request comes from in Sec-Fetch-Site and Origin; clients that send neither (curl, scripts) are not
// a browser acting for another page.
func crossOrigin(ctx *fasthttp.RequestCtx) string {
	if site := ctx.Request.Header.Peek("Sec-Fetch-Site"); len(site) > 0 && string(site) != "same-origin" {
		return "Sec-Fetch-Site is " + string(site)
	}
	origin := string(ctx.Request.Header.Peek("Origin"))
	if own := ownOrigin(ctx); origin != "" && !strings.EqualFold(origin, own) {
		return "Origin " + origin + " is not " + own
	}
	return ""
}

// ownOrigin is the origin the request was sent to: scheme://host[:port] from the Host header.
func ownOrigin(ctx *fasthttp.RequestCtx) string {
	if ctx.IsTLS() {
		return "https://" + string(ctx.Host())
	}
	return "http://" + string(ctx.Host())
}

// refuse answers 403 to a request that is authorized but must not be acted on.
func (s *Server) refuse(ctx *fasthttp.RequestCtx, why string) {
	s.log.Warn("admin request refused", "why", why, "method", string(ctx.Method()),
		"path", string(ctx.Request.URI().PathOriginal()), "remote", ctx.RemoteAddr().String())
	writeError(ctx, fasthttp.StatusForbidden, why)
}

// setSessionCookie sets the sign-in cookie; maxAge < 0 deletes it. SameSite=Strict keeps it off
// requests from other sites (not from other ports: see crossOrigin); Secure when served over TLS.
func setSessionCookie(ctx *fasthttp.RequestCtx, value string, maxAge int) {
	c := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(c)
	c.SetKey(configs.AdminCookie)
	c.SetValue(value)
	c.SetPath("/")
	c.SetHTTPOnly(true)
	c.SetSameSite(fasthttp.CookieSameSiteStrictMode)
	c.SetSecure(ctx.IsTLS())
	c.SetMaxAge(maxAge)
	if maxAge < 0 {
		c.SetExpire(fasthttp.CookieExpireDelete)
	}
	ctx.Response.Header.SetCookie(c)
}

// setPageHeaders marks an HTML answer: never cached, and never framed by another page, which could
// otherwise trick the operator into pressing its buttons (clickjacking).
func setPageHeaders(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/html; charset=utf-8")
	h := &ctx.Response.Header
	h.Set(fasthttp.HeaderCacheControl, "no-store")
	h.Set(fasthttp.HeaderXFrameOptions, "DENY")
	h.Set(fasthttp.HeaderContentSecurityPolicy,
		"default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Referrer-Policy", "same-origin")
}

// loopbackHost reports whether a request's Host names this machine by a loopback IP or "localhost".
// Without a token that is the only way in: a page whose own host name resolves to 127.0.0.1 (DNS
// rebinding) sends matching Origin and Host headers, and would otherwise read and drive the listener.
func loopbackHost(host []byte) bool {
	h := string(host)
	if name, _, err := net.SplitHostPort(h); err == nil {
		h = name
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.IsLoopback()
}
