//go:build linux

package evloop

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Read and Write call read(2) and write(2) directly, without telling the Go scheduler (entersyscall
// and exitsyscall) and without the runtime's error wrapping: the sockets are non-blocking, so the
// calls never wait, and that bookkeeping was a third of a relay's own instructions per message
// (callgrind).
func Read(fd int, b []byte) (int, unix.Errno) {
	return rawResult(unix.RawSyscallNoError(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b))))
}

// Write: see Read.
func Write(fd int, b []byte) (int, unix.Errno) {
	return rawResult(unix.RawSyscallNoError(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b))))
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
