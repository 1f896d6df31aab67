package proxy

import (
	"bytes"
	"net/netip"

	"github.com/sidpin/sidpin/configs"
)

// peers are the client listener's peers that speak for clients behind them (configs.Clients),
// parsed once: restart-only fields.
type peers struct {
	proxyProtocol configs.Prefixes // must send a PROXY header
	trusted       configs.Prefixes // their X-Forwarded-For and -Proto are believed
}

func newPeers(c configs.Clients) peers {
	return peers{proxyProtocol: configs.ParsePrefixes(c.ProxyProtocol), trusted: configs.ParsePrefixes(c.TrustedProxies)}
}

// trusts reports whether the X-Forwarded-* headers of a connection from a are believed.
func (ps peers) trusts(a netip.Addr) bool {
	return len(ps.trusted) > 0 && ps.trusted.Contains(a)
}

// clientOf is who a request comes from: the connection's address (the PROXY header's, when one was
// read), or, when that address is a trusted proxy, the last address of X-Forwarded-For that is not
// itself trusted (port 0: a header gives none).
func (ps peers) clientOf(conn netip.AddrPort, xff []byte) netip.AddrPort {
	if !ps.trusts(conn.Addr()) {
		return conn
	}
	client := conn
	for rest := xff; len(rest) > 0; {
		i := bytes.LastIndexByte(rest, ',')
		a, err := netip.ParseAddr(string(bytes.TrimSpace(rest[i+1:])))
		if err != nil {
			break // garbage: the last good address stands
		}
		client = netip.AddrPortFrom(a.Unmap(), 0)
		if !ps.trusted.Contains(a) || i < 0 {
			break
		}
		rest = rest[:i]
	}
	return client
}

// clientString is a client address as pins and logs show it: without a port when it has none.
func clientString(a netip.AddrPort) string {
	if a.Port() == 0 {
		return a.Addr().String()
	}
	return a.String()
}
