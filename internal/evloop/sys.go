//go:build linux

package evloop

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Read and Write call read(2) and write(2) directly, without telling the Go scheduler (entersyscall
// and exitsyscall) and without the runtime's error wrapping: the sockets are non-blocking, so the
// calls never wait, and that bookkeeping was a third of a relay's own instructions per message
// (callgrind). Both retry EINTR, so callers see 0, EAGAIN or a real error.
func Read(fd int, b []byte) (int, unix.Errno) {
	for {
		n, errno := rawResult(unix.RawSyscallNoError(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b))))
		if errno != unix.EINTR {
			return n, errno
		}
	}
}

// Write: see Read.
func Write(fd int, b []byte) (int, unix.Errno) {
	for {
		n, errno := rawResult(unix.RawSyscallNoError(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b))))
		if errno != unix.EINTR {
			return n, errno
		}
	}
}

// WriteAll writes b until it is all written (errno 0), the socket is full (EAGAIN) or an error; n
// is how much was written either way, so b[n:] is what waits for the next EPOLLOUT edge.
func WriteAll(fd int, b []byte) (n int, errno unix.Errno) {
	for n < len(b) {
		w, errno := Write(fd, b[n:])
		if errno != 0 {
			return n, errno
		}
		n += w
	}
	return n, 0
}

// rawResult decodes a system call's result: -4095..-1 is a negated errno.
func rawResult(r, _ uintptr) (int, unix.Errno) {
	if r > ^uintptr(4095) {
		return -1, unix.Errno(-r)
	}
	return int(r), 0
}

// epollWait polls the same way (timeout 0: it never waits, the netpoller does). epoll_pwait with no
// signal mask is epoll_wait, and exists on every architecture.
func epollWait(epfd int, events []unix.EpollEvent) (int, unix.Errno) {
	n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(unsafe.SliceData(events))),
		uintptr(len(events)), 0, 0, 0)
	return int(n), errno
}

// The socket calls of a connection's life in the loop, raw like Read and Write. None of them waits
// on a non-blocking socket, but a loopback connect(2) runs the whole TCP handshake in the kernel and
// close(2) its teardown: tens of microseconds, long enough for the runtime's sysmon to see the
// processor "in a syscall", hand it to another thread and stay awake polling (about 2 context
// switches per connection opened and closed, measured with perf stat on 3000 WebSocket opens).

// Socket opens a non-blocking, close-on-exec TCP socket of family (AF_INET or AF_INET6).
func Socket(family int) (int, unix.Errno) {
	r, _, errno := unix.RawSyscall(unix.SYS_SOCKET, uintptr(family), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(r), 0
}

// NoDelay sets TCP_NODELAY on fd.
func NoDelay(fd int) unix.Errno {
	one := int32(1)
	_, _, errno := unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY,
		uintptr(unsafe.Pointer(&one)), 4, 0)
	return errno
}

// RawAddr is a socket address in the kernel's layout, made once per node (NewRawAddr).
type RawAddr struct {
	buf    [unix.SizeofSockaddrInet6]byte
	len    uintptr
	Family int
}

// NewRawAddr lays out sa (*unix.SockaddrInet4 or *unix.SockaddrInet6); false for other kinds.
func NewRawAddr(sa unix.Sockaddr) (*RawAddr, bool) {
	ra := &RawAddr{}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		r := (*unix.RawSockaddrInet4)(unsafe.Pointer(&ra.buf[0]))
		r.Family = unix.AF_INET
		p := (*[2]byte)(unsafe.Pointer(&r.Port))
		p[0], p[1] = byte(a.Port>>8), byte(a.Port)
		r.Addr = a.Addr
		ra.len, ra.Family = unix.SizeofSockaddrInet4, unix.AF_INET
	case *unix.SockaddrInet6:
		r := (*unix.RawSockaddrInet6)(unsafe.Pointer(&ra.buf[0]))
		r.Family = unix.AF_INET6
		p := (*[2]byte)(unsafe.Pointer(&r.Port))
		p[0], p[1] = byte(a.Port>>8), byte(a.Port)
		r.Scope_id = a.ZoneId
		r.Addr = a.Addr
		ra.len, ra.Family = unix.SizeofSockaddrInet6, unix.AF_INET6
	default:
		return nil, false
	}
	return ra, true
}

// Connect starts connecting fd to ra: 0 (connected), EINPROGRESS, or the error.
func Connect(fd int, ra *RawAddr) unix.Errno {
	_, _, errno := unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&ra.buf[0])), ra.len)
	return errno
}

// Close closes fd.
func Close(fd int) {
	_, _, _ = unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
}

// ShutdownWrite shuts fd's write side (a FIN after what was written).
func ShutdownWrite(fd int) {
	_, _, _ = unix.RawSyscall(unix.SYS_SHUTDOWN, uintptr(fd), unix.SHUT_WR, 0)
}

// Accept4 takes a connection from the listening socket lfd, non-blocking and close-on-exec, with
// its peer's address.
func Accept4(lfd int) (int, unix.Sockaddr, unix.Errno) {
	var rsa unix.RawSockaddrAny
	l := uint32(unix.SizeofSockaddrAny)
	r, _, errno := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(lfd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&l)),
		unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if errno != 0 {
		return -1, nil, errno
	}
	return int(r), sockaddrOf(&rsa), 0
}

// sockaddrOf reads an IPv4 or IPv6 peer address (nil for another family).
func sockaddrOf(rsa *unix.RawSockaddrAny) unix.Sockaddr {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		r := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		p := (*[2]byte)(unsafe.Pointer(&r.Port))
		return &unix.SockaddrInet4{Port: int(p[0])<<8 | int(p[1]), Addr: r.Addr}
	case unix.AF_INET6:
		r := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		p := (*[2]byte)(unsafe.Pointer(&r.Port))
		return &unix.SockaddrInet6{Port: int(p[0])<<8 | int(p[1]), ZoneId: r.Scope_id, Addr: r.Addr}
	}
	return nil
}

// epollCtl is epoll_ctl(2), raw.
func epollCtl(epfd, op, fd int, ev *unix.EpollEvent) error {
	_, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
