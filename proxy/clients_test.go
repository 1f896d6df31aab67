package proxy

import (
	"net/netip"
	"testing"

	"github.com/sidpin/sidpin/configs"
)

func TestClientOf(t *testing.T) {
	ps := newPeers(configs.Clients{TrustedProxies: []string{"10.0.0.0/8", "127.0.0.2"}})
	conn := netip.MustParseAddrPort("10.1.2.3:5000")
	cases := []struct {
		name, conn, xff, want string
		trusted               bool
	}{
		{"untrusted peer: its header is ignored", "192.0.2.7:4000", "203.0.113.9", "192.0.2.7:4000", false},
		{"trusted peer, no header", conn.String(), "", conn.String(), true},
		{"trusted peer names the client", conn.String(), "203.0.113.9", "203.0.113.9:0", true},
		{"the last untrusted address wins", conn.String(), "198.51.100.1, 203.0.113.9, 10.9.9.9", "203.0.113.9:0", true},
		{"a client's forged entries stay left of it", conn.String(), "1.1.1.1,203.0.113.9", "203.0.113.9:0", true},
		{"all trusted: the first", conn.String(), "10.5.5.5, 127.0.0.2", "10.5.5.5:0", true},
		{"garbage: the last good address", conn.String(), "nonsense, 203.0.113.9", "203.0.113.9:0", true},
		{"only garbage: the peer", conn.String(), "nonsense", conn.String(), true},
		{"ipv4-mapped", conn.String(), "::ffff:203.0.113.9", "203.0.113.9:0", true},
	}
	for _, tc := range cases {
		conn := netip.MustParseAddrPort(tc.conn)
		got, trusted := ps.clientOf(conn, []byte(tc.xff)), ps.trusts(conn.Addr())
		if got.String() != tc.want || trusted != tc.trusted {
			t.Errorf("%s: %s %v, want %s %v", tc.name, got, trusted, tc.want, tc.trusted)
		}
	}
}
