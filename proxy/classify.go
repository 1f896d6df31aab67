package proxy

import (
	"bytes"

	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/engineio"
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

// request is the classification of one request, from its path, query and whether it asks for an
// upgrade: nothing else of it.
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
func classify(enginePath string, path []byte, args *fasthttp.Args, upgrade bool) request {
	r := request{upgrade: upgrade}
	if !underEnginePath(enginePath, path) {
		return r
	}
	r.transport = engineio.TransportName(args.Peek("transport"))
	switch string(args.Peek("EIO")) {
	case "3":
		r.eio = 3
	case "4":
		r.eio = 4
	}
	r.jsonp = args.Has("j")
	r.b64 = args.Has("b64")
	sid, count := peekSID(args)
	switch {
	case count == 0:
		r.kind = kindHandshake
	case count > 1 || !validSID(sid):
		r.kind = kindBadSID
	default:
		r.kind, r.sid = kindSession, string(sid)
	}
	return r
}

// peekSID returns the sid value and how many times the key appears, without allocating.
func peekSID(args *fasthttp.Args) (sid []byte, count int) {
	for k, v := range args.All() {
		if string(k) == "sid" {
			sid, count = v, count+1
		}
	}
	return sid, count
}

// isEngineHandshake reports a request that opens an Engine.IO session (a transport is named), as
// opposed to a sid-less request for something else under the Engine.IO path (the client bundle).
func (r request) isEngineHandshake() bool { return r.kind == kindHandshake && r.transport != "" }

func underEnginePath(enginePath string, path []byte) bool {
	if len(path) >= len(enginePath) {
		return string(path[:len(enginePath)]) == enginePath
	}
	return string(path) == enginePath[:len(enginePath)-1]
}

// sidForbidden are the printable characters a sid may not hold: each changes the meaning of a URL or
// of HTML, and a sid is echoed into logs, Redis keys, admin URLs and pages.
const sidForbidden = `/?#%&\<>"'`

// validSID accepts 1-128 printable ASCII bytes, none of them space or sidForbidden. The rule is the
// same for a client's sid and for a node's: a sid that breaks it can never be pinned.
func validSID(sid []byte) bool {
	if len(sid) == 0 || len(sid) > maxSIDLen {
		return false
	}
	for _, c := range sid {
		if c <= ' ' || c >= 0x7f || sidForbiddenByte[c] {
			return false
		}
	}
	return true
}

var sidForbiddenByte = func() (t [128]bool) {
	for i := 0; i < len(sidForbidden); i++ {
		t[sidForbidden[i]] = true
	}
	return t
}()

func isUpgrade(hdr *fasthttp.RequestHeader) bool {
	return hdr.ConnectionUpgrade() && bytes.EqualFold(hdr.Peek(fasthttp.HeaderUpgrade), []byte("websocket"))
}

// inNormalForm reports whether the request target's path is already in the normal form that routing
// sees: sidpin routes on fasthttp's normalised path but forwards the target as the client sent it, so
// the two must agree. A target with a dot segment, an empty segment ("//"), a backslash, or an
// encoded dot, slash or backslash is refused instead: a node could read it differently (Node's
// engine.io matches the raw prefix, so "/socket.io/../x" would open a session sidpin never pinned).
// Only origin-form ("/path") and absolute-form ("http://host/path") targets are accepted.
func inNormalForm(target []byte) bool {
	path, ok := targetPath(target)
	if !ok {
		return false
	}
	for i := 0; i < len(path); i++ {
		switch path[i] {
		case '\\':
			return false
		case '%':
			if i+2 < len(path) && isEncodedSeparator(path[i+1], path[i+2]) {
				return false
			}
		case '/':
			if dotSegmentAt(path[i+1:]) {
				return false
			}
		}
	}
	return true
}

// targetPath cuts the path out of a request target, without its query.
func targetPath(target []byte) ([]byte, bool) {
	if i := bytes.Index(target, []byte("://")); i > 0 && len(target) > 0 && target[0] != '/' {
		rest := target[i+3:]
		slash := bytes.IndexByte(rest, '/')
		if slash < 0 || !isScheme(target[:i]) {
			return nil, false
		}
		target = rest[slash:]
	}
	if len(target) == 0 || target[0] != '/' {
		return nil, false
	}
	if q := bytes.IndexAny(target, "?#"); q >= 0 {
		target = target[:q]
	}
	return target, true
}

func isScheme(s []byte) bool {
	return bytes.EqualFold(s, []byte("http")) || bytes.EqualFold(s, []byte("https"))
}

// isEncodedSeparator reports %2e (.), %2f (/) and %5c (\\), in any case.
func isEncodedSeparator(a, b byte) bool {
	b |= 0x20 // lower case
	return (a == '2' && (b == 'e' || b == 'f')) || (a == '5' && b == 'c')
}

// dotSegmentAt reports whether the segment starting at rest (just after a '/') is empty (another
// '/' follows), "." or "..".
func dotSegmentAt(rest []byte) bool {
	end := bytes.IndexByte(rest, '/')
	if end < 0 {
		end = len(rest)
	}
	seg := rest[:end]
	if len(seg) == 0 {
		return end < len(rest) // "//" is an empty segment; a trailing "/" is fine
	}
	return string(seg) == "." || string(seg) == ".."
}
