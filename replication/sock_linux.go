package replication

import (
	"io"
	"os"
	"runtime"
	"syscall"
	"unsafe"
)

// haveRawIO says whether writeRaw and readRaw are implemented here.
const haveRawIO = true

// iovecs is writeRaw's reused list of buffers.
type iovecs = []syscall.Iovec

// maxIov is how many buffers one writev takes at most (IOV_MAX).
const maxIov = 1024

// writeRaw is write on s.rc: writev(2) with RawSyscall, the poller
// waiting whenever the socket is full.
func (s *sock) writeRaw(parts [][]byte) error {
	s.iov = s.iov[:0]
	for _, p := range parts {
		if len(p) > 0 {
			v := syscall.Iovec{Base: &p[0]}
			v.SetLen(len(p))
			s.iov = append(s.iov, v)
		}
	}
	iov := s.iov
	var werr error
	err := s.rc.Write(func(fd uintptr) bool {
		for len(iov) > 0 {
			n, errno := rawWritev(fd, iov[:min(len(iov), maxIov)])
			switch {
			case errno == syscall.EINTR:
			case errno == syscall.EAGAIN || (errno == 0 && n == 0):
				return false // wait until the socket takes more
			case errno != 0:
				werr = os.NewSyscallError("writev", errno)
				return true
			default:
				iov = consume(iov, n)
			}
		}
		return true
	})
	runtime.KeepAlive(parts)
	clear(s.iov) // keep no pointers into the backlog's blocks
	if err != nil {
		return err
	}
	return werr
}

// readRaw is Read on s.rc: read(2) with RawSyscall, the poller waiting
// whenever the socket is empty.
func (s *sock) readRaw(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var rerr error
	err := s.rc.Read(func(fd uintptr) bool {
		for {
			m, errno := rawRead(fd, p)
			switch errno {
			case 0:
				n = m
				return true
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false // wait until the replica sends more
			default:
				rerr = os.NewSyscallError("read", errno)
				return true
			}
		}
	})
	switch {
	case err != nil:
		return 0, err
	case rerr != nil:
		return 0, rerr
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// consume drops the first n bytes of iov.
func consume(iov []syscall.Iovec, n int) []syscall.Iovec {
	for n > 0 {
		l := int(iov[0].Len)
		if n < l {
			iov[0].Base = (*byte)(unsafe.Add(unsafe.Pointer(iov[0].Base), n))
			iov[0].SetLen(l - n)
			return iov
		}
		n -= l
		iov = iov[1:]
	}
	return iov
}

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
