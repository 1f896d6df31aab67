package admin

import (
	"errors"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/affinity"
)

// pinView is one pin as the API shows it.
type pinView struct {
	SID        string    `json:"sid"`
	Pool       string    `json:"pool"`
	Node       string    `json:"node"`
	Transport  string    `json:"transport"`
	EIO        int       `json:"eio"`
	ClientAddr string    `json:"client_addr"`
	Created    time.Time `json:"created"`
	LastSeen   time.Time `json:"last_seen"`
	ExpiresIn  string    `json:"expires_in"`
}

func viewPin(p affinity.Pin, now time.Time) pinView {
	left := max(0, p.TTL-now.Sub(p.LastSeen)).Round(time.Second)
	return pinView{SID: p.SID, Pool: p.Pool, Node: p.Node, Transport: p.Transport, EIO: p.EIO,
		ClientAddr: p.ClientAddr, Created: p.Created.UTC(), LastSeen: p.LastSeen.UTC(), ExpiresIn: left.String()}
}

// listOptions reads the filters and the page of GET /api/pins.
func listOptions(args *fasthttp.Args) (affinity.ListOptions, error) {
	o := affinity.ListOptions{
		Cursor: string(args.Peek("cursor")), Pool: string(args.Peek("pool")), Node: string(args.Peek("node")),
		Transport: string(args.Peek("transport")),
	}
	if o.Node != "" && o.Pool == "" {
		return o, errors.New("node needs pool")
	}
	switch o.Transport {
	case "", affinity.TransportPolling, affinity.TransportUpgraded, affinity.TransportWebSocket:
	default:
		return o, errors.New("transport must be polling, upgraded or websocket")
	}
	for _, f := range []struct {
		name string
		dst  *int
	}{{"eio", &o.EIO}, {"limit", &o.Limit}} {
		if v := args.Peek(f.name); len(v) > 0 {
			n, err := strconv.Atoi(string(v))
			if err != nil || n < 0 {
				return o, errors.New(f.name + " must be a non-negative number")
			}
			*f.dst = n
		}
	}
	if o.EIO != 0 && o.EIO != 3 && o.EIO != 4 {
		return o, errors.New("eio must be 3 or 4")
	}
	return o, nil
}

func (s *Server) listPins(ctx *fasthttp.RequestCtx) {
	opts, err := listOptions(ctx.QueryArgs())
	if err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, err.Error())
		return
	}
	sctx, cancel := s.requestContext(apiTimeout)
	defer cancel()
	page, err := s.store.List(sctx, opts)
	switch {
	case errors.Is(err, affinity.ErrBadCursor):
		writeError(ctx, fasthttp.StatusBadRequest, "invalid cursor")
		return
	case err != nil:
		writeError(ctx, fasthttp.StatusServiceUnavailable, "pin table: "+err.Error())
		return
	}
	now := time.Now()
	pins := make([]pinView, 0, len(page.Pins))
	for _, p := range page.Pins {
		pins = append(pins, viewPin(p, now))
	}
	writeJSON(ctx, fasthttp.StatusOK, map[string]any{"pins": pins, "next": page.Next})
}

func (s *Server) getPin(ctx *fasthttp.RequestCtx, sid string) {
	sctx, cancel := s.requestContext(apiTimeout)
	defer cancel()
	pin, ok, err := s.store.Lookup(sctx, sid)
	answerPin(ctx, sid, pin, ok, err, func(v pinView) any { return v })
}

// answerPin answers a request about one pin: 503 when the pin table failed, 404 when there is no
// pin, else the pin as wrap presents it.
func answerPin(ctx *fasthttp.RequestCtx, sid string, pin affinity.Pin, ok bool, err error, wrap func(pinView) any) {
	switch {
	case err != nil:
		writeError(ctx, fasthttp.StatusServiceUnavailable, "pin table: "+err.Error())
	case !ok:
		writeError(ctx, fasthttp.StatusNotFound, "no pin for sid "+sid)
	default:
		writeJSON(ctx, fasthttp.StatusOK, wrap(viewPin(pin, time.Now())))
	}
}

func (s *Server) kickPin(ctx *fasthttp.RequestCtx, sid string) {
	sctx, cancel := s.requestContext(apiTimeout)
	defer cancel()
	pin, ok, err := s.proxy.Kick(sctx, sid)
	answerPin(ctx, sid, pin, ok, err, func(v pinView) any { return map[string]any{"kicked": v} })
}
