package admin

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/backends"
)

// route dispatches an authorized request.
func route(s *Server, ctx *fasthttp.RequestCtx, path string) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	method := string(ctx.Method())
	switch {
	case path == "/" && method == http.MethodGet:
		s.page(ctx)
	case len(parts) == 5 && parts[0] == "ui" && parts[1] == "nodes" && method == http.MethodPost &&
		(parts[4] == "drain" || parts[4] == "undrain"):
		s.uiDrain(ctx, parts[2], parts[3], parts[4] == "drain")
	case len(parts) == 4 && parts[0] == "ui" && parts[1] == "pins" && parts[3] == "kick" && method == http.MethodPost:
		s.uiKick(ctx, parts[2])
	case path == "/readyz" && method == http.MethodGet:
		s.ready(ctx)
	case path == "/metrics" && method == http.MethodGet:
		s.metrics(ctx)
	case path == "/api/nodes" && method == http.MethodGet:
		s.listNodes(ctx)
	case path == "/api/pins" && method == http.MethodGet:
		s.listPins(ctx)
	case len(parts) == 3 && parts[0] == "api" && parts[1] == "pins" && method == http.MethodGet:
		s.getPin(ctx, parts[2])
	case len(parts) == 3 && parts[0] == "api" && parts[1] == "pins" && method == http.MethodDelete:
		s.kickPin(ctx, parts[2])
	case len(parts) == 5 && parts[0] == "api" && parts[1] == "nodes" && method == http.MethodPost &&
		(parts[4] == "drain" || parts[4] == "undrain"):
		s.drain(ctx, parts[2], parts[3], parts[4] == "drain")
	default:
		writeError(ctx, fasthttp.StatusNotFound, "no such route: "+method+" "+path)
	}
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
	sctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
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
	sctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
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
