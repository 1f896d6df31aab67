package affinity

import (
	"context"
	"errors"
	"time"
)

// Transport values of a pin, as an operator asks about them.
const (
	TransportPolling   = "polling"   // polling, not (yet) upgraded
	TransportUpgraded  = "upgraded"  // started with polling, now on WebSocket
	TransportWebSocket = "websocket" // WebSocket from the first request
)

// Pin says that an Engine.IO session lives on one node. SID, Pool and Node never change once pinned;
// Transport and LastSeen do.
type Pin struct {
	SID        string
	Pool       string
	Node       string
	Transport  string
	EIO        int
	ClientAddr string
	Created    time.Time
	LastSeen   time.Time
	// TTL is how long the pin lives without traffic (pingInterval + pingTimeout + slack of the session).
	TTL time.Duration
}

// Expired reports whether the pin has seen no traffic for longer than its TTL.
func (p Pin) Expired(now time.Time) bool { return now.Sub(p.LastSeen) > p.TTL }

// ListOptions selects and pages pins. Empty filters match everything.
type ListOptions struct {
	Cursor    string // from Page.Next; "" starts at the beginning
	Limit     int    // pins per page; 0 means DefaultListLimit, capped at MaxListLimit
	Pool      string
	Node      string // only with Pool
	Transport string
	EIO       int
}

// Page is one page of a listing; Next is "" on the last page.
type Page struct {
	Pins []Pin
	Next string
}

// Listing bounds.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

func (o ListOptions) limit() int {
	switch {
	case o.Limit <= 0:
		return DefaultListLimit
	case o.Limit > MaxListLimit:
		return MaxListLimit
	}
	return o.Limit
}

func (o ListOptions) matches(p *Pin) bool {
	return (o.Pool == "" || p.Pool == o.Pool) && (o.Node == "" || p.Node == o.Node) &&
		(o.Transport == "" || p.Transport == o.Transport) && (o.EIO == 0 || p.EIO == o.EIO)
}

// NodeRef names one node of one pool.
type NodeRef struct {
	Pool string `json:"pool"`
	Node string `json:"node"`
}

// TransportCounts is live sessions per node and transport.
type TransportCounts map[NodeRef]map[string]int

// Total is the sessions counted, every node and transport.
func (tc TransportCounts) Total() int {
	n := 0
	for _, byTransport := range tc {
		for _, c := range byTransport {
			n += c
		}
	}
	return n
}

// Errors of a Store.
var (
	ErrFull       = errors.New("affinity: the pin table is full")
	ErrInvalidPin = errors.New("affinity: invalid pin")
	ErrBadCursor  = errors.New("affinity: invalid list cursor")
)

// The pin table comes in two parts, so that a caller depends only on what it uses:
//
//   - PinTable: the sid -> node table itself (lookups, pins, listings, counts, readiness);
//   - ClusterState: what the sidpin instances sharing a table tell each other, beside the pins:
//     drain marks and evictions (an operator's kicks).
//
// Store is both, plus Close for whoever built it. MemoryStore and RedisStore implement Store.
//
// Code that only reads the table (the operator's API, the metrics collector) takes a PinTable; the
// request path, which also drains nodes and kicks sessions, and whoever built the store (to close
// it) take a Store.

// PinTable is the sid -> node table. Implementations are safe for concurrent use.
type PinTable interface {
	// Lookup returns the live pin of sid; ok is false when there is none (never pinned, unpinned or
	// expired). When ok is false and the table still held the pin, expired, pin is that pin (so a
	// caller can tell an expired session from an unknown one); otherwise it is the zero Pin.
	Lookup(ctx context.Context, sid string) (pin Pin, ok bool, err error)
	// LookupNow is Lookup for a caller that must not wait on I/O (an event loop): done is false when
	// the answer needs a round trip (Redis, a sid this instance has not cached), and the caller then
	// calls Lookup where it may wait.
	LookupNow(sid string) (pin Pin, ok, done bool)
	// ReservePin holds room for one new pin before its session is opened on a node, so that a full
	// table refuses a handshake before a node creates a session for nothing; false: no room (memory:
	// max_pins reached; Redis: unreachable with its write-behind full). Every true must be followed by
	// one ReleasePin, once the pin is stored or the handshake failed.
	ReservePin() bool
	// ReleasePin gives back what ReservePin held.
	ReleasePin()
	// Pin stores p unless sid is pinned already. It returns the pin in force and whether p was stored,
	// so two instances racing on one sid agree on the node.
	Pin(ctx context.Context, p Pin) (current Pin, created bool, err error)
	// Touch records traffic of sid, extending its life. It never waits on I/O: refreshes are batched.
	Touch(sid string)
	// SetTransport records the session's transport (upgraded, or WebSocket-first).
	SetTransport(ctx context.Context, sid, transport string) error
	// Unpin removes the pin of sid; ok is false when there was none.
	Unpin(ctx context.Context, sid string) (ok bool, err error)
	// List returns one page of pins in a stable order; pins added during paging may or may not appear,
	// none appears twice.
	List(ctx context.Context, opts ListOptions) (Page, error)
	// CountByNode returns the number of live pins of each node of pool that has any.
	CountByNode(ctx context.Context, pool string) (map[string]int, error)
	// UnpinNode removes every pin of one node (it went down, or a reload removed it) and returns how
	// many it removed; each (may be nil) hears every removed sid.
	UnpinNode(ctx context.Context, pool, node string, each func(sid string)) (int, error)
	// LocalTransportCounts counts live sessions per node and transport as this instance knows them:
	// all of them for the memory table, those this instance routed recently for Redis (its cache).
	LocalTransportCounts() TransportCounts
	// Ping reports whether the table answers (readiness).
	Ping(ctx context.Context) error
}

