package admin

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"html/template"
	"net/url"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/affinity"
)

//go:embed web/*.html
var webFiles embed.FS

var (
	pageTemplate  = template.Must(template.ParseFS(webFiles, "web/page.html"))
	loginTemplate = template.Must(template.ParseFS(webFiles, "web/login.html"))
)

// sessionCookie carries a browser's sign-in: an HMAC of the token, never the token itself.
const sessionCookie = "sidpin_admin"

func (s *Server) cookieValue() []byte {
	mac := hmac.New(sha256.New, s.token)
	mac.Write([]byte("sidpin admin page session"))
	return []byte(hex.EncodeToString(mac.Sum(nil)))
}

// cookieAuthorized reports whether the request carries a valid sign-in cookie.
func (s *Server) cookieAuthorized(ctx *fasthttp.RequestCtx) bool {
	c := ctx.Request.Header.Cookie(sessionCookie)
	return len(c) > 0 && subtle.ConstantTimeCompare(c, s.cookieValue()) == 1
}

// login checks a token posted from the sign-in form and sets the cookie.
func (s *Server) login(ctx *fasthttp.RequestCtx) {
	if len(s.token) == 0 || subtle.ConstantTimeCompare(ctx.PostArgs().Peek("token"), s.token) != 1 {
		s.loginPage(ctx, "Wrong token.")
		return
	}
	var c fasthttp.Cookie
	c.SetKey(sessionCookie)
	c.SetValueBytes(s.cookieValue())
	c.SetPath("/")
	c.SetHTTPOnly(true)
	c.SetSameSite(fasthttp.CookieSameSiteStrictMode)
	ctx.Response.Header.SetCookie(&c)
	ctx.Redirect("/", fasthttp.StatusSeeOther)
}

func (s *Server) loginPage(ctx *fasthttp.RequestCtx, msg string) {
	ctx.SetStatusCode(fasthttp.StatusUnauthorized)
	ctx.SetContentType("text/html; charset=utf-8")
	_ = loginTemplate.Execute(ctx, msg)
}

// pageQuery is the pin search of the page.
type pageQuery struct {
	SID, Node, Transport, EIO, Cursor string
}

type pageData struct {
	ConfigFile, Store, Now   string
	Tunnels                  int
	Nodes                    []nodeView
	SessionsError, PinsError string
	Transports               []string
	Query                    pageQuery
	Pins                     []pinView
	Next                     string
}

// page renders the operator page: nodes with their state and sessions, and a searchable pin list.
func (s *Server) page(ctx *fasthttp.RequestCtx) {
	sctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	cfg := s.proxy.Config()
	args := ctx.QueryArgs()
	q := pageQuery{SID: string(args.Peek("sid")), Node: string(args.Peek("node")), Transport: string(args.Peek("transport")),
		EIO: string(args.Peek("eio")), Cursor: string(args.Peek("cursor"))}
	d := pageData{ConfigFile: cfg.File, Store: cfg.Store.Kind, Now: time.Now().UTC().Format(time.RFC3339),
		Tunnels: s.proxy.Tunnels(), Transports: []string{affinity.TransportPolling, affinity.TransportUpgraded, affinity.TransportWebSocket},
		Query: q}
	var err error
	if d.Nodes, err = s.nodeViews(sctx); err != nil {
		d.SessionsError = err.Error()
	}
	d.Pins, d.Next, err = s.searchPins(sctx, q)
	if err != nil {
		d.PinsError = err.Error()
	}
	ctx.SetContentType("text/html; charset=utf-8")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	if err := pageTemplate.Execute(ctx, d); err != nil {
		s.log.Error("admin page", "err", err)
	}
}

// searchPins runs the page's pin search: one sid, or a filtered page of pins.
func (s *Server) searchPins(ctx context.Context, q pageQuery) ([]pinView, string, error) {
	now := time.Now()
	if q.SID != "" {
		pin, ok, err := s.store.Lookup(ctx, strings.TrimSpace(q.SID))
		if err != nil || !ok {
			return nil, "", err
		}
		return []pinView{viewPin(pin, now)}, "", nil
	}
	args := &fasthttp.Args{}
	if pool, node, ok := strings.Cut(q.Node, "/"); ok {
		args.Set("pool", pool)
		args.Set("node", node)
	}
	for k, v := range map[string]string{"transport": q.Transport, "eio": q.EIO, "cursor": q.Cursor} {
		if v != "" {
			args.Set(k, v)
		}
	}
	opts, err := listOptions(args)
	if err != nil {
		return nil, "", err
	}
	page, err := s.store.List(ctx, opts)
	if err != nil {
		return nil, "", err
	}
	pins := make([]pinView, 0, len(page.Pins))
	for _, p := range page.Pins {
		pins = append(pins, viewPin(p, now))
	}
	next := ""
	if page.Next != "" {
		v := url.Values{"node": {q.Node}, "transport": {q.Transport}, "eio": {q.EIO}, "cursor": {page.Next}}
		next = "/?" + v.Encode()
	}
	return pins, next, nil
}

// uiDrain is the page's drain button: drain or undrain, then back to the page.
func (s *Server) uiDrain(ctx *fasthttp.RequestCtx, pool, node string, draining bool) {
	sctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	if s.setDrain(sctx, ctx, pool, node, draining, "the admin page") != nil {
		ctx.Redirect("/", fasthttp.StatusSeeOther)
	}
}

// uiKick is the page's kick button: end the session, then back to the page.
func (s *Server) uiKick(ctx *fasthttp.RequestCtx, sid string) {
	sctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	if _, _, err := s.proxy.Kick(sctx, sid); err != nil {
		writeError(ctx, fasthttp.StatusServiceUnavailable, err.Error())
		return
	}
	s.log.Info("session kicked from the admin page", "sid", sid)
	ctx.Redirect("/", fasthttp.StatusSeeOther)
}
