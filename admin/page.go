package admin

import (
	"context"
	"embed"
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
	// seg path-escapes a value put into a URL path: a sid such as "../nodes/chat/n1/drain?" must stay one
	// segment of its own route, not become a path to another.
	pageTemplate = template.Must(template.New("page.html").Funcs(template.FuncMap{"seg": url.PathEscape}).
		ParseFS(webFiles, "web/page.html"))
)

// pageQuery is the pin search of the page.
type pageQuery struct {
	SID, Node, Transport, EIO, Cursor string
}

type pageData struct {
	CSRF                     string // the session's CSRF token, a hidden field of every form that posts
	SignOut                  bool   // a sign-out button: there is a token to sign in with again
	ConfigFile, Store, Now   string
	Tunnels                  int
	Nodes                    []nodeView
	SessionsError, PinsError string
	Transports               []string
	Query                    pageQuery
	Pins                     []pinView
	Next                     string
	Charts                   []chart
	Instances                []affinity.Instance
	InstancesError           string
	Paused                   bool   // ?pause=1: the page does not refresh itself
	Refresh                  int    // seconds between refreshes
	ToggleURL                string // the same page, paused or refreshing the other way
}

// pageRefresh is how often the page refreshes itself (unless paused).
const pageRefresh = 5

// page renders the operator page: nodes with their state and sessions, and a searchable pin list.
// Without a token there is no sign-in, but the page's buttons still need a session for their CSRF
// token: the page starts one.
func (s *Server) page(ctx *fasthttp.RequestCtx, c caller) {
	if c.open && !c.signedIn {
		c.session, c.signedIn = s.startSession(ctx), true
	}
	sctx, cancel := s.requestContext(apiTimeout)
	defer cancel()
	cfg := s.proxy.Config()
	args := ctx.QueryArgs()
	q := pageQuery{SID: string(args.Peek("sid")), Node: string(args.Peek("node")), Transport: string(args.Peek("transport")),
		EIO: string(args.Peek("eio")), Cursor: string(args.Peek("cursor"))}
	d := pageData{ConfigFile: cfg.File, Store: cfg.Store.Kind, Now: time.Now().UTC().Format(time.RFC3339),
		Tunnels: s.proxy.Tunnels(), Transports: []string{affinity.TransportPolling, affinity.TransportUpgraded, affinity.TransportWebSocket},
		Query: q, CSRF: c.session.csrf, SignOut: c.signedIn && !c.open}
	var err error
	if d.Nodes, err = s.nodeViews(sctx); err != nil {
		d.SessionsError = err.Error()
	}
	setShares(d.Nodes)
	if d.Instances, err = s.proxy.Instances(sctx); err != nil {
		d.InstancesError = err.Error()
	}
	d.Charts, d.Refresh = s.charts(), pageRefresh
	d.Paused, d.ToggleURL = toggle(ctx)
	d.Pins, d.Next, err = s.searchPins(sctx, q)
	if err != nil {
		d.PinsError = err.Error()
	}
	setPageHeaders(ctx)
	if err := pageTemplate.Execute(ctx, d); err != nil {
		s.log.Error("admin page", "err", err)
	}
}

// toggle reads whether the page is paused, and the URL of the same page the other way.
func toggle(ctx *fasthttp.RequestCtx) (paused bool, url string) {
	args := &fasthttp.Args{}
	ctx.QueryArgs().CopyTo(args)
	paused = string(args.Peek("pause")) == "1"
	if paused {
		args.Del("pause")
	} else {
		args.Set("pause", "1")
	}
	if args.Len() == 0 {
		return paused, "/"
	}
	return paused, "/?" + args.String()
}

// setShares sets each node's share of its pool's sessions, in percent.
func setShares(nodes []nodeView) {
	total := map[string]int{}
	for _, n := range nodes {
		total[n.Pool] += n.Sessions
	}
	for i := range nodes {
		if t := total[nodes[i].Pool]; t > 0 {
			nodes[i].SharePct = 100 * float64(nodes[i].Sessions) / float64(t)
		}
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
	sctx, cancel := s.requestContext(apiTimeout)
	defer cancel()
	if s.setDrain(sctx, ctx, pool, node, draining, "the admin page") != nil {
		ctx.Redirect("/", fasthttp.StatusSeeOther)
	}
}

// uiMigrate is the page's migrate button: start the migration at the form's rate, then back to the page.
func (s *Server) uiMigrate(ctx *fasthttp.RequestCtx, pool, node string) {
	rate, ok := migrateRate(ctx)
	if !ok {
		writeError(ctx, fasthttp.StatusBadRequest, "rate: sessions per second, a number above 0")
		return
	}
	if _, ok := s.startMigration(ctx, pool, node, rate, "the admin page"); ok {
		ctx.Redirect("/", fasthttp.StatusSeeOther)
	}
}

// uiKick is the page's kick button: end the session, then back to the page.
func (s *Server) uiKick(ctx *fasthttp.RequestCtx, sid string) {
	sctx, cancel := s.requestContext(apiTimeout)
	defer cancel()
	if _, _, err := s.proxy.Kick(sctx, sid); err != nil {
		writeError(ctx, fasthttp.StatusServiceUnavailable, err.Error())
		return
	}
	s.log.Info("session kicked from the admin page", "sid", sid)
	ctx.Redirect("/", fasthttp.StatusSeeOther)
}