// ClusterState is what the sidpin instances sharing a pin table tell each other beside the pins.
// With the memory table there is one instance, which hears only itself.
type ClusterState interface {
	// SetDrain marks a node draining, or not, for every sidpin instance sharing the table.
	SetDrain(ctx context.Context, ref NodeRef, draining bool) error
	// Drained returns the nodes marked draining with SetDrain.
	Drained(ctx context.Context) ([]NodeRef, error)
	// Evict unpins sid and tells every instance sharing the table (this one included): each drops
	// what it caches of the pin and calls the functions given to OnEvict, which end what the instance
	// holds of the session (an operator's kick).
	Evict(ctx context.Context, sid string) (ok bool, err error)
	// OnEvict registers fn to hear every evicted sid, from any instance.
	OnEvict(fn func(sid string))
	// SetMigration records a node's paced migration, or its progress, for every instance to see.
	SetMigration(ctx context.Context, m Migration) error
	// Migrations returns the migrations recorded, by pool and node.
	Migrations(ctx context.Context) ([]Migration, error)
	// EndMigration forgets the migration of ref.
	EndMigration(ctx context.Context, ref NodeRef) error
	// Heartbeat records that an instance is alive, with what it holds, for every instance to see.
	Heartbeat(ctx context.Context, in Instance) error
	// Instances returns the instances whose last heartbeat is within maxAge, by ID.
	Instances(ctx context.Context, maxAge time.Duration) ([]Instance, error)
}

// Instance is one sidpin instance as the others see it.
type Instance struct {
	ID       string    `json:"id"`       // host name and listen address
	Tunnels  int       `json:"tunnels"`  // WebSocket tunnels it relays
	Sessions int       `json:"sessions"` // sessions it knows (memory table: all; Redis: those it routed lately)
	Updated  time.Time `json:"updated"`
}

// Migration is a node's paced migration as every instance sees it: the node is drained and its
// sessions are ended Rate per second by the instance that runs it, which writes its progress.
type Migration struct {
	Ref     NodeRef   `json:"-"`
	Rate    float64   `json:"rate"`
	Total   int       `json:"total"` // sessions of the node when it began
	Ended   int       `json:"ended"` // sessions ended by it so far
	Left    int       `json:"left"`  // sessions of the node at the last progress
	Started time.Time `json:"started"`
	Updated time.Time `json:"updated"` // the last progress: a migration whose instance died stops moving
	Done    bool      `json:"done"`
}

// ETA is the time the migration still needs at its rate (0 once done).
func (m Migration) ETA() time.Duration {
	if m.Done || m.Rate <= 0 {
		return 0
	}
	return time.Duration(float64(m.Left) / m.Rate * float64(time.Second))
}

// Store is the whole pin store: the table, the state shared with other instances, and Close for
// whoever built it. Implementations are safe for concurrent use.
type Store interface {
	PinTable
	ClusterState
	// Close stops background work.
	Close() error
}

// Both implementations are whole Stores.
var (
	_ Store = (*MemoryStore)(nil)
	_ Store = (*RedisStore)(nil)
)

// newPin checks a pin about to be stored and dates it: created (unless given) and seen now.
func newPin(p Pin, now time.Time) (Pin, error) {
	if err := validatePin(p); err != nil {
		return Pin{}, err
	}
	if p.Created.IsZero() {
		p.Created = now
	}
	p.LastSeen = now
	return p, nil
}

func validatePin(p Pin) error {
	switch {
	case p.SID == "":
		return errors.Join(ErrInvalidPin, errors.New("empty sid"))
	case p.Pool == "" || p.Node == "":
		return errors.Join(ErrInvalidPin, errors.New("pool and node are required"))
	case p.TTL <= 0:
		return errors.Join(ErrInvalidPin, errors.New("ttl must be positive"))
	}
	return nil
}

// copyCounts copies per-node counts for a caller (the stores keep their own maps).
func copyCounts(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
