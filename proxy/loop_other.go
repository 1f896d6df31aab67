//go:build !linux

package proxy

import (
	"context"
	"net"

	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/backends"
)

// front is Linux-only (epoll); elsewhere every connection is served by fasthttp.
type front struct{}

func newFront(*Proxy, net.Listener) (*front, error) { return nil, nil }

func (*front) serve() error                   { return nil }
func (*front) shutdown(context.Context) error { return nil }
func (*front) cutNode(*backends.Node) int     { return 0 }

func (p *Proxy) backToLoop(*fasthttp.RequestCtx) {}
