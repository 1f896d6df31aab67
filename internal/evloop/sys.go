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
