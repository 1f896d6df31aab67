package clientlimits

import (
	"errors"
	"net"
	"testing"
)

// TestConnectionCap: the cap+1th connection of one address is refused, another address is not,
// closing one frees a slot, and a Conn closed twice releases its count once.
func TestConnectionCap(t *testing.T) {
	const capN = 5
	for _, tc := range []struct {
		name   string
		refuse Refusal
	}{
		{"close", RefuseClose},
		{"429", Refuse429},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := New(limits(capN, 0, 0), nil, nil)
			defer l.Close()
			s := serve(t, l, tc.refuse)
			var held []net.Conn
			for range capN {
				held = append(held, s.mustAccept(t, "127.0.0.2"))
			}
			s.mustRefuse(t, "127.0.0.2", tc.refuse)
			other := s.mustAccept(t, "127.0.0.3")
			defer other.Close()

			held[0].Close()
			held[0].Close() // a second Close must not free a second slot
			if got := l.local(addr("127.0.0.2")); got != capN-1 {
				t.Fatalf("after closing one connection twice, count = %d, want %d", got, capN-1)
			}
			held[0] = s.mustAccept(t, "127.0.0.2")
			s.mustRefuse(t, "127.0.0.2", tc.refuse)

			for _, c := range held {
				c.Close()
			}
			other.Close()
			if st := l.Stats(); st.ConnAddrs != 0 || st.ConnsRefused != 2 {
				t.Fatalf("after closing everything: %+v, want no address left and 2 refusals", st)
			}
		})
	}
}

// TestConnWrapper: the wrapper gives the relay the *net.TCPConn, passes CloseWrite through, and a
// handed-off connection keeps its count until its release runs, once.
func TestConnWrapper(t *testing.T) {
	l := New(limits(2, 0, 0), nil, nil)
	defer l.Close()
	s := serve(t, l, RefuseClose)
	c := s.mustAccept(t, "127.0.0.4").(*Conn)
	if _, ok := c.NetConn().(*net.TCPConn); !ok {
		t.Fatalf("NetConn() is %T, want *net.TCPConn", c.NetConn())
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	if got := c.Addr(); got != addr("127.0.0.4") {
		t.Fatalf("Addr() = %v", got)
	}

	release := c.HandOff()
	c.Close() // the relay closes the wrapper once it holds a duplicate of the descriptor
	if got := l.local(addr("127.0.0.4")); got != 1 {
		t.Fatalf("after HandOff and Close, count = %d, want 1 (still held by the relay)", got)
	}
	release()
	release()
	if got := l.local(addr("127.0.0.4")); got != 0 {
		t.Fatalf("after release twice, count = %d, want 0", got)
	}
	if c.HandOff()(); l.local(addr("127.0.0.4")) != 0 {
		t.Fatal("HandOff after Close released again")
	}
}

// TestCloseWriteUnsupported: a wrapped connection without CloseWrite says so instead of pretending.
func TestCloseWriteUnsupported(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	c := &Conn{Conn: a, t: newConnTable(1, 1, 1)}
	if err := c.CloseWrite(); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("CloseWrite on a pipe: %v, want ErrUnsupported", err)
	}
}

// TestCapOff: with the cap off the listener is returned as it is, and nothing is counted.
func TestCapOff(t *testing.T) {
	l := New(limits(0, 0, 0), nil, nil)
	defer l.Close()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if got := l.Listener(raw, RefuseClose); got != raw {
		t.Fatalf("Listener with the cap off = %T, want the listener itself", got)
	}
	if ok, _ := l.AllowHandshake(t.Context(), addr("127.0.0.1")); !ok {
		t.Fatal("AllowHandshake with the rate off refused")
	}
}

// TestAdmitAddr: the event loop's way in counts like the Listener: the cap+1th connection of an
// address is refused, a release called twice frees one slot, and with the cap off every address
// passes uncounted.
func TestAdmitAddr(t *testing.T) {
	const capN = 3
	l := New(limits(capN, 0, 0), nil, nil)
	defer l.Close()
	var releases []func()
	for range capN {
		release, ok := l.AdmitAddr(addr("127.0.0.5"))
		if !ok {
			t.Fatal("refused under the cap")
		}
		releases = append(releases, release)
	}
	if _, ok := l.AdmitAddr(addr("127.0.0.5")); ok {
		t.Fatal("admitted over the cap")
	}
	releases[0]()
	releases[0]()
	if got := l.local(addr("127.0.0.5")); got != capN-1 {
		t.Fatalf("after one release called twice, count = %d, want %d", got, capN-1)
	}
	for _, release := range releases[1:] {
		release()
	}
	if st := l.Stats(); st.ConnAddrs != 0 || st.ConnsRefused != 1 {
		t.Fatalf("after every release: %+v, want no address left and 1 refusal", st)
	}

	off := New(limits(0, 0, 0), nil, nil)
	defer off.Close()
	for range capN + 1 {
		if release, ok := off.AdmitAddr(addr("127.0.0.5")); !ok || release == nil {
			t.Fatal("the cap is off, yet a connection was refused")
		}
	}
}
