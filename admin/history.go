package admin

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// The page's pictures: the last hour of sessions per node, new sessions per second and "Session ID
// unknown" answers per second, sampled in memory every historyEvery. Bounded: historyLen samples of
// one count per node.
const (
	historyEvery = 5 * time.Second
	historyLen   = int(time.Hour / historyEvery)
)

// sample is one moment of the history.
type sample struct {
	at         time.Time
	sessions   map[string]int // by "pool/node"
	handshakes float64        // per second since the sample before
	unknown    float64
}

// history is the samples, oldest first.
type history struct {
	mu      sync.Mutex
	samples []sample
	lastHS  uint64
	lastUnk uint64
	lastAt  time.Time
}

// runHistory samples until the server's life ends.
func (s *Server) runHistory() {
	t := time.NewTicker(historyEvery)
	defer t.Stop()
	s.takeSample(time.Now())
	for {
		select {
		case <-s.life.Done():
			return
		case now := <-t.C:
			s.takeSample(now)
		}
	}
}

// takeSample adds the sessions per node (from the pin table) and the rates since the last sample.
func (s *Server) takeSample(now time.Time) {
	ctx, cancel := context.WithTimeout(s.life, apiTimeout)
	defer cancel()
	nodes := s.proxy.Nodes().Nodes()
	counted, _ := s.poolCounts(ctx, nodes)
	sessions := map[string]int{}
	for _, n := range nodes {
		sessions[n.Pool+"/"+n.Name] = counted[n.Pool][n.Name]
	}
	hs, unk := s.proxy.Metrics().Totals()
	h := &s.history
	h.mu.Lock()
	defer h.mu.Unlock()
	smp := sample{at: now, sessions: sessions}
	if secs := now.Sub(h.lastAt).Seconds(); !h.lastAt.IsZero() && secs > 0 {
		smp.handshakes = float64(hs-h.lastHS) / secs
		smp.unknown = float64(unk-h.lastUnk) / secs
	}
	h.lastHS, h.lastUnk, h.lastAt = hs, unk, now
	h.samples = append(h.samples, smp)
	if len(h.samples) > historyLen {
		h.samples = slices.Delete(h.samples, 0, len(h.samples)-historyLen)
	}
}

// chart is one picture of the page: series of points in a chartW × chartH box.
type chart struct {
	ID, Title, Unit string
	Max             float64 // the top of the scale
	Series          []series
	Samples         int
	Since           string // how far back the left edge is
}

type series struct {
	Name   string
	Points string // SVG polyline points, "x,y x,y …"
	Color  string
	Last   string
	values []float64
}

const chartW, chartH = 720.0, 120.0

var palette = []string{"#2f6fd6", "#d65a2f", "#2fa06a", "#8e44ad", "#c9a400", "#16a0b5", "#d62f7a", "#6b6b6b"}

// charts draws the history: sessions per node, new sessions/s, unknown-sid answers/s.
func (s *Server) charts() []chart {
	h := &s.history
	h.mu.Lock()
	samples := slices.Clone(h.samples)
	h.mu.Unlock()
	var keys []string
	seen := map[string]bool{}
	for _, smp := range samples {
		for k := range smp.sessions {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	slices.Sort(keys)
	sessions := chart{ID: "chart-sessions", Title: "Sessions per node", Unit: "sessions"}
	for i, k := range keys {
		sessions.Series = append(sessions.Series, line(samples, k, palette[i%len(palette)], func(smp sample) float64 { return float64(smp.sessions[k]) }))
	}
	rates := []chart{
		{ID: "chart-handshakes", Title: "New sessions per second", Unit: "/s",
			Series: []series{line(samples, "new sessions", palette[0], func(smp sample) float64 { return smp.handshakes })}},
		{ID: "chart-unknown", Title: `"Session ID unknown" answers per second`, Unit: "/s",
			Series: []series{line(samples, "unknown sid", palette[1], func(smp sample) float64 { return smp.unknown })}},
	}
	out := append([]chart{sessions}, rates...)
	for i := range out {
		out[i].Samples = len(samples)
		if len(samples) > 0 {
			out[i].Since = time.Since(samples[0].at).Round(time.Second).String()
		}
		scale(&out[i], samples)
	}
	return out
}

// line is one series of the samples' values; draw turns them into points.
func line(samples []sample, name, color string, value func(sample) float64) series {
	vals := make([]float64, len(samples))
	for i, smp := range samples {
		vals[i] = value(smp)
	}
	sr := series{Name: name, Color: color, values: vals}
	if len(vals) > 0 {
		sr.Last = fmt.Sprintf("%.3g", vals[len(vals)-1])
	}
	return sr
}

// scale sets the chart's top to its largest value (at least 1) and draws every series: x over the
// hour's slots (the newest sample at the right edge), y over the top.
func scale(c *chart, samples []sample) {
	c.Max = 1
	for _, sr := range c.Series {
		for _, v := range sr.values {
			c.Max = max(c.Max, v)
		}
	}
	for j := range c.Series {
		var b strings.Builder
		for i, v := range c.Series[j].values {
			x := chartW * float64(historyLen-len(samples)+i) / float64(historyLen-1)
			fmt.Fprintf(&b, "%.1f,%.1f ", x, chartH-chartH*v/c.Max)
		}
		c.Series[j].Points = strings.TrimSpace(b.String())
	}
}
