package discovery

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/sidpin/sidpin/internal/testdnsmasq"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// testResolver reads a resolv.conf of the test's own (search domains, ndots; its servers are not
// used: every spec names the dnsmasq).
func testResolver(t *testing.T, content string) resolver {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return resolver{resolvConf: path}
}

func addrs(targets []Target) []string {
	var out []string
	for _, t := range targets {
		out = append(out, t.Addr.String())
	}
	return out
}

const chatHosts = "127.0.0.12 chat.sidpin.test\n127.0.0.11 chat.sidpin.test\n" +
	"127.0.0.21 node-a.sidpin.test\n127.0.0.22 node-b.sidpin.test\n127.0.0.23 node-c.sidpin.test\n"

// TestResolveAgainstDnsmasq: A records of a name with a port, SRV records (the lowest priority's
// targets, with their ports and weights), search domains, and the answers' TTL, from a real dnsmasq.
func TestResolveAgainstDnsmasq(t *testing.T) {
	dns := testdnsmasq.Start(t, chatHosts, testdnsmasq.Options{TTL: 7, SRV: []string{
		"_chat._tcp.sidpin.test,node-a.sidpin.test,3001,0,10",
		"_chat._tcp.sidpin.test,node-b.sidpin.test,3002,0,20",
		"_chat._tcp.sidpin.test,node-c.sidpin.test,3003,1,10", // a backup: not used
	}})
	r := testResolver(t, "nameserver 127.0.0.1\nsearch other.test sidpin.test\noptions ndots:2\n")
	cases := []struct {
		name    string
		spec    Spec
		want    []string
		weights []int
	}{
		{"A records", Spec{Name: "chat.sidpin.test.", Port: 3000}, []string{"127.0.0.11:3000", "127.0.0.12:3000"}, []int{1, 1}},
		{"searched", Spec{Name: "chat", Port: 3000}, []string{"127.0.0.11:3000", "127.0.0.12:3000"}, []int{1, 1}},
		{"SRV", Spec{SRV: "_chat._tcp.sidpin.test"}, []string{"127.0.0.21:3001", "127.0.0.22:3002"}, []int{10, 20}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.Resolver, tc.spec.Timeout = dns.Addr, 2*time.Second
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			got, ttl, err := r.resolve(ctx, tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(addrs(got), tc.want) {
				t.Fatalf("got %v, want %v", addrs(got), tc.want)
			}
			for i, w := range tc.weights {
				if got[i].Weight != w {
					t.Fatalf("weight of %s: %d, want %d", got[i].Addr, got[i].Weight, w)
				}
			}
			if ttl != 7*time.Second {
				t.Fatalf("ttl %v, want the records' 7s", ttl)
			}
		})
	}
	t.Run("no such name", func(t *testing.T) {
		_, _, err := r.resolve(context.Background(), Spec{Name: "nope.sidpin.test.", Port: 1, Resolver: dns.Addr, Timeout: time.Second})
		if !errors.Is(err, ErrNoRecords) {
			t.Fatalf("err %v, want ErrNoRecords", err)
		}
	})
	t.Run("resolver down", func(t *testing.T) {
		dns.Stop()
		defer dns.Start()
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		if _, _, err := r.resolve(ctx, Spec{Name: "chat.sidpin.test.", Port: 1, Resolver: dns.Addr}); err == nil || errors.Is(err, ErrNoRecords) {
			t.Fatalf("err %v, want a failure of the resolver", err)
		}
	})
}

