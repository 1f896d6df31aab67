package discovery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// Spec is what a pool's discovery resolves (configs.Discovery with its defaults applied).
type Spec struct {
	Name     string // A/AAAA records, with Port
	Port     int
	SRV      string // SRV records instead
	Scheme   string // http or https
	Resolver string // ip:port; "" for /etc/resolv.conf's servers
	Interval time.Duration
	Timeout  time.Duration
}

// Target is one node DNS gave.
type Target struct {
	Addr   netip.AddrPort
	Weight int // 1, or an SRV record's weight (1-1000)
}

// ErrNoRecords means the name resolved to no address: the pool keeps the nodes it had.
var ErrNoRecords = errors.New("no address records")

// maxTargets bounds the nodes one name may give a pool.
const maxTargets = 1000

// resolver resolves specs; resolvConf is the file it reads the servers and search domains from.
type resolver struct {
	resolvConf string
}

// resolve returns spec's nodes, sorted, and the smallest TTL of the records that gave them.
func (r resolver) resolve(ctx context.Context, spec Spec) ([]Target, time.Duration, error) {
	rc := readResolvConf(r.resolvConf)
	servers := rc.servers
	if spec.Resolver != "" {
		servers = []string{spec.Resolver}
	}
	name, srv := spec.Name, false
	if spec.SRV != "" {
		name, srv = spec.SRV, true
	}
	var errs []error
	for _, cand := range rc.candidates(name) {
		targets, ttl, err := r.resolveName(ctx, servers, cand, srv, spec.Port)
		switch {
		case err == nil && len(targets) > 0:
			return sortTargets(targets), ttl, nil
		case err == nil || errors.Is(err, errNoName):
			continue // the next search name
		}
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, 0, errors.Join(errs...)
	}
	return nil, 0, fmt.Errorf("%s: %w", name, ErrNoRecords)
}

// resolveName resolves one absolute name, asking each server in turn until one answers.
func (r resolver) resolveName(ctx context.Context, servers []string, name string, srv bool, port int) ([]Target, time.Duration, error) {
	var err error
	for _, server := range servers {
		var targets []Target
		var ttl uint32
		if srv {
			targets, ttl, err = resolveSRV(ctx, server, name)
		} else {
			targets, ttl, err = resolveAddrs(ctx, server, name, uint16(port), 1)
		}
		if err == nil || errors.Is(err, errNoName) {
			return targets, time.Duration(ttl) * time.Second, err
		}
	}
	return nil, 0, err
}

// resolveAddrs asks for name's A and AAAA records. One of the two failing is borne when the other
// gave addresses (a server without IPv6 may refuse AAAA); errNoName when the name does not exist.
func resolveAddrs(ctx context.Context, server, name string, port uint16, weight int) ([]Target, uint32, error) {
	var targets []Target
	var ttl uint32
	var errs []error
	for _, qtype := range []dnsmessage.Type{dnsmessage.TypeA, dnsmessage.TypeAAAA} {
		recs, err := exchange(ctx, server, name, qtype)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, rec := range recs {
			targets = append(targets, Target{Addr: netip.AddrPortFrom(rec.addr, port), Weight: weight})
			ttl = minTTL(ttl, rec.ttl, len(targets) == 1)
		}
	}
	switch {
	case len(targets) > 0 || len(errs) == 0:
		return targets, ttl, nil
	case len(errs) == 2 && errors.Is(errs[0], errNoName) && errors.Is(errs[1], errNoName):
		return nil, 0, errNoName
	}
	return nil, 0, errors.Join(errs...)
}

// resolveSRV asks for name's SRV records, then the addresses of the targets of the lowest priority
// (asked for each: an additional section does not always carry them).
func resolveSRV(ctx context.Context, server, name string) ([]Target, uint32, error) {
	recs, err := exchange(ctx, server, name, dnsmessage.TypeSRV)
	if err != nil || len(recs) == 0 {
		return nil, 0, err
	}
	best := slices.MinFunc(recs, func(a, b record) int { return cmp.Compare(a.priority, b.priority) }).priority
	var targets []Target
	var ttl uint32
	first := true
	for _, rec := range recs {
		if rec.priority != best || rec.target == "." {
			continue
		}
		weight := min(max(int(rec.weight), 1), 1000)
		addrs, attl, err := resolveAddrs(ctx, server, rec.target, rec.port, weight)
		if err != nil {
			return nil, 0, fmt.Errorf("srv target %s: %w", rec.target, err)
		}
		targets = append(targets, addrs...)
		ttl = minTTL(ttl, min(rec.ttl, attl), first)
		first = false
	}
	return targets, ttl, nil
}

func minTTL(cur, ttl uint32, first bool) uint32 {
	if first {
		return ttl
	}
	return min(cur, ttl)
}

// sortTargets orders targets by address and drops repeats (and any beyond maxTargets).
func sortTargets(targets []Target) []Target {
	slices.SortFunc(targets, func(a, b Target) int { return a.Addr.Compare(b.Addr) })
	targets = slices.CompactFunc(targets, func(a, b Target) bool { return a.Addr == b.Addr })
	if len(targets) > maxTargets {
		targets = targets[:maxTargets]
	}
	return targets
}

// NodeName is the name of the node at addr: what every instance derives alike from DNS, so that
// pins in a shared table name the same node. "10.0.0.7:3000" is "10.0.0.7_3000"; "[fd00::7]:3000"
// is "ip6-fd00--7_3000".
func NodeName(addr netip.AddrPort) string {
	a := addr.Addr()
	host := a.String()
	if a.Is6() {
		host = "ip6-" + strings.ReplaceAll(host, ":", "-")
	}
	return host + "_" + fmt.Sprint(addr.Port())
}
