package proxy

import (
	"errors"

	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/backends"
	"github.com/sidpin/sidpin/engineio"
	"github.com/sidpin/sidpin/internal/eioanswer"
)

// answerBadRequest answers requests fasthttp could not read, saying which limit they broke.
func answerBadRequest(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		ctx.Error("sidpin: request body larger than limits.max_body_bytes", fasthttp.StatusRequestEntityTooLarge)
	case errors.As(err, &small), errors.Is(err, fasthttp.ErrSmallReadBuffer):
		ctx.Error("sidpin: request headers larger than limits.max_header_bytes", fasthttp.StatusRequestHeaderFieldsTooLarge)
	default:
		ctx.Error("sidpin: malformed request", fasthttp.StatusBadRequest)
	}
}

// answerUnknownSID answers "Session ID unknown" and counts why.
func (p *Proxy) answerUnknownSID(ctx *fasthttp.RequestCtx, pool *backends.Pool, r request, cause string) {
	p.metrics.SessionUnknown(pool.Name, cause)
	writeUnknownSID(ctx, r)
}

// writeUnknownSID answers exactly like an Engine.IO server that does not know the sid: JSON 400 code 1
// (JSONP requests too, as Node does), or a plain-text 400 that closes a WebSocket upgrade.
func writeUnknownSID(ctx *fasthttp.RequestCtx, r request) {
	eioanswer.Write(ctx, engineio.ErrCodeUnknownSID, r.upgrade)
}

// answerUpstreamError answers a request whose node failed, and counts it against the node only when
// the node itself is to blame (backends.ClassifyHTTP).
func (p *Proxy) answerUpstreamError(ctx *fasthttp.RequestCtx, node *backends.Node, err error, handshake bool) {
	ctx.Response.Reset()
	switch {
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout):
		ctx.Error("sidpin: the chat node did not answer in time", fasthttp.StatusGatewayTimeout)
	default:
		ctx.Error("sidpin: the chat node cannot be reached", fasthttp.StatusBadGateway)
	}
	fault := backends.ClassifyHTTP(err, handshake)
	node.ObserveFault(fault, err)
	p.log.Warn("upstream request failed", "pool", node.Pool, "node", node.Name, "fault", fault, "err", err)
}
