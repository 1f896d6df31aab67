package admin

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/backends"
)

// route dispatches an authorized request. Routes with names in them match the path's segments, each
// unescaped on its own: a sid or a name with an escaped "/" or "?" cannot reach another route.
func route(s *Server, ctx *fasthttp.RequestCtx, path string, c caller) {
	p := segments(path)
	method := string(ctx.Method())
	get, post := method == http.MethodGet, method == http.MethodPost
	switch {
	case path == "/" && get:
		s.page(ctx, c)
	case path == "/logout" && post:
		s.logout(ctx, c)
	case post && len(p) == 5 && p[0] == "ui" && p[1] == "nodes" && (p[4] == "drain" || p[4] == "undrain"):
		s.uiDrain(ctx, p[2], p[3], p[4] == "drain")
	case post && len(p) == 4 && p[0] == "ui" && p[1] == "pins" && p[3] == "kick":
		s.uiKick(ctx, p[2])
	case path == "/metrics" && get:
		s.metrics(ctx)
	case path == "/api/nodes" && get:
		s.listNodes(ctx)
	case path == "/api/pins" && get:
		s.listPins(ctx)
	case get && len(p) == 3 && p[0] == "api" && p[1] == "pins":
		s.getPin(ctx, p[2])
	case method == http.MethodDelete && len(p) == 3 && p[0] == "api" && p[1] == "pins":
		s.kickPin(ctx, p[2])
	case post && len(p) == 5 && p[0] == "api" && p[1] == "nodes" && (p[4] == "drain" || p[4] == "undrain"):
		s.drain(ctx, p[2], p[3], p[4] == "drain")
	default:
		writeError(ctx, fasthttp.StatusNotFound, "no such route: "+method+" "+path)
	}
}

// segments splits a raw path ("/a/b%2Fc") into unescaped segments (["a", "b/c"]); nil when a segment
// is empty or badly escaped, which no route takes.
func segments(raw string) []string {
	parts := strings.Split(strings.TrimPrefix(raw, "/"), "/")
	for i, part := range parts {
		v, err := url.PathUnescape(part)
		if err != nil || v == "" {
			return nil
		}
		parts[i] = v
	}
	return parts
}

// nodeView is one node as GET /api/nodes shows it.
type nodeView struct {
	Pool         string     `json:"pool"`
	Name         string     `json:"name"`
	URL          string     `json:"url"`
	Weight       int        `json:"weight"`
	State        string     `json:"state"`
	Healthy      bool       `json:"healthy"`
	Draining     bool       `json:"draining"`
	Sessions     int        `json:"sessions"`
	LastError    string     `json:"last_error"`
	Changed      *time.Time `json:"changed"` // last flip between up and down; null: never
	StateChanges int64      `json:"state_changes"`
}

func (s *Server) listNodes(ctx *fasthttp.RequestCtx) {
	sctx, cancel := s.requestContext(apiTimeout)
	defer cancel()
	views, err := s.nodeViews(sctx)
	out := map[string]any{"nodes": views}
	if err != nil {
		out["sessions_error"] = err.Error()
	}
	writeJSON(ctx, fasthttp.StatusOK, out)
}

// nodeViews lists every node with its live sessions; err says the counts could not all be read.
func (s *Server) nodeViews(ctx context.Context) ([]nodeView, error) {
	nodes := s.proxy.Nodes().Nodes()
	counts := map[string]map[string]int{}
	views := make([]nodeView, 0, len(nodes))
	var countErr error
	for _, n := range nodes {
		if _, ok := counts[n.Pool]; !ok {
			c, err := s.store.CountByNode(ctx, n.Pool)
			if err != nil {
				countErr = err
			}
			counts[n.Pool] = c
		}
		views = append(views, view(n, counts[n.Pool][n.Name]))
	}
	return views, countErr
}

func view(n *backends.Node, sessions int) nodeView {
	h := n.Health()
	v := nodeView{Pool: n.Pool, Name: n.Name, URL: n.URL, Weight: n.Weight(), State: n.State(),
		Healthy: h.Healthy, Draining: n.Draining(), Sessions: sessions, LastError: h.LastErr,
		StateChanges: n.StateChanges()}
	if !h.Changed.IsZero() {
		changed := h.Changed.UTC()
		v.Changed = &changed
	}
	return v
}

func (s *Server) drain(ctx *fasthttp.RequestCtx, pool, node string, draining bool) {
	sctx, cancel := s.requestContext(apiTimeout)
	defer cancel()
	if n := s.setDrain(sctx, ctx, pool, node, draining, "the admin API"); n != nil {
		counts, _ := s.store.CountByNode(sctx, pool)
		writeJSON(ctx, fasthttp.StatusOK, view(n, counts[node]))
	}
}

// setDrain drains or undrains a node for the API or the page (named by via). It answers the errors
// itself and returns nil after one, else the node.
func (s *Server) setDrain(sctx context.Context, ctx *fasthttp.RequestCtx, pool, node string, draining bool, via string) *backends.Node {
	n := s.proxy.Nodes().Node(pool, node)
	if n == nil {
		writeError(ctx, fasthttp.StatusNotFound, "no node "+node+" in pool "+pool)
		return nil
	}
	if err := s.proxy.SetDrain(sctx, pool, node, draining); err != nil {
		writeError(ctx, fasthttp.StatusServiceUnavailable, "drain mark not stored: "+err.Error())
		return nil
	}
	s.log.Info("node drain set through "+via, "pool", pool, "node", node, "draining", draining)
	return n
}
