//go:build linux

// Package evloop is the epoll event loop that sockets wait in when they must cost no goroutine and
// no buffer: WebSocket tunnels (package upgrade) and client connections between and during their
// polling requests (package proxy). A loop goroutine parks in Go's netpoller on the epoll descriptor
// itself, takes every ready event in one batch under one lock, and calls the handler registered for
// each descriptor. Timers (the deadlines of what the loop holds) fire under the same lock.
//
// Ownership: a descriptor registered with Add belongs to its handler, which reads, writes and
// closes it only while it holds the loop's lock (in Event, in a timer, or in Locked). Another
// goroutine that needs to act on a handler takes the lock with Locked: a descriptor is never used
// after the loop's side closed it.
package evloop

import (
	"container/heap"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Handler receives the events of one descriptor, with the loop's lock held. A handler must bear an
// event that finds nothing to do: a descriptor closed and reused within one batch may be handed an
// event of the socket it replaced.
type Handler interface {
	Event(events uint32)
}

// Events a handler registers for: readable, writable, the peer's half-close, edge-triggered.
const (
	In    = unix.EPOLLIN
	Out   = unix.EPOLLOUT
	RdHup = unix.EPOLLRDHUP
	Hup   = unix.EPOLLHUP
	Err   = unix.EPOLLERR
	Edge  = unix.EPOLLET
	// Exclusive wakes one of the loops that share a descriptor (a listening socket), not all.
	Exclusive = unix.EPOLLEXCLUSIVE
)

// ScratchSize is the size of the loop's one scratch buffer, shared by every handler of the loop
// while it handles an event.
const ScratchSize = 64 << 10

// Loop is one epoll instance and its goroutine.
type Loop struct {
	epfd int
	file *os.File
	// mu is held while a batch of events is handled, and by whoever else touches the loop's
	// handlers: one lock per batch, not per event.
	mu       sync.Mutex
	handlers []Handler // by descriptor: a slice index, cheaper than a map per event
	scratch  []byte
	now      int64 // unix nanos of the batch being handled: one clock read per batch

	timers timerHeap
	wake   *time.Timer // armed for the earliest timer
	armed  int64       // when wake fires; 0: not armed

	stop     chan struct{}
	stopOnce sync.Once
}

// New makes a loop; Run serves it until Close.
func New() (*Loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, err
	}
	l := &Loop{epfd: epfd, file: os.NewFile(uintptr(epfd), "sidpin-evloop"), scratch: make([]byte, ScratchSize),
		stop: make(chan struct{})}
	l.wake = time.AfterFunc(time.Hour, l.onWake)
	l.wake.Stop()
	return l, nil
}

// Run takes events until Close: each batch of ready events is handled under the lock, then the
// goroutine parks in Go's netpoller until the epoll descriptor is readable again. Waiting there
// parks a goroutine instead of blocking an OS thread in epoll_wait, which would make the runtime
// hand its processor to another thread at every wake.
func (l *Loop) Run() {
	raw, err := l.file.SyscallConn()
	if err != nil {
		return
	}
	events := make([]unix.EpollEvent, 256)
	failed := false
	drain := func(uintptr) bool {
		for {
			l.mu.Lock()
			n, errno := epollWait(l.epfd, events)
			if n > 0 {
				l.now = time.Now().UnixNano()
				for _, ev := range events[:n] {
					if fd := int(ev.Fd); fd < len(l.handlers) && l.handlers[fd] != nil {
						l.handlers[fd].Event(ev.Events)
					}
				}
				l.runTimers()
			}
			l.mu.Unlock()
			switch {
			case errno == unix.EINTR:
			case errno != 0:
				failed = true
				return true
			case n < len(events):
				return false // all ready events handled; new ones will wake the netpoller
			}
		}
	}
	for !failed && !l.stopped() && raw.Read(drain) == nil {
	}
}

func (l *Loop) stopped() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

// Close stops the loop's goroutine; the handlers' descriptors are theirs to close.
func (l *Loop) Close() {
	l.stopOnce.Do(func() {
		close(l.stop)
		l.wake.Stop()
		l.file.Close()
	})
}

// Locked runs f with the loop's lock held, from another goroutine.
func (l *Loop) Locked(f func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.now = time.Now().UnixNano()
	f()
	l.runTimers()
}

// Now is the time of the batch being handled (unix nanos): one clock read per batch.
func (l *Loop) Now() int64 { return l.now }

