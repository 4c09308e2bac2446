package replication

import (
	"syscall"
	"unsafe"
)

// haveRawWritev says whether rawWritev is implemented here.
const haveRawWritev = true

// rawWritev is writev(2) on a non-blocking socket through RawSyscall,
// which does not tell the scheduler about the call (see sink).
func rawWritev(fd uintptr, iov []syscall.Iovec) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
	return int(n), errno
}
