package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/affinity"
	"github.com/sidpin/sidpin/backends"
	"github.com/sidpin/sidpin/proxy"
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
	case post && len(p) == 5 && p[0] == "ui" && p[1] == "nodes" && p[4] == "migrate":
		s.uiMigrate(ctx, p[2], p[3])
	case post && len(p) == 4 && p[0] == "ui" && p[1] == "pins" && p[3] == "kick":
		s.uiKick(ctx, p[2])
	case path == "/metrics" && get:
		s.metrics(ctx)
	case path == "/api/nodes" && get:
		s.listNodes(ctx)
	case path == "/api/instances" && get:
		s.listInstances(ctx)
	case path == "/api/pins" && get:
		s.listPins(ctx)
	case get && len(p) == 3 && p[0] == "api" && p[1] == "pins":
		s.getPin(ctx, p[2])
	case method == http.MethodDelete && len(p) == 3 && p[0] == "api" && p[1] == "pins":
		s.kickPin(ctx, p[2])
	case post && len(p) == 5 && p[0] == "api" && p[1] == "nodes" && (p[4] == "drain" || p[4] == "undrain"):
		s.drain(ctx, p[2], p[3], p[4] == "drain")
	case post && len(p) == 5 && p[0] == "api" && p[1] == "nodes" && p[4] == "migrate":
		s.migrate(ctx, p[2], p[3])
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
	// Migration is the node's paced migration, as recorded by the instance running it; null: none.
	Migration *migrationView `json:"migration"`
	// SafeToRemove: the node takes no new sessions (draining or removed) and has none left.
	SafeToRemove bool `json:"safe_to_remove"`
	// SharePct is the node's share of its pool's sessions (the page's bar), not in the API.
	SharePct float64 `json:"-"`
}

// migrationView is a node's migration in GET /api/nodes.
type migrationView struct {
	affinity.Migration
	ETASeconds float64 `json:"eta_seconds"` // left / rate; 0 once done
	Stalled    bool    `json:"stalled"`     // no progress written for stallAfter: its instance may be gone
}

// stallAfter is how long a running migration may go without writing progress before it shows stalled.
const stallAfter = 10 * time.Second

func newMigrationView(m affinity.Migration, now time.Time) *migrationView {
	return &migrationView{Migration: m, ETASeconds: m.ETA().Seconds(), Stalled: !m.Done && now.Sub(m.Updated) > stallAfter}
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
	views := make([]nodeView, 0, len(nodes))
	migrations := map[affinity.NodeRef]affinity.Migration{}
	ms, countErr := s.proxy.Migrations(ctx)
	for _, m := range ms {
		migrations[m.Ref] = m
	}
	counts, err := s.poolCounts(ctx, nodes)
	if err != nil {
		countErr = err
	}
	for _, n := range nodes {
		v := view(n, counts[n.Pool][n.Name])
		if counts[n.Pool] == nil {
			v.SafeToRemove = false // its sessions could not be counted
		}
		if m, ok := migrations[affinity.NodeRef{Pool: n.Pool, Node: n.Name}]; ok {
			v.Migration = newMigrationView(m, time.Now())
		}
		views = append(views, v)
	}
	return views, countErr
}

// poolCounts reads the live sessions per node of every pool of nodes, one count per pool; a pool
// whose count failed has none (nil), and the last failure is returned.
func (s *Server) poolCounts(ctx context.Context, nodes []*backends.Node) (map[string]map[string]int, error) {
	counts := map[string]map[string]int{}
	var lastErr error
	for _, n := range nodes {
		if _, ok := counts[n.Pool]; !ok {
			c, err := s.store.CountByNode(ctx, n.Pool)
			if err != nil {
				lastErr = err
			}
			counts[n.Pool] = c
		}
	}
	return counts, lastErr
}

func view(n *backends.Node, sessions int) nodeView {
	h := n.Health()
	v := nodeView{Pool: n.Pool, Name: n.Name, URL: n.URL, Weight: n.Weight(), State: n.State(),
		Healthy: h.Healthy, Draining: n.Draining(), Sessions: sessions, LastError: h.LastErr,
		StateChanges: n.StateChanges()}
	v.SafeToRemove = sessions == 0 && (v.Draining || v.State == backends.StateRemoved)
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

// listInstances lists the sidpin instances alive (their heartbeats in the pin store; with the memory
// table, this one).
func (s *Server) listInstances(ctx *fasthttp.RequestCtx) {
	sctx, cancel := s.requestContext(apiTimeout)
	defer cancel()
	ins, err := s.proxy.Instances(sctx)
	if err != nil {
		writeError(ctx, fasthttp.StatusServiceUnavailable, "instances unavailable: "+err.Error())
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, map[string]any{"instances": ins})
}

// migrate starts the paced migration of a node: rate sessions per second, from the query (?rate=) or
// a JSON body {"rate": N}.
func (s *Server) migrate(ctx *fasthttp.RequestCtx, pool, node string) {
	rate, ok := migrateRate(ctx)
	if !ok {
		writeError(ctx, fasthttp.StatusBadRequest, "rate: sessions per second, a number above 0 (?rate=100 or {\"rate\": 100})")
		return
	}
	if m, ok := s.startMigration(ctx, pool, node, rate, "the admin API"); ok {
		writeJSON(ctx, fasthttp.StatusAccepted, newMigrationView(m, time.Now()))
	}
}

// migrateRate reads the rate of a migrate request.
func migrateRate(ctx *fasthttp.RequestCtx) (float64, bool) {
	raw := string(ctx.QueryArgs().Peek("rate"))
	if raw == "" {
		raw = string(ctx.PostArgs().Peek("rate")) // the page's form
	}
	if raw == "" && len(ctx.PostBody()) > 0 {
		var body struct {
			Rate float64 `json:"rate"`
		}
		if json.Unmarshal(ctx.PostBody(), &body) != nil {
			return 0, false
		}
		return body.Rate, body.Rate > 0
	}
	rate, err := strconv.ParseFloat(raw, 64)
	return rate, err == nil && rate > 0
}

// startMigration starts a migration for the API or the page (named by via), answering its errors.
func (s *Server) startMigration(ctx *fasthttp.RequestCtx, pool, node string, rate float64, via string) (affinity.Migration, bool) {
	sctx, cancel := s.requestContext(apiTimeout)
	defer cancel()
	m, err := s.proxy.Migrate(sctx, pool, node, rate)
	switch {
	case errors.Is(err, proxy.ErrNoSuchNode):
		writeError(ctx, fasthttp.StatusNotFound, "no node "+node+" in pool "+pool)
		return m, false
	case errors.Is(err, proxy.ErrBadRate):
		writeError(ctx, fasthttp.StatusBadRequest, err.Error())
		return m, false
	case err != nil:
		writeError(ctx, fasthttp.StatusServiceUnavailable, "migration not started: "+err.Error())
		return m, false
	}
	s.log.Info("node migration started through "+via, "pool", pool, "node", node, "rate", rate, "sessions", m.Total)
	return m, true
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
