package replication

import (
	"net"
	"syscall"
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
// such write per coalesced batch cost the primary 0.02-0.04 nanosleeps and
// up to 0.06 extra context switches per unpipelined request
// (docs/replication.md).
// Any other connection (TLS) is used through net.Conn.
type sock struct {
	nc  net.Conn
	rc  syscall.RawConn // nil: use nc
	iov iovecs          // writeRaw's, reused
}

func newSock(nc net.Conn) *sock { return &sock{nc: nc, rc: rawConnOf(nc)} }

// rawConnOf returns the raw socket of a plain TCP or Unix connection on a
// platform with rawWritev and rawRead, or nil.
func rawConnOf(nc net.Conn) syscall.RawConn {
	sc, ok := nc.(syscall.Conn) // *net.TCPConn, *net.UnixConn; not TLS or net.Pipe
	if !haveRawIO || !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
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
	return s.writeRaw(parts)
}

// Read reads what the replica sent into p, waiting until it sends
// something; io.EOF once it closed the connection.
func (s *sock) Read(p []byte) (int, error) {
	if s.rc == nil {
		return s.nc.Read(p)
	}
	return s.readRaw(p)
}
