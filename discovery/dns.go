package discovery

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"

	"golang.org/x/net/dns/dnsmessage"
)

// A small DNS client: sidpin asks its resolver itself because Go's resolver does not give the
// records' TTLs, which bound how often a pool is resolved again. It asks one question per exchange,
// over UDP (EDNS0, udpSize bytes), and again over TCP when the answer is truncated.

// udpSize is the UDP payload size sidpin announces: the size DNS flag day 2020 settled on, below
// any path MTU.
const udpSize = 1232

// maxTCPAnswer bounds an answer read over TCP (its length prefix allows 64 KiB).
const maxTCPAnswer = 64 << 10

// record is one answer record sidpin uses.
type record struct {
	addr     netip.Addr // A, AAAA
	target   string     // SRV: the target host, absolute
	port     uint16     // SRV
	priority uint16     // SRV
	weight   uint16     // SRV
	ttl      uint32
}

// errNoName is an answer saying the name does not exist (NXDOMAIN): the next search name is tried.
var errNoName = errors.New("no such name")

// exchange asks server for the records of type qtype at name (absolute) and returns them.
func exchange(ctx context.Context, server string, name string, qtype dnsmessage.Type) ([]record, error) {
	id, query, err := newQuery(name, qtype)
	if err != nil {
		return nil, err
	}
	msg, err := askUDP(ctx, server, id, query)
	if err != nil {
		return nil, err
	}
	recs, truncated, err := parseAnswer(msg, qtype)
	if err != nil || !truncated {
		return recs, err
	}
	if msg, err = askTCP(ctx, server, id, query); err != nil {
		return nil, err
	}
	recs, _, err = parseAnswer(msg, qtype)
	return recs, err
}

// newQuery builds a recursive query with a random ID and an EDNS0 record announcing udpSize.
func newQuery(name string, qtype dnsmessage.Type) (uint16, []byte, error) {
	var idb [2]byte
	_, _ = rand.Read(idb[:])
	id := binary.BigEndian.Uint16(idb[:])
	qname, err := dnsmessage.NewName(name)
	if err != nil {
		return 0, nil, fmt.Errorf("name %q: %w", name, err)
	}
	b := dnsmessage.NewBuilder(make([]byte, 0, 512), dnsmessage.Header{ID: id, RecursionDesired: true})
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return 0, nil, err
	}
	if err := b.Question(dnsmessage.Question{Name: qname, Type: qtype, Class: dnsmessage.ClassINET}); err != nil {
		return 0, nil, err
	}
	if err := b.StartAdditionals(); err != nil {
		return 0, nil, err
	}
	var opt dnsmessage.ResourceHeader
	if err := opt.SetEDNS0(udpSize, dnsmessage.RCodeSuccess, false); err != nil {
		return 0, nil, err
	}
	if err := b.OPTResource(opt, dnsmessage.OPTResource{}); err != nil {
		return 0, nil, err
	}
	msg, err := b.Finish()
	return id, msg, err
}

// askUDP sends query and returns the first answer that carries its ID (others are ignored: a late
// answer to an earlier query, or a spoofing attempt).
func askUDP(ctx context.Context, server string, id uint16, query []byte) ([]byte, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", server)
	if err != nil {
		return nil, fmt.Errorf("resolver %s: %w", server, err)
	}
	defer c.Close()
	setDeadline(ctx, c)
	if _, err := c.Write(query); err != nil {
		return nil, fmt.Errorf("resolver %s: %w", server, err)
	}
	buf := make([]byte, udpSize+512) // room for a server that ignores the announced size (then truncated)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return nil, fmt.Errorf("resolver %s: %w", server, err)
		}
		if n >= 2 && binary.BigEndian.Uint16(buf) == id {
			return buf[:n], nil
		}
	}
}

// askTCP sends query over TCP, as a truncated UDP answer asks.
func askTCP(ctx context.Context, server string, id uint16, query []byte) ([]byte, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", server)
	if err != nil {
		return nil, fmt.Errorf("resolver %s over tcp: %w", server, err)
	}
	defer c.Close()
	setDeadline(ctx, c)
	framed := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(query)), uint16(len(query)))
	if _, err := c.Write(append(framed, query...)); err != nil {
		return nil, fmt.Errorf("resolver %s over tcp: %w", server, err)
	}
	var lb [2]byte
	if _, err := io.ReadFull(c, lb[:]); err != nil {
		return nil, fmt.Errorf("resolver %s over tcp: %w", server, err)
	}
	n := int(binary.BigEndian.Uint16(lb[:]))
	if n > maxTCPAnswer || n < 12 {
		return nil, fmt.Errorf("resolver %s over tcp: an answer of %d bytes", server, n)
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(c, msg); err != nil {
		return nil, fmt.Errorf("resolver %s over tcp: %w", server, err)
	}
	if binary.BigEndian.Uint16(msg) != id {
		return nil, fmt.Errorf("resolver %s over tcp: an answer to another query", server)
	}
	return msg, nil
}

func setDeadline(ctx context.Context, c net.Conn) {
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
}

// parseAnswer reads the records of type qtype in msg's answer section (CNAMEs before them are
// skipped: their targets' records follow). truncated says the answer must be asked again over TCP.
func parseAnswer(msg []byte, qtype dnsmessage.Type) (recs []record, truncated bool, err error) {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	switch {
	case err != nil:
		return nil, false, fmt.Errorf("the resolver's answer: %w", err)
	case !h.Response:
		return nil, false, errors.New("the resolver sent a query, not an answer")
	case h.Truncated:
		return nil, true, nil
	case h.RCode == dnsmessage.RCodeNameError:
		return nil, false, errNoName
	case h.RCode != dnsmessage.RCodeSuccess:
		return nil, false, fmt.Errorf("the resolver answered %s", h.RCode)
	}
	if err := p.SkipAllQuestions(); err != nil {
		return nil, false, fmt.Errorf("the resolver's answer: %w", err)
	}
	for {
		rh, err := p.AnswerHeader()
		if errors.Is(err, dnsmessage.ErrSectionDone) {
			return recs, false, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("the resolver's answer: %w", err)
		}
		r, ok, err := readRecord(&p, rh, qtype)
		if err == nil && !ok {
			err = p.SkipAnswer()
		}
		if err != nil {
			return nil, false, fmt.Errorf("the resolver's answer: %w", err)
		}
		if ok && len(recs) < maxTargets {
			recs = append(recs, r)
		}
	}
}

// readRecord reads the body of the record rh heads when it is of a type sidpin uses.
func readRecord(p *dnsmessage.Parser, rh dnsmessage.ResourceHeader, want dnsmessage.Type) (record, bool, error) {
	r := record{ttl: rh.TTL}
	switch {
	case rh.Class != dnsmessage.ClassINET:
		return r, false, nil
	case rh.Type == dnsmessage.TypeA && want == dnsmessage.TypeA:
		a, err := p.AResource()
		r.addr = netip.AddrFrom4(a.A)
		return r, true, err
	case rh.Type == dnsmessage.TypeAAAA && want == dnsmessage.TypeAAAA:
		a, err := p.AAAAResource()
		r.addr = netip.AddrFrom16(a.AAAA).Unmap()
		return r, true, err
	case rh.Type == dnsmessage.TypeSRV && want == dnsmessage.TypeSRV:
		s, err := p.SRVResource()
		r.target, r.port, r.priority, r.weight = s.Target.String(), s.Port, s.Priority, s.Weight
		return r, true, err
	}
	return r, false, nil
}
