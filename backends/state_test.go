package backends

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidpin/sidpin/configs"
)

var errCheck = errors.New("connection refused")

// TestHealthTransitions walks the up/down state machine through check results: "+" a success,
// "-" a failure; want is the state after each result.
func TestHealthTransitions(t *testing.T) {
	cases := []struct {
		name       string
		rise, fall int
		results    string
		want       string // u = up, d = down, one per result
	}{
		{"fall 3 takes three failures", 2, 3, "---", "uud"},
		{"a success resets the failures", 2, 3, "--+--", "uuuuu"},
		{"rise 2 takes two successes", 2, 3, "---++", "uuddu"},
		{"a failure resets the successes", 2, 3, "---+-++", "uuddddu"},
		{"fall 1 and rise 1", 1, 1, "-+-+", "dudu"},
		{"down stays down on failures", 1, 2, "------", "uddddd"},
		{"up stays up on successes", 3, 3, "++++", "uuuu"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var h health
			for i, r := range c.results {
				var err error
				if r == '-' {
					err = errCheck
				}
				flipped := h.observe(err, c.rise, c.fall, time.Now())
				down, _ := h.downSince()
				got := map[bool]byte{true: 'd', false: 'u'}[down]
				if got != c.want[i] {
					t.Fatalf("after result %d (%c): state %c, want %c", i, r, got, c.want[i])
				}
				wasDown := i > 0 && c.want[i-1] == 'd'
				if flipped != (down != wasDown) {
					t.Fatalf("after result %d: flipped=%v but state went %v -> %v", i, flipped, wasDown, down)
				}
			}
		})
	}
}

// recorder collects the changes a manager reports.
type recorder struct {
	mu      sync.Mutex
	changes []Change
}

func (r *recorder) add(c Change) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changes = append(r.changes, c)
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, c := range r.changes {
		s := c.Node.Name + ":" + c.From + ">" + c.To
		if c.EndSessions {
			s += "!"
		}
		out = append(out, s)
	}
	r.changes = nil
	return out
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

func newTestManager(t *testing.T, yaml string) (*Manager, *recorder) {
	t.Helper()
	rec := &recorder{}
	m, err := NewManager(parse(t, yaml), quietLog, rec.add)
	if err != nil {
		t.Fatal(err)
	}
	return m, rec
}

