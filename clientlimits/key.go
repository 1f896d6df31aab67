package clientlimits

import (
	"hash/maphash"
	"net/netip"
)

// Key is the address one client is counted under: an IPv4 address (IPv4-mapped IPv6 included) as
// itself, an IPv6 address masked to its first ipv6Prefix bits (a host usually owns a whole /64, so
// counting single IPv6 addresses would let it open a connection per address). The zone is dropped.
// An invalid address gives the zero Addr, which callers never limit: it is not a client's address.
// ipv6Prefix outside 0..128 is clamped.
func Key(a netip.Addr, ipv6Prefix int) netip.Addr {
	if !a.IsValid() {
		return netip.Addr{}
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a
	}
	bits := min(max(ipv6Prefix, 0), 128)
	p, err := a.Prefix(bits) // cannot fail: bits is in range and a is IPv6
	if err != nil {
		return netip.Addr{}
	}
	return p.Addr()
}

// redisName is k as it appears inside a Redis key: "203.0.113.7" or "2001:db8:1:2::/64". The prefix
// length is part of an IPv6 name so that instances configured with different lengths never add up
// counts of different things.
func redisName(k netip.Addr, ipv6Prefix int) string {
	if k.Is4() {
		return k.String()
	}
	return netip.PrefixFrom(k, min(max(ipv6Prefix, 0), 128)).String()
}

// shards is how many locks the address tables are split over: enough that two cores rarely meet
// on one, few enough that a Stats walk is cheap.
const shards = 64

// shardSeed keys the shard choice per process: an attacker who knows the code still cannot pick
// addresses that all land in one shard and fill its share of the table.
var shardSeed = maphash.MakeSeed()

// shardOf picks k's shard.
func shardOf(k netip.Addr) uint8 {
	b := k.As16()
	return uint8(maphash.Bytes(shardSeed, b[:]) % shards)
}
