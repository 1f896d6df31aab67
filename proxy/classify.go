package proxy

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

// kind is what a request is to the proxy.
type kind int

const (
	kindPlain     kind = iota // not Engine.IO: proxied plainly to a node of the pool
	kindHandshake             // Engine.IO without a sid: a node is picked and the sid learned
	kindSession               // Engine.IO with a sid: goes to the pinned node
	kindBadSID                // a sid that cannot be one (repeated, empty, too long, control bytes)
)

// maxSIDLen bounds a sid; Node's are 20 characters, custom generateId ones are still short.
const maxSIDLen = 128

// request is the classification of one request, from its path, query and headers only.
type request struct {
	kind      kind
	sid       string
	transport string // "polling", "websocket", ... as sent
	eio       int    // 3, 4 or 0 when absent or other
	jsonp     bool
	b64       bool
	upgrade   bool // asks for a WebSocket upgrade
}

// classify looks at one request; enginePath ends with "/" and also matches without it
// ("/socket.io?EIO=4", as clients send it with addTrailingSlash false).
func classify(enginePath string, path []byte, args *fasthttp.Args, hdr *fasthttp.RequestHeader) request {
	r := request{upgrade: isUpgrade(hdr)}
	if !underEnginePath(enginePath, path) {
		return r
	}
	r.transport = string(args.Peek("transport"))
	switch string(args.Peek("EIO")) {
	case "3":
		r.eio = 3
	case "4":
		r.eio = 4
	}
	r.jsonp = args.Has("j")
	r.b64 = args.Has("b64")
	sids := args.PeekMulti("sid")
	switch {
	case len(sids) == 0:
		r.kind = kindHandshake
	case len(sids) > 1 || !validSID(sids[0]):
		r.kind = kindBadSID
	default:
		r.kind, r.sid = kindSession, string(sids[0])
	}
	return r
}

func underEnginePath(enginePath string, path []byte) bool {
	if len(path) >= len(enginePath) {
		return string(path[:len(enginePath)]) == enginePath
	}
	return string(path) == enginePath[:len(enginePath)-1]
}

// validSID accepts 1-128 printable ASCII bytes other than space: a sid is echoed into logs, keys
// and error answers, so nothing else is let through.
func validSID(sid []byte) bool {
	if len(sid) == 0 || len(sid) > maxSIDLen {
		return false
	}
	for _, c := range sid {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

func isUpgrade(hdr *fasthttp.RequestHeader) bool {
	return hdr.ConnectionUpgrade() && bytes.EqualFold(hdr.Peek(fasthttp.HeaderUpgrade), []byte("websocket"))
}
