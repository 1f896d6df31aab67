package clientlimits

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Shared is the Redis side of the limits: one address's handshake bucket and its connection counts
// across every sidpin instance. One Shared serves one Limiter.
//
// Keys (P = the key prefix, A = the client key: "203.0.113.7" or "2001:db8:1:2::/64"):
//
//	P cl:{A}:h   string: the handshake bucket's theoretical arrival time (µs, Redis clock),
//	             expiring when the bucket is full again
//	P cl:{A}:c   hash instance id -> "count:ms" (Redis clock): the instances' published connection
//	             counts, expiring a staleness window after the last publication
//
// The tag {A} keeps one address's keys in one Cluster slot and spreads different addresses.
type Shared struct {
	rdb    redis.UniversalClient
	prefix string
	id     string

	// Tuning; the defaults are in NewShared, tests shorten them.
	syncEvery   time.Duration // connection counts are exchanged this often
	kickGap     time.Duration // and no more often, when an address grows fast
	stale       time.Duration // a published count older than this is ignored
	threshold   int           // an address is published once this instance holds this many of its connections
	maxBatch    int           // addresses in one exchange
	syncTimeout time.Duration // bound of one exchange
	opTimeout   time.Duration // bound of one handshake's round trip
	backoff     time.Duration // after a failed handshake round trip, buckets stay local this long
	maxInFlight int32         // handshake round trips at once; more use the local bucket

	downUntil atomic.Int64 // clock ns: handshake round trips are skipped until then
	inFlight  atomic.Int32
	taken     atomic.Bool // given to a Limiter
}

// NewShared counts across instances in rdb under keyPrefix (e.g. "sidpin:"). instanceID names this
// instance in the shared connection counts and must differ between running instances; "" picks a
// random one (host name, pid and random bytes), which is what a restarted instance should get too.
//
// rdb must bound its calls by their contexts (go-redis ContextTimeoutEnabled: true) and should not
// retry (MaxRetries: -1), as cmd/sidpin configures it: otherwise a hung Redis holds a handshake for
// the client's ReadTimeout instead of opTimeout.
func NewShared(rdb redis.UniversalClient, keyPrefix, instanceID string) *Shared {
	if instanceID == "" {
		instanceID = randomID()
	}
	return &Shared{
		rdb: rdb, prefix: keyPrefix, id: instanceID,
		syncEvery: time.Second, kickGap: 100 * time.Millisecond, stale: 3 * time.Second,
		threshold: 8, maxBatch: 2000, syncTimeout: 500 * time.Millisecond,
		opTimeout: 50 * time.Millisecond, backoff: time.Second, maxInFlight: 256,
	}
}

// InstanceID is the name this instance publishes its counts under.
func (s *Shared) InstanceID() string { return s.id }

func randomID() string {
	host, _ := os.Hostname()
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// contextBound reports whether rdb honours context deadlines on its sockets (unknown types: true).
func contextBound(rdb redis.UniversalClient) bool {
	switch c := rdb.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled
	}
	return true
}

func (s *Shared) bucketKey(name string) string { return s.prefix + "cl:{" + name + "}:h" }
func (s *Shared) countKey(name string) string  { return s.prefix + "cl:{" + name + "}:c" }

// bucketScript is GCRA on Redis's own clock (so instances' clocks never matter): take a token if the
// bucket has one; the key expires when the bucket would be full again. Returns {1, 0} or
// {0, µs until a token}. ARGV: interval between tokens (µs), burst tolerance (burst * interval, µs).
var bucketScript = redis.NewScript(`
redis.replicate_commands() -- writes after TIME: needed before Redis 5, a no-op since
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval, tolerance = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = now
local v = redis.call('GET', KEYS[1])
if v then tat = math.max(tonumber(v) or now, now) end
local nxt = tat + interval
if nxt - now > tolerance then return {0, nxt - now - tolerance} end
redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', math.ceil((nxt - now) / 1000))
return {1, 0}
`)

