package proxy_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sidpin/sidpin/affinity"
	"github.com/sidpin/sidpin/backends"
	"github.com/sidpin/sidpin/proxy"
)

// scrape gathers the proxy's metrics as "name{label=value,...}" -> value.
func scrape(t *testing.T, p *proxy.Proxy) map[string]float64 {
	t.Helper()
	families, err := p.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(labels)
			key := f.GetName() + "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.Counter != nil:
				out[key] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[key] = m.GetGauge().GetValue()
			case m.Histogram != nil:
				out[key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// TestMetricsCountWhatHappened drives real sessions through the proxy and reads the metrics back.
func TestMetricsCountWhatHappened(t *testing.T) {
	nodes := []stoppableNode{startStoppableNode(t, "node1"), startStoppableNode(t, "node2")}
	p, base, store := startManagedProxy(t, []string{nodes[0].url, nodes[1].url}, nil)
	onNode := map[string]string{}
	for i := 0; len(onNode) < 2; i++ { // least-sessions puts the second session on the other node
		if i == 10 {
			t.Fatalf("10 sessions all landed on %v", onNode)
		}
		sid, url := openSession(t, base, "4")
		onNode[connectChat(t, url)] = sid
	}
	get(t, base+"/socket.io/?EIO=4&transport=polling&sid=never-pinned")
	get(t, base+"/socket.io/?EIO=4&transport=polling&sid=a&sid=b")
	if _, _, err := store.Pin(context.Background(), affinity.Pin{SID: "short-lived", Pool: "default", Node: "node2",
		Transport: affinity.TransportPolling, EIO: 4, TTL: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	get(t, base+"/socket.io/?EIO=4&transport=polling&sid=short-lived")
	nodes[0].stop()
	waitFor(t, "node1 down", func() bool { return p.Nodes().Node("default", "node1").State() == backends.StateDown })
	get(t, base+"/socket.io/?EIO=4&transport=polling&sid="+onNode["node1"])

	m := scrape(t, p)
	handshakes := m["sidpin_handshakes_total{node=node1,pool=default,transport=polling}"] + m["sidpin_handshakes_total{node=node2,pool=default,transport=polling}"]
	checks := []struct {
		name      string
		got, want float64
	}{
		{"handshakes pinned", handshakes, float64(len(onNode)) + 0},
		{"unknown sid", m["sidpin_session_unknown_total{cause=unknown_sid,pool=default}"], 1},
		{"malformed sid", m["sidpin_session_unknown_total{cause=malformed,pool=default}"], 1},
		{"expired pin", m["sidpin_session_unknown_total{cause=expired,pool=default}"], 1},
		{"node down", m["sidpin_session_unknown_total{cause=node_down,pool=default}"], 1},
		{"node1 went down", m["sidpin_node_state_changes_total{node=node1,pool=default,to=down}"], 1},
		{"node1 state gauge", m["sidpin_node_state{node=node1,pool=default,state=down}"], 1},
		{"node2 sessions (the expired pin counts until swept)", min(1, m["sidpin_sessions{node=node2,pool=default}"]), 1},
		{"node1 sessions purged", m["sidpin_sessions{node=node1,pool=default}"], 0},
		{"session requests answered 4xx", m["sidpin_requests_total{code=4xx,kind=session,pool=default}"], 4},
		{"memory table lookups are not timed", m["sidpin_pin_store_duration_seconds{op=lookup}"], 0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
	if t.Failed() {
		var keys []string
		for k, v := range m {
			if strings.HasPrefix(k, "sidpin_") {
				keys = append(keys, fmt.Sprintf("%s %v", k, v))
			}
		}
		sort.Strings(keys)
		t.Log(strings.Join(keys, "\n"))
	}
}