func parse(t *testing.T, yaml string) *configs.Config {
	t.Helper()
	cfg, err := configs.Parse("t.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestNodeStateChanges: every transition between up, draining, down and removed is reported once,
// and only down ends the sessions.
func TestNodeStateChanges(t *testing.T) {
	m, rec := newTestManager(t, `pools: [{name: p, health: {fall: 2, rise: 1}, nodes: [{name: a, url: "http://127.0.0.1:1"}]}]`)
	a := m.Node("p", "a")
	steps := []struct {
		name string
		do   func()
		want string // the reported changes, "" for none
	}{
		{"one failure is not enough", func() { a.ObserveFault(FaultNoAnswer, errCheck) }, ""},
		{"the second takes it down", func() { a.ObserveFault(FaultNoAnswer, errCheck) }, "a:up>down!"},
		{"failures while down say nothing", func() { a.ObserveFault(FaultNoAnswer, errCheck) }, ""},
		{"a passive success does not count as a check", func() { a.ObserveSuccess() }, "a:down>up"},
		{"runtime drain", func() { a.SetRuntimeDrain(true, "t") }, "a:up>draining"},
		{"drain twice says nothing", func() { a.SetRuntimeDrain(true, "t") }, ""},
		{"down while draining", func() { a.observe(errCheck, time.Now()); a.observe(errCheck, time.Now()) }, "a:draining>down!"},
		{"up again: still draining", func() { a.observe(nil, time.Now()) }, "a:down>draining"},
		{"undrain", func() { a.SetRuntimeDrain(false, "t") }, "a:draining>up"},
	}
	for _, s := range steps {
		s.do()
		if got := strings.Join(rec.take(), ","); got != s.want {
			t.Fatalf("%s: changes %q, want %q", s.name, got, s.want)
		}
	}
	if a.StateChanges() != 6 {
		t.Fatalf("state changes counted %d, want 6", a.StateChanges())
	}
}

// TestApplyReload: kept nodes keep their identity and take new settings, new nodes appear, removed
// ones drain or close as their pool says.
func TestApplyReload(t *testing.T) {
	m, rec := newTestManager(t, `pools:
  - name: p
    nodes:
      - {name: a, url: "http://127.0.0.1:1"}
      - {name: b, url: "http://127.0.0.1:2"}
      - {name: c, url: "http://127.0.0.1:3"}
      - {name: d, url: "http://127.0.0.1:4"}
  - name: gone
    match: {host: gone.example}
    nodes: [{name: g, url: "http://127.0.0.1:9"}]
`)
	a, b, c := m.Node("p", "a"), m.Node("p", "b"), m.Node("p", "c")
	ch, err := m.Apply(parse(t, `pools:
  - name: p
    nodes:
      - {name: a, url: "http://127.0.0.1:1", weight: 5}
      - {name: c, url: "http://127.0.0.1:33"}
      - {name: d, url: "http://127.0.0.1:4", drain: true}
      - {name: e, url: "http://127.0.0.1:5"}
`))
	if err != nil {
		t.Fatal(err)
	}
	if m.Node("p", "a") != a || a.Weight() != 5 {
		t.Errorf("a must be kept with weight 5: same=%v weight=%d", m.Node("p", "a") == a, a.Weight())
	}
	if m.Node("p", "b") != b || b.State() != StateRemoved {
		t.Errorf("b (removed, on_node_removed drain) must stay, removed: %v", b.State())
	}
	if n := m.Node("p", "c"); n == c || n.URL != "http://127.0.0.1:33" {
		t.Errorf("c changed its URL: it must be a new node")
	}
	if m.Node("p", "d").State() != StateDraining || m.Node("p", "e") == nil || m.Node("gone", "g") != nil {
		t.Errorf("d draining, e added, pool gone removed: %v %v %v", m.Node("p", "d").State(), m.Node("p", "e"), m.Node("gone", "g"))
	}
	want := Changes{Added: []string{"p/c", "p/e"}, Updated: []string{"p/a", "p/d"}, Draining: []string{"p/b"}, Closed: []string{"gone/g", "p/c"}}
	if strings.Join(ch.Added, ",") != strings.Join(want.Added, ",") || strings.Join(ch.Updated, ",") != strings.Join(want.Updated, ",") ||
		strings.Join(ch.Draining, ",") != strings.Join(want.Draining, ",") || strings.Join(ch.Closed, ",") != strings.Join(want.Closed, ",") {
		t.Errorf("changes %+v, want %+v", ch, want)
	}
	if got := strings.Join(rec.take(), ","); got != "d:up>draining,b:up>removed,g:up>removed!,c:up>removed!" {
		t.Errorf("reported changes %q", got)
	}
	for i := 0; i < 100; i++ {
		if n, err := m.Current().Pool("p").ChoosePlain(); err != nil || n.Name == "b" || n.Name == "d" {
			t.Fatalf("picked %v, %v: removed and draining nodes take no new sessions", n, err)
		}
	}
	m.Forget(b)
	if m.Node("p", "b") != nil {
		t.Error("a forgotten removed node must be gone")
	}
	m.Forget(a) // not removed: ignored
	if m.Node("p", "a") != a {
		t.Error("Forget must ignore a node that is not removed")
	}
}

// TestApplyClosePolicy: on_node_removed: close ends the sessions of a removed node at once.
func TestApplyClosePolicy(t *testing.T) {
	m, rec := newTestManager(t, `pools: [{name: p, on_node_removed: close, nodes: [{name: a, url: "http://127.0.0.1:1"}, {name: b, url: "http://127.0.0.1:2"}]}]`)
	b := m.Node("p", "b")
	if _, err := m.Apply(parse(t, `pools: [{name: p, on_node_removed: close, nodes: [{name: a, url: "http://127.0.0.1:1"}]}]`)); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rec.take(), ","); got != "b:up>removed!" || m.Node("p", "b") != nil {
		t.Fatalf("changes %q, node b %v", got, m.Node("p", "b"))
	}
	// Its cut connections fail the requests held on it: that is no news of its health.
	for i := 0; i < 5; i++ {
		b.ObserveFault(FaultNoAnswer, errCheck)
	}
	if got := rec.take(); len(got) != 0 || !b.Gone() || b.State() != StateRemoved {
		t.Fatalf("a retired node: changes %v, gone %v, state %s", got, b.Gone(), b.State())
	}
}

// TestReaddRemovedNode: a removed node put back in the config before its sessions ended is up again.
func TestReaddRemovedNode(t *testing.T) {
	two := `pools: [{name: p, nodes: [{name: a, url: "http://127.0.0.1:1"}, {name: b, url: "http://127.0.0.1:2"}]}]`
	m, _ := newTestManager(t, two)
	b := m.Node("p", "b")
	if _, err := m.Apply(parse(t, `pools: [{name: p, nodes: [{name: a, url: "http://127.0.0.1:1"}]}]`)); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Apply(parse(t, two)); err != nil {
		t.Fatal(err)
	}
	if m.Node("p", "b") != b || b.State() != StateUp {
		t.Fatalf("b must come back as the same node, up: %v", b.State())
	}
}

// TestActiveChecks runs the checker against a real listener whose answer the test switches.
func TestActiveChecks(t *testing.T) {
	var status atomic.Int32
	status.Store(200)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			w.WriteHeader(404)
			return
		}
		w.WriteHeader(int(status.Load()))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	for _, kind := range []string{"http", "tcp"} {
		t.Run(kind, func(t *testing.T) {
			m, _ := newTestManager(t, `pools: [{name: p, health: {kind: `+kind+`, interval: 20ms, timeout: 20ms, rise: 2, fall: 2}, nodes: [{name: a, url: "http://`+ln.Addr().String()+`"}]}]`)
			ctx, cancel := contextWithCancel(t)
			m.Start(ctx)
			a := m.Node("p", "a")
			if kind == "http" {
				status.Store(503)
				waitState(t, a, StateDown)
				if !strings.Contains(a.Health().LastErr, "status 503") {
					t.Errorf("last error %q", a.Health().LastErr)
				}
				status.Store(200)
				waitState(t, a, StateUp)
				return
			}
			cancel()
			m2, _ := newTestManager(t, `pools: [{name: p, health: {kind: tcp, interval: 20ms, timeout: 20ms, rise: 1, fall: 1}, nodes: [{name: a, url: "http://127.0.0.1:1"}]}]`)
			ctx2, _ := contextWithCancel(t)
			m2.Start(ctx2)
			waitState(t, m2.Node("p", "a"), StateDown)
		})
	}
}

