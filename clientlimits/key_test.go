package clientlimits

import (
	"net/netip"
	"strings"
	"testing"
)

func TestKey(t *testing.T) {
	for _, tc := range []struct {
		in     string
		prefix int
		want   string // "" for the zero Addr
		name   string // its name in Redis keys
	}{
		{"192.0.2.1", 64, "192.0.2.1", "192.0.2.1"},
		{"::ffff:192.0.2.1", 64, "192.0.2.1", "192.0.2.1"}, // IPv4-mapped: the IPv4 address
		{"::ffff:192.0.2.1", 128, "192.0.2.1", "192.0.2.1"},
		{"::ffff:192.0.2.1", 8, "192.0.2.1", "192.0.2.1"}, // the IPv6 prefix never applies to IPv4
		{"2001:db8:1:2:3:4:5:6", 64, "2001:db8:1:2::", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:3:4:5:6", 48, "2001:db8:1::", "2001:db8:1::/48"},
		{"2001:db8:1:2:3:4:5:6", 128, "2001:db8:1:2:3:4:5:6", "2001:db8:1:2:3:4:5:6/128"},
		{"2001:db8:1:2:3:4:5:6", 1, "::", "::/1"},
		{"2001:db8:1:2:3:4:5:6", 0, "::", "::/0"},
		{"2001:db8:1:2:3:4:5:6", -5, "::", "::/0"},                                                        // clamped
		{"2001:db8:1:2:3:4:5:6", 200, "2001:db8:1:2:3:4:5:6", "2001:db8:1:2:3:4:5:6/128"},                 // clamped
		{"fe80::1%eth0", 64, "fe80::", "fe80::/64"},                                                       // zone dropped
		{"::1", 64, "::", "::/64"},                                                                        // loopback is an address too
		{"::ffff:0:1", 64, "0.0.0.1", "0.0.0.1"},                                                          // mapped all the same
		{"64:ff9b::192.0.2.1", 96, "64:ff9b::", "64:ff9b::/96"},                                           // NAT64 is IPv6
		{"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", 63, "2001:db8:ffff:fffe::", "2001:db8:ffff:fffe::/63"}, // odd lengths mask mid-group
	} {
		got := Key(netip.MustParseAddr(tc.in), tc.prefix)
		if got.String() != tc.want {
			t.Errorf("Key(%s, %d) = %s, want %s", tc.in, tc.prefix, got, tc.want)
		}
		if name := redisName(got, tc.prefix); name != tc.name {
			t.Errorf("redisName(Key(%s, %d)) = %s, want %s", tc.in, tc.prefix, name, tc.name)
		}
	}
	if got := Key(netip.Addr{}, 64); got.IsValid() {
		t.Errorf("Key(invalid) = %v, want the zero Addr", got)
	}
}

// FuzzKey: for any address and prefix length, the key is canonical (no zone, never IPv4-mapped),
// idempotent, inside the address's own prefix, and its Redis name parses back to it without braces.
func FuzzKey(f *testing.F) {
	for _, s := range []string{"192.0.2.1", "::ffff:10.0.0.1", "2001:db8::1", "fe80::1%eth0", "::", "::1"} {
		f.Add(s, 64)
	}
	f.Fuzz(func(t *testing.T, s string, prefix int) {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return
		}
		k := Key(a, prefix)
		if !k.IsValid() || k.Zone() != "" || k.Is4In6() {
			t.Fatalf("Key(%s, %d) = %v: not canonical", a, prefix, k)
		}
		if Key(k, prefix) != k || Key(a.Unmap(), prefix) != k {
			t.Fatalf("Key(%s, %d) = %v: not idempotent", a, prefix, k)
		}
		name := redisName(k, prefix)
		if strings.ContainsAny(name, "{}") {
			t.Fatalf("name %q would break the hash tag", name)
		}
		if k.Is4() {
			if k != a.Unmap() || name != k.String() {
				t.Fatalf("IPv4 %s: key %v name %q", a, k, name)
			}
			return
		}
		p, err := netip.ParsePrefix(name)
		if err != nil || p.Addr() != k || p.Masked() != p {
			t.Fatalf("name %q of %v: %v, %v", name, k, p, err)
		}
		if !p.Contains(a.WithZone("")) {
			t.Fatalf("key prefix %v does not hold %s", p, a)
		}
	})
}
