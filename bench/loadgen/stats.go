package main

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// maxSamplesPerWorker caps the latency samples one worker keeps (counts are never capped).
const maxSamplesPerWorker = 1 << 20

// recorder is one worker's counters; workers never share one, so no locking on the hot path.
type recorder struct {
	count    int64 // successful operations counted for the rate (HTTP requests or round trips)
	extra    int64 // operations not in the rate but relayed by the proxy (handshakes, ping answers)
	errors   int64
	timedOut bool
	lat      []time.Duration
}

func (r *recorder) observe(d time.Duration) {
	r.count++
	if len(r.lat) < maxSamplesPerWorker {
		r.lat = append(r.lat, d)
	}
}

// errorLog prints the first few distinct errors so that a broken run says why.
type errorLog struct {
	mu    sync.Mutex
	seen  map[string]int
	limit int
}

func newErrorLog(limit int) *errorLog { return &errorLog{seen: map[string]int{}, limit: limit} }

func (l *errorLog) add(where string, err error) {
	msg := where + ": " + err.Error()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen[msg]++
	if l.seen[msg] == 1 && len(l.seen) <= l.limit {
		fmt.Fprintln(os.Stderr, "loadgen error:", msg)
	}
}

type summary struct {
	count, extra, errors int64
	timedOut             int
	p50, p90, p99, max   time.Duration
}

func summarize(recs []*recorder) summary {
	var s summary
	var all []time.Duration
	for _, r := range recs {
		s.count += r.count
		s.extra += r.extra
		s.errors += r.errors
		if r.timedOut {
			s.timedOut++
		}
		all = append(all, r.lat...)
	}
	if len(all) > 0 {
		sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
		s.p50 = quantile(all, 0.50)
		s.p90 = quantile(all, 0.90)
		s.p99 = quantile(all, 0.99)
		s.max = all[len(all)-1]
	}
	return s
}

// quantile is the nearest-rank quantile of sorted samples.
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.999999) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/float64(time.Millisecond)) }

// printResult writes the machine-readable line; keys and values never contain spaces.
func printResult(kv ...any) {
	var b strings.Builder
	b.WriteString("RESULT")
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, " %v=%v", kv[i], kv[i+1])
	}
	fmt.Fprintf(&b, " loadgen_cpu_s=%.2f", selfCPU().Seconds())
	fmt.Println(b.String())
}

// selfCPU is the load generator's own user+system CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
