package resp

import (
	"syscall"
	"unsafe"
)

// readyReads says whether plain sockets are served by serveReady.
const readyReads = true

// readRaw and writeRaw are read(2) and write(2) on a non-blocking socket
// inside serveReady. They use RawSyscall, which does not tell the
// scheduler about the call: such a call cannot block, and the
// notification (entersyscall) would wake the runtime's monitor thread from
// its deep sleep each time the server resumes after being idle, making it
// poll every 20 µs again: a context switch per wake-up on the server's CPU.
func readRaw(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

func writeRaw(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
