// Package clientlimits owns limits.per_client: per client address, a cap on concurrent connections
// and a token bucket on new sessions (handshakes), counted across every sidpin instance when they
// share a Redis. It owns the client key (Key: an IPv4 address, or an IPv6 prefix of ipv6_prefix
// bits), the counting listener, both address tables and their Redis keys; it knows nothing of HTTP
// beyond a fixed 429, nor of Engine.IO. The proxy decides when to ask: AllowHandshake only before a
// handshake, the connection cap only when a connection is accepted, so established sessions are
// never refused by these limits.
//
// # Cost and bounds
//
// Accept: a sharded map of counters, one *Conn per connection, no Redis. AllowHandshake: alone, a
// sharded map of GCRA buckets; shared, one Lua round trip (bounded by ~50 ms, see below). Memory
// is decided at New: the connection table holds at most 1.25 × limits.max_connections addresses
// (min 1024); the bucket table at most MaxBucketAddrs. Both are split over 64 locks.
//
// A full connection table (every address in it holding a connection here, which the server's own
// limits.max_connections makes transient) first drops addresses known only from other instances; if
// none is found among a few it lets the connection through uncounted (Stats.ConnsUncounted): memory
// stays bounded and nobody is refused for the table's sake. A full bucket table forgets the bucket
// closest to full among a few it samples (Stats.BucketsEvicted), which gives that address back at
// most its burst early.
//
// # Across instances
//
// Handshake buckets live in Redis (GCRA on Redis's clock, one key per address expiring when the
// bucket is full again): exact across instances while Redis answers.
//
// Connection counts are exact per instance and exchanged, not looked up: every syncEvery (1 s) each
// instance runs one pipeline that publishes its count of every address it holds at least T
// connections of (T = 8, as a browser holds at most 6; half the cap if that is smaller) or published
// before, and reads back the sum of the other instances' counts published within the staleness
// window (3 s), for those addresses and for the ones it learnt other instances hold. One exchange
// carries at most 2000 addresses, the largest counts first (~8 µs of Redis CPU each). An address
// crossing T, then twice its last published count, asks for an early exchange (at most every
// 100 ms). An address's total = this instance's count + the others' last read; a connection is
// refused when the total is at the cap.
//
// Accuracy, for a cap C over N instances:
//   - one instance never holds more than C connections of an address;
//   - counts seen from another instance lag by at most one exchange period plus a round trip (up to
//     ~1 s; ~100 ms plus a round trip while an address climbs past T, 2T, 4T, ... connections), and
//     an instance holding fewer than T of an address's connections does not publish them. So an
//     address can hold C + what it opened on the other instances within that lag + N×(T−1), and never
//     more than N×C (the bound of per-instance tables, reached only by a burst faster than the lag
//     on every instance at once);
//   - connections over the cap that got in are not closed (established connections never are):
//     the surplus lasts as long as the client holds them; only new connections are refused until
//     the total is below C;
//   - an instance that stops without withdrawing (SIGKILL) keeps counting in the others' totals for
//     at most the staleness window plus one period (~4 s); a clean Close withdraws its counts;
//   - instances must use the same ipv6_prefix: the prefix length is part of an IPv6 address's keys.
//
// # When Redis fails
//
// Nothing waits on Redis for more than a few tens of ms and nothing is refused because of it: a
// failed or slow handshake round trip (bounded by 50 ms, given a client with ContextTimeoutEnabled)
// is decided by this instance's own bucket, which is kept in step with the shared one while Redis
// answers, and the next round trips are skipped for 1 s (Stats.RedisFallbacks counts both); at most
// 256 round trips wait at once, more go local. A failed exchange of counts keeps the counts last
// read until they go stale, then each instance caps alone (up to N×C per address).
package clientlimits
