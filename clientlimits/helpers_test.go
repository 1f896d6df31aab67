package clientlimits

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sidpin/sidpin/configs"
)

// limits is a config with a per-client connection cap and handshake bucket; zero turns one off.
func limits(maxConns int, rate float64, burst int) configs.Limits {
	return configs.Limits{MaxConnections: 10_000, PerClient: configs.PerClient{
		MaxConnections: maxConns, HandshakeRate: rate, HandshakeBurst: burst, IPv6Prefix: 64,
	}}
}

// redisServer is a throwaway redis-server of one test, killed by its own process handle.
// newClient is a client configured as cmd/sidpin configures its own: no retries, contexts bound calls.
func newClient(tb testing.TB, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, ContextTimeoutEnabled: true,
		DialTimeout: 200 * time.Millisecond, ReadTimeout: time.Second, WriteTimeout: time.Second})
	tb.Cleanup(func() { c.Close() })
	return c
}

// fastShared is a Shared with short periods, so that tests of the exchange take a fraction of a second.
func fastShared(rdb redis.UniversalClient, id string) *Shared {
	s := NewShared(rdb, "test:", id)
	s.syncEvery, s.kickGap, s.stale = 100*time.Millisecond, 20*time.Millisecond, 400*time.Millisecond
	return s
}

// server accepts on a Limiter's listener and hands over what it accepted.
type server struct {
	ln       net.Listener
	accepted chan net.Conn
}

func serve(tb testing.TB, l *Limiter, refuse Refusal) *server {
	tb.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &server{ln: l.Listener(raw, refuse), accepted: make(chan net.Conn, 4096)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for { // ends when the listener closes
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			s.accepted <- c
		}
	}()
	tb.Cleanup(func() {
		s.ln.Close()
		<-done
		for len(s.accepted) > 0 {
			(<-s.accepted).Close()
		}
	})
	return s
}

// dial connects from the loopback address src; nil when the server reset the connection before
// the dial returned (a refusal by reset can be that quick).
func (s *server) dial(tb testing.TB, src string) net.Conn {
	tb.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", s.ln.Addr().String())
	if errors.Is(err, syscall.ECONNRESET) {
		return nil
	}
	if err != nil {
		tb.Fatalf("dial from %s: %v", src, err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// outcome of one connection attempt, seen from both ends.
type outcome struct {
	accepted net.Conn // the server's end, when the listener let it through
	answer   string   // what the client read before its connection ended, when refused
}

// attempt dials from src and waits (at most 2 s) until the listener let the connection through, or
// the client saw its connection end.
func (s *server) attempt(tb testing.TB, src string) outcome {
	tb.Helper()
	c := s.dial(tb, src)
	if c == nil {
		return outcome{}
	}
	ended := make(chan string, 1)
	go func() {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		b, err := io.ReadAll(c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return // still open: accepted
		}
		ended <- string(b)
	}()
	select {
	case sc := <-s.accepted:
		_ = c.SetReadDeadline(time.Now()) // end the reader
		return outcome{accepted: sc}
	case ans := <-ended:
		return outcome{answer: ans}
	case <-time.After(2 * time.Second):
		tb.Fatalf("connection from %s neither accepted nor closed within 2s", src)
		return outcome{}
	}
}

// mustAccept and mustRefuse attempt a connection and check its fate.
func (s *server) mustAccept(tb testing.TB, src string) net.Conn {
	tb.Helper()
	o := s.attempt(tb, src)
	if o.accepted == nil {
		tb.Fatalf("connection from %s refused (%q), want accepted", src, o.answer)
	}
	return o.accepted
}

func (s *server) mustRefuse(tb testing.TB, src string, refuse Refusal) {
	tb.Helper()
	o := s.attempt(tb, src)
	if o.accepted != nil {
		o.accepted.Close()
		tb.Fatalf("connection from %s accepted, want refused", src)
	}
	if refuse == Refuse429 && !strings.HasPrefix(o.answer, "HTTP/1.1 429 ") {
		tb.Fatalf("refused connection read %q, want a 429", o.answer)
	}
	if refuse == RefuseClose && o.answer != "" {
		tb.Fatalf("refused connection read %q, want nothing", o.answer)
	}
}

// eventually retries f every 20 ms for at most d; false if f never held.
func eventually(d time.Duration, f func() bool) bool {
	for end := time.Now().Add(d); ; time.Sleep(20 * time.Millisecond) {
		if f() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

// local is this instance's count of k's connections.
func (l *Limiter) local(k netip.Addr) int {
	s := &l.conns.shards[shardOf(k)]
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(s.m[k].local)
}

// remote is what this instance last read of the other instances' counts of k.
func (l *Limiter) remote(k netip.Addr) int {
	s := &l.conns.shards[shardOf(k)]
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(s.m[k].remote)
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }
