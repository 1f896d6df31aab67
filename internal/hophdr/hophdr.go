// Package hophdr is the one list of hop-by-hop headers (RFC 9110 §7.6.1), shared by every path that
// forwards a request or an answer: they are meaningful only for one connection and never forwarded.
package hophdr

import "bytes"

// Names are the hop-by-hop headers. Headers named in a Connection header are hop-by-hop too; the
// forwarding code removes those as well.
var Names = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// Is reports whether name is one of Names, without case.
func Is(name []byte) bool {
	for _, n := range Names {
		if bytes.EqualFold(name, []byte(n)) {
			return true
		}
	}
	return false
}
