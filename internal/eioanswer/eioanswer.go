// Package eioanswer writes Engine.IO's error answers on a fasthttp response. The chat node and the
// proxy (which answers unknown sids itself) must answer byte for byte like an Engine.IO server, so
// both use this one writer; package engineio stays free of HTTP.
package eioanswer

import (
	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/engineio"
)

// Write answers like Node's engine.io: JSON {"code","message"}, 403 for Forbidden, else 400. A refused
// WebSocket upgrade gets a plain-text 400 with the message and the connection closed, as Node writes it.
func Write(ctx *fasthttp.RequestCtx, code int, upgrade bool) {
	if upgrade {
		ctx.SetStatusCode(fasthttp.StatusBadRequest)
		ctx.SetContentType("text/html")
		ctx.SetConnectionClose()
		ctx.SetBodyString(engineio.ErrorMessage(code))
		return
	}
	ctx.SetStatusCode(engineio.ErrorStatus(code))
	ctx.SetContentType("application/json")
	ctx.SetBody(engineio.ErrorBody(code))
}
