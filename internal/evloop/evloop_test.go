//go:build linux

package evloop

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func startLoop(t *testing.T) *Loop {
	t.Helper()
	l, err := New()
	if err != nil {
		t.Fatal(err)
	}
	go l.Run()
	t.Cleanup(l.Close)
	return l
}

// recorder is a handler that reads what arrives and reports it.
type recorder struct {
	l   *Loop
	fd  int
	got chan string
}

func (r *recorder) Event(ev uint32) {
	for {
		n, errno := Read(r.fd, r.l.Scratch())
		switch {
		case errno == unix.EAGAIN:
			return
		case errno != 0 || n == 0:
			r.got <- "eof"
			r.l.Remove(r.fd)
			return
		}
		r.got <- string(r.l.Scratch()[:n])
	}
}

func socketPair(t *testing.T) (int, int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	return fds[0], fds[1]
}

func TestEventsReachTheirHandler(t *testing.T) {
	l := startLoop(t)
	a, b := socketPair(t)
	defer unix.Close(b)
	r := &recorder{l: l, fd: a, got: make(chan string, 16)}
	l.Locked(func() {
		if err := l.Add(a, r, In|RdHup|Edge); err != nil {
			t.Fatal(err)
		}
	})
	for _, msg := range []string{"one", "two"} {
		if _, errno := Write(b, []byte(msg)); errno != 0 {
			t.Fatal(errno)
		}
		if got := wait(t, r.got); got != msg {
			t.Fatalf("got %q, want %q", got, msg)
		}
	}
	unix.Close(b)
	if got := wait(t, r.got); got != "eof" {
		t.Fatalf("got %q, want eof", got)
	}
}

// ignorer takes events and reads nothing, as a handler does while its descriptor waits.
type ignorer struct{ events chan struct{} }

func (i *ignorer) Event(uint32) { i.events <- struct{}{} }

// TestRebindReportsBytesAlreadyThere: bytes that came while the first handler did not read them
// (their edge spent) reach the handler the descriptor is rebound to, without new bytes.
func TestRebindReportsBytesAlreadyThere(t *testing.T) {
	l := startLoop(t)
	a, b := socketPair(t)
	defer unix.Close(b)
	first := &ignorer{events: make(chan struct{}, 16)}
	l.Locked(func() {
		if err := l.Add(a, first, In|RdHup|Edge); err != nil {
			t.Fatal(err)
		}
	})
	if _, errno := Write(b, []byte("early")); errno != 0 {
		t.Fatal(errno)
	}
	select {
	case <-first.events: // the edge went to the first handler, which left the bytes unread
	case <-time.After(5 * time.Second):
		t.Fatal("no event for the first handler")
	}
	r := &recorder{l: l, fd: a, got: make(chan string, 16)}
	l.Locked(func() {
		if err := l.Rebind(a, r, In|RdHup|Edge); err != nil {
			t.Fatal(err)
		}
	})
	if got := wait(t, r.got); got != "early" {
		t.Fatalf("got %q, want the bytes that came before the rebind", got)
	}
}

func wait(t *testing.T, c chan string) string {
	t.Helper()
	select {
	case s := <-c:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
		return ""
	}
}

func TestTimersFireInOrderUnlessStopped(t *testing.T) {
	l := startLoop(t)
	var mu sync.Mutex
	var fired []int
	done := make(chan struct{})
	l.Locked(func() {
		for i, d := range []time.Duration{30, 10, 20, 40} {
			tm := l.After(d*time.Millisecond, func() {
				mu.Lock()
				fired = append(fired, i)
				mu.Unlock()
				if i == 3 {
					close(done)
				}
			})
			if i == 2 {
				l.Stop(tm)
				l.Stop(tm) // twice: nothing more
			}
		}
	})
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("timers did not fire")
	}
	mu.Lock()
	defer mu.Unlock()
	want := []int{1, 0, 3}
	if len(fired) != len(want) {
		t.Fatalf("fired %v, want %v", fired, want)
	}
	for i := range want {
		if fired[i] != want[i] {
			t.Fatalf("fired %v, want %v", fired, want)
		}
	}
}

// An earlier timer added after a later one re-arms the loop's wake.
func TestEarlierTimerRearms(t *testing.T) {
	l := startLoop(t)
	fired := make(chan time.Duration, 1)
	start := time.Now()
	l.Locked(func() {
		l.After(time.Hour, func() {})
		l.After(20*time.Millisecond, func() { fired <- time.Since(start) })
	})
	select {
	case <-fired:
	case <-time.After(5 * time.Second):
		t.Fatal("the earlier timer waited for the later one")
	}
}

// TestRawSocketCalls connects with the raw calls to a listener and accepts with them, on IPv4 and
// IPv6 loopback: the peer address read back is the connecting socket's.
func TestRawSocketCalls(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		t.Run(network, func(t *testing.T) {
			host := "127.0.0.1:0"
			if network == "tcp6" {
				host = "[::1]:0"
			}
			ln, err := net.Listen(network, host)
			if err != nil {
				t.Skipf("no %s loopback: %v", network, err)
			}
			defer ln.Close()
			lf, err := ln.(*net.TCPListener).File()
			if err != nil {
				t.Fatal(err)
			}
			defer lf.Close()
			lfd := int(lf.Fd())
			_ = unix.SetNonblock(lfd, true)
			ap := ln.Addr().(*net.TCPAddr).AddrPort()
			var sa unix.Sockaddr = &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
			if network == "tcp4" {
				sa = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
			}
			ra, ok := NewRawAddr(sa)
			if !ok {
				t.Fatal("NewRawAddr refused an inet address")
			}
			fd, errno := Socket(ra.Family)
			if errno != 0 {
				t.Fatal(errno)
			}
			defer Close(fd)
			if errno := NoDelay(fd); errno != 0 {
				t.Fatal(errno)
			}
			if errno := Connect(fd, ra); errno != 0 && errno != unix.EINPROGRESS {
				t.Fatalf("connect: %v", errno)
			}
			var cfd int
			var peer unix.Sockaddr
			for i := 0; ; i++ {
				cfd, peer, errno = Accept4(lfd)
				if errno != unix.EAGAIN || i == 200 {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			if errno != 0 {
				t.Fatalf("accept4: %v", errno)
			}
			defer Close(cfd)
			local, err := unix.Getsockname(fd)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(peer) != fmt.Sprint(local) {
				t.Fatalf("accepted peer %+v, the connecting socket is %+v", peer, local)
			}
			if n, errno := Write(fd, []byte("hi")); n != 2 || errno != 0 {
				t.Fatalf("write: %d %v", n, errno)
			}
			ShutdownWrite(fd)
			buf := make([]byte, 8)
			var got []byte
			for i := 0; i < 200; i++ {
				n, errno := Read(cfd, buf)
				if errno == unix.EAGAIN {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				if n <= 0 {
					break
				}
				got = append(got, buf[:n]...)
			}
			if string(got) != "hi" {
				t.Fatalf("read %q before the FIN, want \"hi\"", got)
			}
		})
	}
}