// Scratch is the loop's buffer, for the handler being called; its content is gone once it returns.
func (l *Loop) Scratch() []byte { return l.scratch }

// Add registers fd (non-blocking) for events with its handler; the lock must be held.
func (l *Loop) Add(fd int, h Handler, events uint32) error {
	if n := fd + 1; n > len(l.handlers) {
		l.handlers = append(l.handlers, make([]Handler, max(n, 2*len(l.handlers))-len(l.handlers))...)
	}
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	if err := epollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return err
	}
	l.handlers[fd] = h
	return nil
}

// Modify changes the events fd is registered for; the lock must be held.
func (l *Loop) Modify(fd int, events uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	return epollCtl(l.epfd, unix.EPOLL_CTL_MOD, fd, &ev)
}

// Rebind gives fd, registered already, to another handler with new events; the lock must be held.
// The kernel reports the descriptor's readiness anew (also with Edge): the new handler learns of
// bytes that arrived while the old one was not reading.
func (l *Loop) Rebind(fd int, h Handler, events uint32) error {
	if err := l.Modify(fd, events); err != nil {
		return err
	}
	l.handlers[fd] = h
	return nil
}

// Swap gives fd, registered already with the same events, to another handler; the lock must be held.
// Unlike Rebind it costs no syscall, and reports nothing: use it only when nothing waits unread on
// fd (its last read came back short, or EAGAIN), so that anything new brings its own edge.
func (l *Loop) Swap(fd int, h Handler) { l.handlers[fd] = h }

// Remove forgets fd and closes it; the lock must be held. The descriptor must be the only one of its
// socket: a closed socket then leaves epoll by itself, and no EPOLL_CTL_DEL is spent.
func (l *Loop) Remove(fd int) {
	if fd < len(l.handlers) {
		l.handlers[fd] = nil
	}
	Close(fd)
}

// Forget deregisters fd without closing it (it is handed on); the lock must be held.
func (l *Loop) Forget(fd int) {
	if fd < len(l.handlers) {
		l.handlers[fd] = nil
	}
	_ = epollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
}

// Timer is a deadline in a loop; its function runs under the loop's lock once it passes, unless
// stopped first.
type Timer struct {
	at    int64
	f     func()
	index int // in the heap; -1 when not scheduled
}

// After schedules f to run d after the batch's time; the lock must be held.
func (l *Loop) After(d time.Duration, f func()) *Timer {
	t := &Timer{at: l.now + int64(d), f: f}
	heap.Push(&l.timers, t)
	l.arm(t.at)
	return t
}

// Stop unschedules t (nil, stopped or fired: nothing to do); the lock must be held. The loop's wake
// stays armed: it finds nothing due and arms for the next timer.
func (l *Loop) Stop(t *Timer) {
	if t != nil && t.index >= 0 {
		heap.Remove(&l.timers, t.index)
	}
}

// arm makes sure the loop wakes by itself at at: Go's timer is reset only when at comes before the
// wake already armed, which deadlines set one after another rarely do.
func (l *Loop) arm(at int64) {
	if l.armed != 0 && l.armed <= at {
		return
	}
	l.armed = at
	l.wake.Reset(time.Duration(at - l.now))
}

func (l *Loop) onWake() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped() {
		return
	}
	l.now = time.Now().UnixNano()
	l.armed = 0
	l.runTimers()
}

// runTimers runs the timers due, then arms the wake for the next one.
func (l *Loop) runTimers() {
	for len(l.timers) > 0 && l.timers[0].at <= l.now {
		t := heap.Pop(&l.timers).(*Timer)
		t.f()
	}
	if len(l.timers) > 0 && (l.armed == 0 || l.armed > l.timers[0].at || l.armed < l.now) {
		l.armed = 0
		l.arm(l.timers[0].at)
	}
}

type timerHeap []*Timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *timerHeap) Push(x any) {
	t := x.(*Timer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	t.index = -1
	*h = old[:len(old)-1]
	return t
}

// Reset moves t to d after the batch's time, in place (t stopped or fired: scheduled again); the
// lock must be held.
func (l *Loop) Reset(t *Timer, d time.Duration) {
	t.at = l.now + int64(d)
	if t.index >= 0 {
		heap.Fix(&l.timers, t.index)
	} else {
		heap.Push(&l.timers, t)
	}
	l.arm(t.at)
}
