package replication

import (
	"net"
	"os"
	"runtime"
	"syscall"
	"unsafe"
)

// sink writes the stream to a replica's connection. On a plain TCP or Unix
// socket (Linux) it calls writev(2) itself inside syscall.RawConn.Write:
// the call cannot block (the socket is non-blocking; when it is full the
// runtime's poller waits for room, under the write deadline), so it is
// made without telling the scheduler (rawWritev). net.Conn's Write tells
// it (entersyscall), and that wakes the runtime's monitor thread whenever
// it sleeps deeply, which it does each time the primary's CPU goes idle
// between requests: the thread then polls every 20 µs again, a
// nanosleep(2) and a context switch each time on the primary's CPU. One
// such write per coalesced batch cost the primary about 0.05 nanosleeps
// and 0.1 context switches per request (docs/replication.md). Any other
// connection (TLS) is written with net.Buffers.
type sink struct {
	nc  net.Conn
	rc  syscall.RawConn // nil: write with nc
	iov []syscall.Iovec // reused
}

// maxIov is how many buffers one writev takes at most (IOV_MAX on Linux).
const maxIov = 1024

func newSink(nc net.Conn) *sink { return &sink{nc: nc, rc: rawConnOf(nc)} }

// rawConnOf returns the raw socket of a plain TCP or Unix connection on a
// platform with rawWritev, or nil.
func rawConnOf(nc net.Conn) syscall.RawConn {
	if !haveRawWritev {
		return nil
	}
	var (
		rc  syscall.RawConn
		err error
	)
	switch t := nc.(type) {
	case *net.TCPConn:
		rc, err = t.SyscallConn()
	case *net.UnixConn:
		rc, err = t.SyscallConn()
	default:
		return nil
	}
	if err != nil {
		return nil
	}
	return rc
}

// write writes every byte of parts, in order, or returns why it could
// not (the write deadline passing, the connection closing or failing).
// It may empty the slices of parts (net.Buffers does).
func (s *sink) write(parts [][]byte) error {
	if s.rc == nil {
		bufs := net.Buffers(parts)
		_, err := bufs.WriteTo(s.nc)
		return err
	}
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
