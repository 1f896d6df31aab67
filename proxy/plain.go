package proxy

import (
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/backends"
	"github.com/sidpin/sidpin/upgrade"
)

// servePlain proxies a request that is not Engine.IO (a page, an asset, a health check) to a node.
func (p *Proxy) servePlain(ctx *fasthttp.RequestCtx, pool *backends.Pool) {
	node, err := pool.ChoosePlain()
	if err != nil {
		ctx.Error("sidpin: no chat node is available", fasthttp.StatusServiceUnavailable)
		return
	}
	if isUpgrade(&ctx.Request.Header) {
		p.relayUpgrade(ctx, node, upgrade.Hooks{})
		return
	}
	_ = p.forward(ctx, exchange{node: node, deadline: time.Now().Add(p.cfg().Timeouts.UpstreamResponse.D())})
}
