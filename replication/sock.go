package replication

import (
	"io"
	"net"
	"os"
	"runtime"
	"syscall"
	"unsafe"
)

// sock is a replica's connection as its primary's link uses it: the
// stream is written to it and the replica's acknowledgements read from
// it. On a plain TCP or Unix socket (Linux) it calls writev(2) and read(2)
// itself inside syscall.RawConn's Write and Read: the calls cannot block
// (the socket is non-blocking; when it is full, or empty, the runtime's
// poller waits, under the connection's deadlines), so they are made
// without telling the scheduler (rawWritev, rawRead). net.Conn's Write and
// Read tell it (entersyscall), and that wakes the runtime's monitor thread
// whenever it sleeps deeply, which it does each time the primary's CPU
// goes idle between requests: the thread then polls every 20 µs again, a
// nanosleep(2) and a context switch each time on the primary's CPU. One
// such write per coalesced batch cost the primary about 0.04 nanosleeps
// and 0.1 context switches per unpipelined request (docs/replication.md).
// Any other connection (TLS) is used through net.Conn.
type sock struct {
	nc  net.Conn
	rc  syscall.RawConn // nil: use nc
	iov []syscall.Iovec // write's, reused
}

// maxIov is how many buffers one writev takes at most (IOV_MAX on Linux).
const maxIov = 1024

func newSock(nc net.Conn) *sock { return &sock{nc: nc, rc: rawConnOf(nc)} }

// rawConnOf returns the raw socket of a plain TCP or Unix connection on a
// platform with rawWritev and rawRead, or nil.
func rawConnOf(nc net.Conn) syscall.RawConn {
	if !haveRawIO {
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
func (s *sock) write(parts [][]byte) error {
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

// Read reads what the replica sent into p, waiting until it sends
// something; io.EOF once it closed the connection.
func (s *sock) Read(p []byte) (int, error) {
	if s.rc == nil {
		return s.nc.Read(p)
	}
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
