package affinity

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-memdb"
)

// The go-memdb schema of the memory store, in one place.
//
// One index only: (pool, node, sid), unique, which memdb requires to be called "id". It orders the
// listings and walks a pool's or a node's pins. Lookups by sid never read memdb: the sharded
// lookupIndex beside it answers them, so a second radix tree keyed by sid would cost memory per pin
// for nothing.
const (
	pinTable  = "pins"
	indexNode = "id"
)

func memSchema() *memdb.DBSchema {
	return &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
		pinTable: {
			Name: pinTable,
			Indexes: map[string]*memdb.IndexSchema{
				indexNode: {Name: indexNode, Unique: true, Indexer: pinKey{}},
			},
		},
	}}
}

// pinKey indexes a record by pool, node and sid, each ended by a zero byte: the key memdb's
// CompoundIndex of three StringFieldIndex makes, built without reflection. FromArgs takes the three
// strings (LowerBound in List).
type pinKey struct{}

// FromObject implements memdb.SingleIndexer.
func (pinKey) FromObject(obj any) (bool, []byte, error) {
	r, ok := obj.(*record)
	if !ok {
		return false, nil, fmt.Errorf("affinity: the pin index takes a *record, not %T", obj)
	}
	return true, appendPinKey(make([]byte, 0, len(r.Pool)+len(r.Node)+len(r.SID)+3), r.Pool, r.Node, r.SID), nil
}

// FromArgs implements memdb.Indexer.
func (pinKey) FromArgs(args ...any) ([]byte, error) {
	var s [3]string
	if len(args) != len(s) {
		return nil, fmt.Errorf("affinity: the pin index takes pool, node and sid, got %d values", len(args))
	}
	for i, a := range args {
		v, ok := a.(string)
		if !ok {
			return nil, fmt.Errorf("affinity: the pin index takes strings, got %T", a)
		}
		s[i] = v
	}
	return appendPinKey(nil, s[0], s[1], s[2]), nil
}

func appendPinKey(b []byte, pool, node, sid string) []byte {
	b = append(append(b, pool...), 0)
	b = append(append(b, node...), 0)
	return append(append(b, sid...), 0)
}

// record is a pin as stored in memdb. memdb keeps objects by pointer and old snapshots may still read
// them, so indexed fields never change after insert; lastSeen and transport are not indexed and change
// atomically, which is how a touch costs no write transaction.
type record struct {
	SID, Pool, Node string // indexed
	eio             int
	clientAddr      string
	created         time.Time
	ttl             time.Duration
	lastSeen        atomic.Int64 // unix nanoseconds
	transport       atomic.Pointer[string]
}

func newRecord(p Pin) *record {
	r := &record{SID: p.SID, Pool: p.Pool, Node: p.Node, eio: p.EIO, clientAddr: p.ClientAddr, created: p.Created, ttl: p.TTL}
	r.lastSeen.Store(p.LastSeen.UnixNano())
	t := p.Transport
	r.transport.Store(&t)
	return r
}

func (r *record) pin() Pin {
	return Pin{
		SID: r.SID, Pool: r.Pool, Node: r.Node, Transport: *r.transport.Load(), EIO: r.eio,
		ClientAddr: r.clientAddr, Created: r.created, LastSeen: time.Unix(0, r.lastSeen.Load()), TTL: r.ttl,
	}
}

func (r *record) expired(now int64) bool { return now-r.lastSeen.Load() > int64(r.ttl) }
