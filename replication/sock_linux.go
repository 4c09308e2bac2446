package replication

import (
	"syscall"
	"unsafe"
)

// haveRawIO says whether rawWritev and rawRead are implemented here.
const haveRawIO = true

// rawWritev is writev(2) on a non-blocking socket through RawSyscall,
// which does not tell the scheduler about the call (see sock).
func rawWritev(fd uintptr, iov []syscall.Iovec) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
	return int(n), errno
}

// rawRead is read(2) on a non-blocking socket through RawSyscall (see
// sock).
func rawRead(fd uintptr, p []byte) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(n), errno
}