// TestPassiveOnlyRetries: with kind none, a node taken down by failed traffic is tried again after
// the interval.
func TestPassiveOnlyRetries(t *testing.T) {
	m, _ := newTestManager(t, `pools: [{name: p, health: {kind: none, interval: 50ms, fall: 1}, nodes: [{name: a, url: "http://127.0.0.1:1"}]}]`)
	ctx, _ := contextWithCancel(t)
	m.Start(ctx)
	a := m.Node("p", "a")
	a.ObserveFault(FaultRefused, errCheck)
	if a.State() != StateDown {
		t.Fatalf("state %s", a.State())
	}
	waitState(t, a, StateUp)
}

func waitState(t *testing.T, n *Node, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for n.State() != want {
		if time.Now().After(deadline) {
			t.Fatalf("node %s stayed %s, want %s (last error %q)", n.Name, n.State(), want, n.Health().LastErr)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func contextWithCancel(t *testing.T) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx, cancel
}

// TestApplyBuildsThenSwaps: a reload that fails while building changes nothing (a weight of a kept
// node included); one that changes a transport's settings gives the kept node a new transport, and
// one that changes nothing of it keeps the transport with its connections.
func TestApplyBuildsThenSwaps(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, testCAPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	m, _ := newTestManager(t, "pools:\n  - {name: p, nodes: [{name: a, url: \"http://127.0.0.1:1\"}]}\n")
	a := m.Node("p", "a")
	tr := a.transport.Load()
	broken := parse(t, fmt.Sprintf(`pools:
  - {name: p, nodes: [{name: a, url: "http://127.0.0.1:1", weight: 7}]}
  - {name: q, match: {path_prefix: /q/}, engineio_path: /q/socket.io/, tls: {ca_file: %q}, nodes: [{name: b, url: "https://127.0.0.1:2"}]}
`, ca))
	if err := os.Remove(ca); err != nil { // valid when parsed, gone when applied
		t.Fatal(err)
	}
	if _, err := m.Apply(broken); err == nil {
		t.Fatal("a reload whose CA file is gone was applied")
	}
	if a.Weight() != 1 || m.Current().Pool("q") != nil || a.transport.Load() != tr {
		t.Fatalf("a failed reload changed things: weight %d, pool q %v", a.Weight(), m.Current().Pool("q"))
	}
	if _, err := m.Apply(parse(t, "pools:\n  - {name: p, nodes: [{name: a, url: \"http://127.0.0.1:1\", weight: 2}]}\n")); err != nil {
		t.Fatal(err)
	}
	if a.transport.Load() != tr {
		t.Fatal("a reload that changed no transport setting replaced the transport")
	}
	slower := parse(t, "pools:\n  - {name: p, nodes: [{name: a, url: \"http://127.0.0.1:1\"}]}\ntimeouts: {upstream_dial: 7s}\n")
	if _, err := m.Apply(slower); err != nil {
		t.Fatal(err)
	}
	if got := a.transport.Load(); got == tr || got.dialTimeout != 7*time.Second {
		t.Fatal("a new upstream_dial did not reach the kept node's transport")
	}
}

// testCAPEM returns a self-signed CA certificate in PEM.
func testCAPEM(t *testing.T) []byte {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
