// Command floor measures what a RESP server costs per request before it
// does any work: it answers +OK to every command it reads, under one of
// several connection models, so that the server CPU per request of each
// model can be set beside Redis's and Sluice's in the same run (run.sh).
//
// It is its own module so that the event-loop library it compares
// (gnet) is not a dependency of Sluice.
//
// A command is counted by its array header: every '*' in the bytes read
// is one reply. That holds for redis-benchmark's commands (keys and values
// of digits and letters), which is all this is for.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"runtime"
	"syscall"
	"unsafe"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

var ok = []byte("+OK\r\n")

// appendReplies appends one +OK per command header in b.
func appendReplies(out, b []byte) []byte {
	for n := bytes.Count(b, []byte{'*'}); n > 0; n-- {
		out = append(out, ok...)
	}
	return out
}

func main() {
	mode := flag.String("mode", "ready", "connection model: net | ready | epoll | gnet")
	addr := flag.String("addr", "127.0.0.1:7400", "address to listen on")
	flag.Parse()
	var err error
	switch *mode {
	case "net", "ready":
		err = serveGoroutines(*addr, *mode == "ready")
	case "epoll":
		err = serveEpoll(*addr)
	case "gnet":
		err = gnet.Run(&gnetHandler{}, "tcp://"+*addr, gnet.WithMulticore(false))
	default:
		fmt.Fprintf(os.Stderr, "floor: unknown --mode %q\n", *mode)
		os.Exit(2)
	}
	log.Fatal(err)
}

// serveGoroutines runs one goroutine per connection, as Sluice does.
func serveGoroutines(addr string, ready bool) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		if ready {
			go serveReady(c.(*net.TCPConn))
		} else {
			go serveNet(c)
		}
	}
}

// serveNet is Go's standard loop: Read (which tries the read system call
// first and waits on the runtime's poller after EAGAIN), then Write.
func serveNet(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 16<<10)
	var out []byte
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		out = appendReplies(out[:0], buf[:n])
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// serveReady is Sluice's loop (resp/conn.go serveReady): the whole loop
// runs inside one RawConn.Read callback; a read that drained the socket is
// followed by a wait for readability, not by another read.
func serveReady(c *net.TCPConn) {
	defer c.Close()
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	buf := make([]byte, 16<<10)
	var out []byte
	mustRead := true
	_ = rc.Read(func(fd uintptr) bool {
		for {
			if !mustRead {
				mustRead = true
				return false
			}
			n, errno := rawRead(int(fd), buf)
			switch {
			case errno == syscall.EAGAIN:
				return false
			case errno == syscall.EINTR:
				continue
			case errno != 0 || n == 0:
				return true
			}
			mustRead = n == len(buf)
			out = appendReplies(out[:0], buf[:n])
			if _, errno := rawWrite(int(fd), out); errno != 0 {
				return true // the replies are small: a full socket buffer ends the connection
			}
		}
	})
}

// serveEpoll is a hand-written event loop on one locked OS thread: it asks
// epoll without waiting first, and waits in epoll_wait (a blocking system
// call, which the runtime hands its P away for) only when nothing is ready.
func serveEpoll(addr string) error {
	runtime.LockOSThread()
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if err := unix.SetsockoptInt(lfd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return err
	}
	ta, err := net.ResolveTCPAddr("tcp4", addr)
	if err != nil {
		return err
	}
	sa := &unix.SockaddrInet4{Port: ta.Port}
	copy(sa.Addr[:], ta.IP.To4())
	if err := unix.Bind(lfd, sa); err != nil {
		return err
	}
	if err := unix.Listen(lfd, 1024); err != nil {
		return err
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, lfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(lfd)}); err != nil {
		return err
	}
	events := make([]unix.EpollEvent, 128)
	buf := make([]byte, 16<<10)
	var out []byte
	for {
		n, errno := epollWait(ep, events, 0, true)
		if errno == 0 && n == 0 {
			n, errno = epollWait(ep, events, -1, false)
		}
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			return errno
		}
		for _, ev := range events[:n] {
			fd := int(ev.Fd)
			if fd == lfd {
				acceptAll(ep, lfd)
				continue
			}
			r, errno := rawRead(fd, buf)
			if errno == syscall.EAGAIN || errno == syscall.EINTR {
				continue
			}
			if errno == 0 && r > 0 {
				out = appendReplies(out[:0], buf[:r])
				if _, errno = rawWrite(fd, out); errno == 0 {
					continue
				}
			}
			_ = unix.EpollCtl(ep, unix.EPOLL_CTL_DEL, fd, nil)
			_ = unix.Close(fd)
		}
	}
}

// acceptAll accepts every pending connection and adds it to epoll.
func acceptAll(ep, lfd int) {
	for {
		fd, _, err := unix.Accept4(lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			if !errors.Is(err, unix.EAGAIN) {
				log.Printf("floor: accept: %v", err)
			}
			return
		}
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
			_ = unix.Close(fd)
		}
	}
}

// gnetHandler answers on gnet's event loop.
type gnetHandler struct{ gnet.BuiltinEventEngine }

// OnTraffic answers every command gnet has read for c.
func (gnetHandler) OnTraffic(c gnet.Conn) gnet.Action {
	b, err := c.Next(-1)
	if err != nil {
		return gnet.Close
	}
	var out [512]byte
	if _, err := c.Write(appendReplies(out[:0], b)); err != nil {
		return gnet.Close
	}
	return gnet.None
}

// rawRead and rawWrite are read(2) and write(2) on a non-blocking socket
// without telling the scheduler (they never block).
func rawRead(fd int, b []byte) (int, syscall.Errno) {
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	return int(n), e
}

func rawWrite(fd int, b []byte) (int, syscall.Errno) {
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	return int(n), e
}

// epollWait is epoll_wait(2); raw (no scheduler notice) only for a wait of 0.
func epollWait(ep int, events []unix.EpollEvent, msec int, raw bool) (int, syscall.Errno) {
	call := syscall.Syscall6
	if raw {
		call = syscall.RawSyscall6
	}
	n, _, e := call(unix.SYS_EPOLL_WAIT, uintptr(ep), uintptr(unsafe.Pointer(unsafe.SliceData(events))), uintptr(len(events)), uintptr(msec), 0, 0)
	return int(n), e
}