// TestWatcherFollowsDNS: a watched pool's set follows the records (added, removed), a resolver
// outage keeps the set found before, and every resolution is observed.
func TestWatcherFollowsDNS(t *testing.T) {
	dns := testdnsmasq.Start(t, "127.0.0.11 chat.sidpin.test\n", testdnsmasq.Options{})
	changes := make(chan string, 16)
	var mu sync.Mutex
	results := map[bool]int{}
	w := NewWatcher(quiet, func(pool string) { changes <- pool }, func(_ string, err error) {
		mu.Lock()
		results[err == nil]++
		mu.Unlock()
	})
	w.resolver = testResolver(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	spec := Spec{Name: "chat.sidpin.test", Port: 3000, Resolver: dns.Addr, Interval: 50 * time.Millisecond, Timeout: 40 * time.Millisecond}
	w.Set(ctx, map[string]Spec{"chat": spec})
	if got := addrs(w.Targets("chat")); !slices.Equal(got, []string{"127.0.0.11:3000"}) {
		t.Fatalf("after Set: %v", got)
	}
	<-changes
	step := func(what, hosts string, want ...string) {
		t.Helper()
		dns.Hosts(hosts)
		dns.Reload()
		select {
		case <-changes:
		case <-time.After(3 * time.Second):
			t.Fatalf("%s: no change seen", what)
		}
		if got := addrs(w.Targets("chat")); !slices.Equal(got, want) {
			t.Fatalf("%s: %v, want %v", what, got, want)
		}
	}
	step("a node added", "127.0.0.11 chat.sidpin.test\n127.0.0.13 chat.sidpin.test\n", "127.0.0.11:3000", "127.0.0.13:3000")
	step("a node removed", "127.0.0.13 chat.sidpin.test\n", "127.0.0.13:3000")
	dns.Stop()
	time.Sleep(300 * time.Millisecond)
	if got := addrs(w.Targets("chat")); !slices.Equal(got, []string{"127.0.0.13:3000"}) {
		t.Fatalf("during the outage: %v, want the set found before", got)
	}
	dns.Hosts("")
	dns.Start()
	time.Sleep(300 * time.Millisecond)
	if got := addrs(w.Targets("chat")); !slices.Equal(got, []string{"127.0.0.13:3000"}) {
		t.Fatalf("a name without records: %v, want the set found before", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if results[false] == 0 || results[true] < 3 {
		t.Fatalf("resolutions observed: %d ok, %d failed", results[true], results[false])
	}
	select {
	case pool := <-changes:
		t.Fatalf("a change (%s) during an outage or an empty answer", pool)
	default:
	}
}

func TestCandidates(t *testing.T) {
	rc := parseResolvConf([]byte("nameserver 10.96.0.10\nsearch default.svc.cluster.local svc.cluster.local\noptions ndots:5 timeout:1\n"))
	cases := []struct {
		name string
		want []string
	}{
		{"chat.default.svc.cluster.local.", []string{"chat.default.svc.cluster.local."}},
		{"chat", []string{"chat.default.svc.cluster.local.", "chat.svc.cluster.local.", "chat."}},
		{"a.b.c.d.e.f", []string{"a.b.c.d.e.f.", "a.b.c.d.e.f.default.svc.cluster.local.", "a.b.c.d.e.f.svc.cluster.local."}},
	}
	for _, tc := range cases {
		if got := rc.candidates(tc.name); !slices.Equal(got, tc.want) {
			t.Errorf("candidates(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
	if !slices.Equal(rc.servers, []string{"10.96.0.10:53"}) || rc.ndots != 5 {
		t.Fatalf("parsed %+v", rc)
	}
}

func TestNodeName(t *testing.T) {
	cases := map[string]string{
		"10.0.0.7:3000":    "10.0.0.7_3000",
		"[fd00::7]:3000":   "ip6-fd00--7_3000",
		"[::1]:80":         "ip6---1_80",
		"127.0.0.11:65535": "127.0.0.11_65535",
	}
	for in, want := range cases {
		if got := NodeName(netip.MustParseAddrPort(in)); got != want {
			t.Errorf("NodeName(%s) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseResolvConf(f *testing.F) {
	f.Add([]byte("nameserver 10.96.0.10\nsearch default.svc.cluster.local svc.cluster.local\noptions ndots:5\n"))
	f.Add([]byte("nameserver fe80::1%eth0\ndomain example.com\n# comment\n; other\nsearch a b c d e f g h\noptions ndots:-3 ndots:99\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rc := parseResolvConf(b)
		if len(rc.servers) == 0 || len(rc.servers) > maxServers || len(rc.search) > maxSearch || rc.ndots < 0 || rc.ndots > 15 {
			t.Fatalf("out of bounds: %+v", rc)
		}
		for _, s := range rc.servers {
			if _, err := netip.ParseAddrPort(s); err != nil {
				t.Fatalf("server %q: %v", s, err)
			}
		}
		_ = rc.candidates("chat")
	})
}

// answerFor builds a DNS answer to a query of qtype: records of A, AAAA, SRV and CNAME types.
func answerFor(t testing.TB, qtype dnsmessage.Type, truncated bool) []byte {
	name := dnsmessage.MustNewName("chat.sidpin.test.")
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 7, Response: true, Truncated: truncated})
	b.EnableCompression()
	_ = b.StartQuestions()
	_ = b.Question(dnsmessage.Question{Name: name, Type: qtype, Class: dnsmessage.ClassINET})
	_ = b.StartAnswers()
	h := dnsmessage.ResourceHeader{Name: name, Class: dnsmessage.ClassINET, TTL: 30}
	_ = b.CNAMEResource(h, dnsmessage.CNAMEResource{CNAME: name})
	_ = b.AResource(h, dnsmessage.AResource{A: [4]byte{127, 0, 0, 11}})
	_ = b.AAAAResource(h, dnsmessage.AAAAResource{AAAA: [16]byte{0xfd, 15: 1}})
	_ = b.SRVResource(h, dnsmessage.SRVResource{Priority: 0, Weight: 5, Port: 3000, Target: name})
	msg, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestParseAnswer(t *testing.T) {
	for _, qtype := range []dnsmessage.Type{dnsmessage.TypeA, dnsmessage.TypeAAAA, dnsmessage.TypeSRV} {
		recs, truncated, err := parseAnswer(answerFor(t, qtype, false), qtype)
		if err != nil || truncated || len(recs) != 1 || recs[0].ttl != 30 {
			t.Fatalf("%v: %+v %v %v, want one record of the type asked", qtype, recs, truncated, err)
		}
	}
	if _, truncated, err := parseAnswer(answerFor(t, dnsmessage.TypeA, true), dnsmessage.TypeA); !truncated || err != nil {
		t.Fatalf("a truncated answer: %v %v", truncated, err)
	}
}

// FuzzParseAnswer: whatever a resolver sends, parsing it ends with records or an error, within
// maxTargets records.
func FuzzParseAnswer(f *testing.F) {
	for _, qtype := range []dnsmessage.Type{dnsmessage.TypeA, dnsmessage.TypeAAAA, dnsmessage.TypeSRV} {
		f.Add(answerFor(f, qtype, false), uint16(qtype))
	}
	f.Add(answerFor(f, dnsmessage.TypeA, true), uint16(dnsmessage.TypeA))
	f.Fuzz(func(t *testing.T, msg []byte, qtype uint16) {
		recs, _, err := parseAnswer(msg, dnsmessage.Type(qtype))
		if err != nil && len(recs) > 0 {
			t.Fatal("records with an error")
		}
		if len(recs) > maxTargets {
			t.Fatalf("%d records", len(recs))
		}
	})
}
