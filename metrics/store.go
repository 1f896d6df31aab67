package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sidpin/sidpin/affinity"
)

// instrumentedStore times every pin table operation that may do I/O and counts its failures. Touch
// is passed through untimed: it never waits and runs on every request.
type instrumentedStore struct {
	affinity.Store
	ops   map[string]storeOp
	timed bool
}

type storeOp struct {
	latency prometheus.Observer
	errors  prometheus.Counter
}

// InstrumentStore wraps s so that its failures are counted and, when timed, its latency measured.
func (m *Metrics) InstrumentStore(s affinity.Store, timed bool) affinity.Store {
	st := &instrumentedStore{Store: s, ops: map[string]storeOp{}, timed: timed}
	for _, op := range []string{"lookup", "pin", "set_transport", "unpin", "evict", "list", "count", "unpin_node", "set_drain", "drained", "ping"} {
		st.ops[op] = storeOp{latency: m.storeLatency.WithLabelValues(op), errors: m.storeErrors.WithLabelValues(op)}
	}
	return st
}

// begin returns the start time of an operation, or the zero time when the store is not timed.
func (s *instrumentedStore) begin() time.Time {
	if !s.timed {
		return time.Time{}
	}
	return time.Now()
}

// done records one operation that began at start.
func (s *instrumentedStore) done(op string, start time.Time, err error) {
	o := s.ops[op]
	if s.timed {
		o.latency.Observe(time.Since(start).Seconds())
	}
	if err != nil {
		o.errors.Inc()
	}
}

func (s *instrumentedStore) Lookup(ctx context.Context, sid string) (affinity.Pin, bool, error) {
	start := s.begin()
	p, ok, err := s.Store.Lookup(ctx, sid)
	s.done("lookup", start, err)
	return p, ok, err
}

func (s *instrumentedStore) Pin(ctx context.Context, p affinity.Pin) (affinity.Pin, bool, error) {
	start := s.begin()
	cur, created, err := s.Store.Pin(ctx, p)
	s.done("pin", start, err)
	return cur, created, err
}

func (s *instrumentedStore) SetTransport(ctx context.Context, sid, transport string) error {
	start := s.begin()
	err := s.Store.SetTransport(ctx, sid, transport)
	s.done("set_transport", start, err)
	return err
}

func (s *instrumentedStore) Unpin(ctx context.Context, sid string) (bool, error) {
	start := s.begin()
	ok, err := s.Store.Unpin(ctx, sid)
	s.done("unpin", start, err)
	return ok, err
}

func (s *instrumentedStore) Evict(ctx context.Context, sid string) (bool, error) {
	start := s.begin()
	ok, err := s.Store.Evict(ctx, sid)
	s.done("evict", start, err)
	return ok, err
}

func (s *instrumentedStore) List(ctx context.Context, opts affinity.ListOptions) (affinity.Page, error) {
	start := s.begin()
	page, err := s.Store.List(ctx, opts)
	s.done("list", start, err)
	return page, err
}

func (s *instrumentedStore) CountByNode(ctx context.Context, pool string) (map[string]int, error) {
	start := s.begin()
	c, err := s.Store.CountByNode(ctx, pool)
	s.done("count", start, err)
	return c, err
}

func (s *instrumentedStore) UnpinNode(ctx context.Context, pool, node string, each func(string)) (int, error) {
	start := s.begin()
	n, err := s.Store.UnpinNode(ctx, pool, node, each)
	s.done("unpin_node", start, err)
	return n, err
}

func (s *instrumentedStore) SetDrain(ctx context.Context, ref affinity.NodeRef, draining bool) error {
	start := s.begin()
	err := s.Store.SetDrain(ctx, ref, draining)
	s.done("set_drain", start, err)
	return err
}

func (s *instrumentedStore) Drained(ctx context.Context) ([]affinity.NodeRef, error) {
	start := s.begin()
	refs, err := s.Store.Drained(ctx)
	s.done("drained", start, err)
	return refs, err
}

func (s *instrumentedStore) Ping(ctx context.Context) error {
	start := s.begin()
	err := s.Store.Ping(ctx)
	s.done("ping", start, err)
	return err
}