// countScript publishes this instance's count of one address (0 withdraws it) and returns the sum
// of the other instances' counts published within the staleness window, dropping older ones (a
// killed instance's). ARGV: instance id, count, staleness (ms).
var countScript = redis.NewScript(`
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local stale = tonumber(ARGV[3])
if tonumber(ARGV[2]) > 0 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. string.format('%.0f', now))
  redis.call('PEXPIRE', KEYS[1], stale)
else
  redis.call('HDEL', KEYS[1], ARGV[1])
end
local all = redis.call('HGETALL', KEYS[1])
local sum = 0
for i = 1, #all, 2 do
  if all[i] ~= ARGV[1] then
    local c, at = string.match(all[i + 1], '^(%d+):(%d+)$')
    if c and now - tonumber(at) <= stale then sum = sum + tonumber(c) else redis.call('HDEL', KEYS[1], all[i]) end
  end
end
return sum
`)

// errSkipped says a handshake's round trip was not tried: Redis failed recently, or too many round
// trips are already waiting.
var errSkipped = errors.New("clientlimits: redis skipped (recent failure or too many waiting)")

// take takes a token from the shared bucket named name. now (clock ns) drives the back-off.
func (s *Shared) take(ctx context.Context, name string, b *bucketTable, now int64) (bool, time.Duration, error) {
	if now < s.downUntil.Load() {
		return false, 0, errSkipped
	}
	if s.inFlight.Add(1) > s.maxInFlight {
		s.inFlight.Add(-1)
		return false, 0, errSkipped
	}
	defer s.inFlight.Add(-1)
	octx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	intervalUs := max(1, (b.interval+500)/1000)
	res, err := bucketScript.Run(octx, s.rdb, []string{s.bucketKey(name)}, intervalUs, intervalUs*(b.tolerance/b.interval)).Int64Slice()
	if err == nil && len(res) != 2 {
		err = fmt.Errorf("clientlimits: bucket script returned %d values, want 2", len(res))
	}
	if err != nil {
		if ctx.Err() == nil { // the caller's own end is not Redis's failure
			s.downUntil.Store(now + int64(s.backoff))
		}
		return false, 0, fmt.Errorf("clientlimits: handshake bucket %s: %w", name, err)
	}
	return res[0] == 1, time.Duration(res[1]) * time.Microsecond, nil
}

// exchange publishes items' counts and reads the other instances' back, in one pipeline; items that
// failed are left !ok. The script is loaded once more if Redis lost it (restart, failover).
func (s *Shared) exchange(ctx context.Context, items []syncItem, ipv6Prefix int) error {
	err := s.runExchange(ctx, items, ipv6Prefix)
	if redis.HasErrorPrefix(err, "NOSCRIPT") {
		if lerr := countScript.Load(ctx, s.rdb).Err(); lerr != nil {
			return fmt.Errorf("clientlimits: loading the count script: %w", lerr)
		}
		err = s.runExchange(ctx, items, ipv6Prefix)
	}
	if err != nil {
		return fmt.Errorf("clientlimits: exchanging %d connection counts: %w", len(items), err)
	}
	return nil
}

func (s *Shared) runExchange(ctx context.Context, items []syncItem, ipv6Prefix int) error {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(items))
	staleMs := s.stale.Milliseconds()
	for i := range items {
		key := s.countKey(redisName(items[i].key, ipv6Prefix))
		cmds[i] = countScript.EvalSha(ctx, pipe, []string{key}, s.id, items[i].count, staleMs)
	}
	_, _ = pipe.Exec(ctx) // per command below: some may succeed when a Cluster node fails
	var first error
	for i, c := range cmds {
		n, err := c.Int64()
		if err != nil {
			items[i].ok = false
			first = keepNoScript(first, err)
			continue
		}
		items[i].remote, items[i].ok = int32(min(max(n, 0), math.MaxInt32)), true
	}
	return first
}

// keepNoScript keeps the first error, unless a later one is NOSCRIPT, which exchange must see to reload.
func keepNoScript(first, err error) error {
	if first == nil || redis.HasErrorPrefix(err, "NOSCRIPT") {
		return err
	}
	return first
}
