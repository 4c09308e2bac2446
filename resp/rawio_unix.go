//go:build unix && !linux

package resp

import "syscall"

// readyReads says whether plain sockets are served by serveReady.
const readyReads = true

// readRaw and writeRaw are read(2) and write(2) on a non-blocking socket
// inside serveReady (see rawio_linux.go).
func readRaw(fd int, p []byte) (int, error) {
	n, err := syscall.Read(fd, p)
	return max(n, 0), err
}

func writeRaw(fd int, p []byte) (int, error) {
	n, err := syscall.Write(fd, p)
	return max(n, 0), err
}
