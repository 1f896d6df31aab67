package affinity

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The Redis key layout (P = the configured prefix):
//
//	P p:<sid>                  string "pool␟node␟transport␟eio␟client␟createdMs␟ttlMs", expiring with the pin
//	P n:{<pool>␟<node>}:e      sorted set sid -> expiry (ms): live sessions per node, for balancing
//	P n:{<pool>␟<node>}:l      sorted set sid -> 0: the node's sids in order, for cursor listings
//	P nodes                    set of "pool␟node" that ever had a pin
//	P drained                  set of "pool␟node" marked draining at runtime
//	P epoch                    written once per dataset: gone or changed means Redis lost its data
//	P evict                    pub/sub channel of evicted sids (kicks), heard by every instance
//
// Sid keys carry no hash tag, so they spread over a Cluster; a node's two sets share one tag. The sets
// are kept best effort beside the sid keys (no cross-slot transactions): the sid key is the truth.

// sep separates the fields of a pin value and the pool from the node in a node's name.
const sep = "\x1f"

func (s *RedisStore) sidKey(sid string) string { return s.prefix + "p:" + sid }
func (s *RedisStore) nodeKey(pool, node, kind string) string {
	return s.prefix + "n:{" + pool + sep + node + "}:" + kind
}
func (s *RedisStore) nodesKey() string      { return s.prefix + "nodes" }
func (s *RedisStore) epochKey() string      { return s.prefix + "epoch" }
func (s *RedisStore) drainedKey() string    { return s.prefix + "drained" }
func (s *RedisStore) migrationsKey() string { return s.prefix + "migrations" }
func (s *RedisStore) instancesKey() string  { return s.prefix + "instances" }
func (s *RedisStore) evictChannel() string  { return s.prefix + "evict" }

// nodeMember is a node's member of the nodes and drained sets: "pool␟node".
func nodeMember(pool, node string) string { return pool + sep + node }

// parseNodeMember splits a member of the nodes or drained sets; ok is false for anything else.
func parseNodeMember(m string) (pool, node string, ok bool) { return strings.Cut(m, sep) }

func encodePin(p Pin) string {
	return strings.Join([]string{p.Pool, p.Node, p.Transport, strconv.Itoa(p.EIO), p.ClientAddr,
		strconv.FormatInt(p.Created.UnixMilli(), 10), strconv.FormatInt(p.TTL.Milliseconds(), 10)}, sep)
}

// decodePin reads a pin value; LastSeen is left for the caller, who knows the key's lifetime.
func decodePin(sid, v string) (Pin, error) {
	f := strings.Split(v, sep)
	if len(f) != 7 {
		return Pin{}, fmt.Errorf("affinity: malformed pin value for %q", sid)
	}
	eio, _ := strconv.Atoi(f[3])
	created, _ := strconv.ParseInt(f[5], 10, 64)
	ttl, _ := strconv.ParseInt(f[6], 10, 64)
	return Pin{SID: sid, Pool: f[0], Node: f[1], Transport: f[2], EIO: eio, ClientAddr: f[4],
		Created: time.UnixMilli(created), TTL: time.Duration(ttl) * time.Millisecond}, nil
}

// setTransport replaces the transport field (the third) of a pin value and keeps the key's lifetime.
// The fields are split with a plain find: Lua 5.1's gmatch with a pattern that can match empty also
// yields an empty match after every field, which shifted them.
var setTransport = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local f, i = {}, 1
while true do
  local j = string.find(v, '\31', i, true)
  if not j then table.insert(f, string.sub(v, i)) break end
  table.insert(f, string.sub(v, i, j - 1))
  i = j + 1
end
if #f ~= 7 then return redis.error_reply('malformed pin value') end
f[3] = ARGV[1]
redis.call('SET', KEYS[1], table.concat(f, '\31'), 'KEEPTTL')
return 1`)
