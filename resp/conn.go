package resp

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	// wbufInit is the initial capacity of a reply buffer.
	wbufInit = 4 << 10
	// wbufKeep is the reply buffer capacity kept across idle periods.
	wbufKeep = 64 << 10
	// defaultShrinkDelay is how long after a read or reply buffer became
	// oversized it is released (if empty at that moment).
	defaultShrinkDelay = 2 * time.Second
	// maxIdleGranularity bounds how often the idle deadline is refreshed.
	maxIdleGranularity = time.Second
)

// Conn is one client connection. Its methods other than ID, RemoteAddr,
// LocalAddr, Proto, Authenticated and Close must only be called from the
// connection's goroutine, i.e. from the Handler, OnOpen or OnClose.
type Conn struct {
	srv    *Server
	nc     net.Conn
	id     uint64
	remote string
	local  string
	lim    *Limits
	rd     *reader
	wbuf   []byte
	ctx    any

	proto      atomic.Int32
	authed     atomic.Bool
	closeAfter bool
	barrier    func() error // runs before the next flush (see Barrier)
	waited     bool         // a barrier ran since the last read

	detach  func(nc net.Conn, buffered []byte) // set by Detach
	handoff func()                             // the detached protocol, run once the loop has ended

	// Readiness-driven reads (see serveReady).
	raw      syscall.RawConn // nil: plain net.Conn reads
	mustRead bool            // the socket may hold unread bytes: read before waiting
	fd       int             // the socket while in onReadable, else -1: flush writes to it directly
	stop     error           // why serveReady's callback left the read loop
	killed   atomic.Bool     // Close was called
	looping  atomic.Bool     // serveReady is inside RawConn.Read

	// Deadline bookkeeping (conn goroutine only).
	rdl          time.Time     // read deadline currently set
	wdlSet       time.Time     // when the write deadline was last set
	authDeadline time.Time     // accept time + AuthTimeout
	idleMark     time.Time     // last time activity refreshed the idle deadline
	idleGran     time.Duration // idle deadline refresh granularity
	fresh        bool          // data was read since the idle mark was refreshed
	shrinkAt     time.Time     // when oversized buffers are released; zero = not armed
}

func newConn(s *Server, nc net.Conn) *Conn {
	lim := &s.lim
	var raw syscall.RawConn
	if readyReads && !s.plainReads {
		raw = rawConnOf(nc)
	}
	now := time.Now()
	c := &Conn{
		srv:    s,
		nc:     nc,
		id:     s.nextID.Add(1),
		remote: addrString(nc.RemoteAddr()),
		local:  addrString(nc.LocalAddr()),
		lim:    lim,
		rd: newReader(readerLimits{
			maxBulk:        lim.MaxBulkLen,
			maxArgs:        int64(lim.MaxArgs),
			maxInline:      lim.MaxInlineLen,
			maxQuery:       lim.MaxQueryBuffer,
			preAuthArgs:    int64(lim.PreAuthMaxArgs),
			preAuthBulkLen: lim.PreAuthMaxBulkLen,
		}, &s.queryBufs),
		wbuf:     make([]byte, 0, wbufInit),
		idleMark: now,
		idleGran: min(maxIdleGranularity, lim.IdleTimeout/8),
		raw:      raw,
		fd:       -1,
	}
	c.proto.Store(2)
	c.authed.Store(!lim.AuthRequired)
	if lim.AuthRequired {
		c.authDeadline = now.Add(lim.AuthTimeout)
	}
	return c
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// ID returns the connection's id: 1, 2, 3... in accept order per server.
func (c *Conn) ID() uint64 { return c.id }

// RemoteAddr returns the client's address, e.g. "127.0.0.1:50312".
func (c *Conn) RemoteAddr() string { return c.remote }

// LocalAddr returns the server-side address of the connection.
func (c *Conn) LocalAddr() string { return c.local }

// Proto returns the protocol version used for replies: 2 (default) or 3.
func (c *Conn) Proto() int { return int(c.proto.Load()) }

// SetProto sets the protocol version (HELLO). Values other than 3 mean 2.
func (c *Conn) SetProto(p int) {
	if p != 3 {
		p = 2
	}
	c.proto.Store(int32(p))
}

// Authenticated reports whether the connection is authenticated. It is
// true from the start unless Server.AuthRequired is set.
func (c *Conn) Authenticated() bool { return c.authed.Load() }

// SetAuthenticated changes the authentication state. While false, the
// pre-auth limits and AuthTimeout apply.
func (c *Conn) SetAuthenticated(v bool) { c.authed.Store(v) }

// Context returns the value set by SetContext (per-connection state owned
// by the handler), or nil.
func (c *Conn) Context() any { return c.ctx }

// SetContext stores per-connection state for the handler.
func (c *Conn) SetContext(v any) { c.ctx = v }

// CloseAfterReply makes the connection flush the replies written so far
// and then close, without running the commands still in the pipeline
// (QUIT).
func (c *Conn) CloseAfterReply() { c.closeAfter = true }

// Close closes the network connection immediately, dropping unsent
// replies. It is safe to call from any goroutine (CLIENT KILL).
func (c *Conn) Close() error {
	c.killed.Store(true)
	if c.looping.Load() {
		// serveReady holds the socket's read lock, and net.Conn.Close
		// waits until it is released (forever if called from a handler
		// of this connection). Wake its waits instead: it sees killed
		// and closes the socket itself.
		past := time.Unix(1, 0)
		_ = c.nc.SetReadDeadline(past)
		_ = c.nc.SetWriteDeadline(past)
		return nil
	}
	return c.nc.Close()
}

// wake makes a blocked Read return; used by Shutdown.
func (c *Conn) wake() { _ = c.nc.SetReadDeadline(time.Unix(1, 0)) }

// serve is the connection goroutine: parse every complete command in the
// buffer, run it, flush once, read once, repeat.
func (c *Conn) serve() {
	defer c.finish()
	if c.srv.OnOpen != nil {
		c.srv.OnOpen(c)
	}
	if c.raw != nil {
		c.serveReady()
	} else {
		c.servePlain()
	}
	if fn := c.handoff; fn != nil && !c.killed.Load() {
		c.handoff = nil
		fn()
	}
}

// rawConnOf returns the raw socket of a plain TCP or Unix connection, whose
// reads can wait on the runtime's poller for readability, or nil for any
// other net.Conn (TLS, a test pipe), which is read with Read.
func rawConnOf(nc net.Conn) syscall.RawConn {
	sc, ok := nc.(syscall.Conn) // *net.TCPConn, *net.UnixConn; not TLS or a pipe
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// errStopped is serveReady's stop reason when the connection must close
// for a reason already handled (a failed flush, QUIT, a detach, a kill).
var errStopped = errors.New("resp: connection stopped")

// errShutdown is serveReady's stop reason when the server shuts down.
var errShutdown = errors.New("resp: server shutting down")

// serveReady is the loop for plain sockets. net.Conn.Read always tries the
// read system call first and parks on the poller only when it fails with
// EAGAIN; with one request per round trip, that is every second read (the
// socket was drained by the previous one, and the next request cannot have
// arrived while its reply was being written). Here a read that did not
// fill the buffer (so drained the socket) is followed by a wait for
// readability, and only then by the next read: one read and one write per
// unpipelined request, as in Redis's event loop.
//
// The whole loop runs inside one RawConn.Read call, whose callback reads
// the socket directly, runs the commands and writes the replies (Write
// takes the write lock, not the read lock, and may park for writability).
// It cannot be one RawConn.Read per request: RawConn.Read first clears the
// poller's "became readable" mark, so a request that arrived between the
// previous read and the next call would be lost and the connection would
// wait forever. Inside one call the mark is only consumed by the waits
// themselves, and each entry (the first, or after a deadline) reads before
// it waits. The call is left for what needs the read lock or the plain
// path's handling: deadlines (idle, auth, shrink, Shutdown), errors,
// close, Detach.
func (c *Conn) serveReady() {
	if !c.process() {
		return
	}
	for {
		if c.killed.Load() {
			return
		}
		if !c.armRead() {
			c.linger()
			return
		}
		c.mustRead, c.stop = true, nil
		c.looping.Store(true)
		err := c.raw.Read(c.onReadable)
		c.looping.Store(false)
		if err == nil {
			err = c.stop
		}
		if c.killed.Load() || errors.Is(err, errStopped) || !c.readStopped(err) {
			return
		}
	}
}

// readStopped ends what stopped a read loop: a malformed request or the
// query buffer budget (answered, then closed), Shutdown (lingered), a
// deadline, or a failed or closed socket. It returns true when the loop
// reads on: a deadline fired that only shrank buffers.
func (c *Conn) readStopped(err error) bool {
	var perr *protocolError
	switch {
	case errors.As(err, &perr):
		c.protocolError(perr)
	case errors.Is(err, errQueryBudget):
		c.evict()
	case errors.Is(err, errShutdown) || c.srv.shutting.Load():
		c.linger()
	case errors.Is(err, os.ErrDeadlineExceeded):
		return c.deadlineFired()
	case !isClosedError(err):
		c.srv.logger().Debug("resp: read failed", "id", c.id, "remote", c.remote, "err", err)
	}
	return false
}

// onReadable is serveReady's RawConn.Read callback: it returns false to
// wait until the socket is readable (or a deadline passes), true to leave
// the loop with the reason in c.stop.
func (c *Conn) onReadable(fd uintptr) bool {
	c.fd = int(fd)
	defer func() { c.fd = -1 }()
	for {
		if !c.mustRead {
			c.mustRead = true // when woken, read
			return false
		}
		n, err := c.rd.fillFD(int(fd))
		switch {
		case err == syscall.EAGAIN:
			c.srv.wouldBlock.Add(1)
			return false // nothing yet (first read of an entry, or a stale wake-up)
		case err == syscall.EINTR:
			continue
		case err != nil:
			c.stop = err
			return true
		case n == 0:
			c.stop = io.EOF
			return true
		}
		c.srv.bytesIn.Add(uint64(n))
		c.fresh = true
		// A read that filled the free space may have left bytes behind:
		// read again at once. Otherwise the socket is drained.
		c.mustRead = c.rd.w == len(c.rd.buf)
		if !c.process() || c.killed.Load() {
			c.stop = errStopped
			return true
		}
		if !c.armRead() {
			c.stop = errShutdown // or killed: serveReady checks that first
			return true
		}
	}
}

// servePlain is the loop for connections that are not plain sockets (TLS):
// flush, then Read, which tries the read system call before waiting.
func (c *Conn) servePlain() {
	for {
		if !c.process() {
			return
		}
		if !c.armRead() {
			c.linger()
			return
		}
		if c.waited {
			// The replies waited on a barrier (a durable sync), and the
			// other connections of the same group commit were released
			// with this one: let them write their replies first. Reading
			// at once would mostly fail (EAGAIN: the client has not yet
			// seen its reply) and park on the poller, a wasted system
			// call per request; after the others it is usually there.
			c.waited = false
			runtime.Gosched()
		}
		n, err := c.rd.fill(c.nc)
		if n > 0 {
			c.srv.bytesIn.Add(uint64(n))
			c.fresh = true
		}
		if err == nil {
			continue
		}
		// Bytes come with a read error only (a protocol error or the
		// budget come from making room, before any byte is read): answer
		// what they complete before ending the read.
		if (n > 0 && !c.process()) || !c.readStopped(err) {
			return
		}
	}
}

// lingerRounds bounds how many reads a connection makes after Shutdown, and
// lingerWait how long each waits for bytes the client has already sent.
const (
	lingerRounds = 64
	lingerWait   = 50 * time.Millisecond
)

// linger ends a connection during Shutdown without losing replies: it
// answers the commands the client had already sent (those in flight on the
// wire too), half-closes so the client reads every reply and then EOF, and
// discards what still arrives, so that closing does not reset the
// connection and destroy replies the client has not read yet.
func (c *Conn) linger() {
	for i := 0; i < lingerRounds && !c.closeAfter; i++ {
		_ = c.nc.SetReadDeadline(time.Now().Add(lingerWait))
		n, err := c.rd.fill(c.nc)
		if n > 0 {
			c.srv.bytesIn.Add(uint64(n))
		}
		var perr *protocolError
		if errors.As(err, &perr) {
			c.protocolError(perr)
			break
		}
		if errors.Is(err, errQueryBudget) {
			c.evict()
			break
		}
		if (n > 0 && !c.process()) || err != nil {
			break
		}
	}
	type closeWriter interface{ CloseWrite() error }
	if cw, ok := c.nc.(closeWriter); ok && cw.CloseWrite() == nil {
		var sink [512]byte
		_ = c.nc.SetReadDeadline(time.Now().Add(lingerWait))
		for i := 0; i < lingerRounds; i++ {
			if _, err := c.nc.Read(sink[:]); err != nil {
				break
			}
		}
	}
}

func isClosedError(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF)
}

// process runs every complete command in the read buffer and flushes the
// replies. It returns false when the connection must close.
func (c *Conn) process() bool {
	h := c.srv.Handler
	for !c.closeAfter {
		args, err := c.rd.next(!c.authed.Load())
		if err != nil {
			var perr *protocolError
			if errors.As(err, &perr) {
				c.protocolError(perr)
			}
			return false
		}
		if args == nil {
			break
		}
		h.ServeRESP(c, args)
		if fn := c.detach; fn != nil {
			c.detach = nil
			if c.flush() {
				nc, buffered := c.nc, bytes.Clone(c.rd.buf[c.rd.r:c.rd.w])
				// Run by serve once the read loop has ended: serveReady
				// holds the connection's read lock until then.
				c.handoff = func() { fn(nc, buffered) }
			}
			return false
		}
		if len(c.wbuf) >= c.lim.MaxPendingReply && !c.flush() {
			return false
		}
	}
	return c.flush() && !c.closeAfter
}

// protocolError answers a malformed request (after the replies already
// pending) and counts it; the caller closes the connection.
func (c *Conn) protocolError(perr *protocolError) {
	c.srv.protocolErrors.Add(1)
	if perr.silent {
		c.srv.logger().Warn("resp: possible cross-protocol attack (HTTP request on a Redis port), connection closed",
			"id", c.id, "remote", c.remote)
		c.flush()
		return
	}
	c.srv.logger().Debug("resp: protocol error, closing connection", "id", c.id, "remote", c.remote, "err", perr.msg)
	c.WriteError(perr.reply)
	c.flush()
}

// evict ends a connection whose read buffer could not grow within
// MaxQueryBufferTotal: the replies already due are flushed, the partial
// command is dropped without a reply (as Redis drops a client over its
// query buffer limits), and the operator is told.
func (c *Conn) evict() {
	c.srv.evicted.Add(1)
	c.srv.logger().Warn("resp: closing a client: its partial command would take all clients' query buffers past max-query-buffer-total",
		"id", c.id, "remote", c.remote, "query_buffer", len(c.rd.buf), "buffered", c.rd.w-c.rd.r,
		"all_clients", c.srv.queryBufs.used.Load(), "max_query_buffer_total", c.srv.queryBufs.limit)
	c.flush()
}

// Barrier makes fn run once before the replies written so far leave the
// server: every reply of a pipelined batch then waits on one call (for
// example one durable sync for many decisions) instead of one call each.
// If fn fails, those replies are dropped, fn's error (which carries its
// code, e.g. "ERR ...") is sent in their place and the connection closes:
// a client never receives a reply the barrier could not stand behind.
// Setting a barrier again before the flush replaces fn.
func (c *Conn) Barrier(fn func() error) { c.barrier = fn }

// Detach hands the network connection over to fn once the current command
// returns, for a protocol that takes a connection over after a command (a
// replica's PSYNC turns it into a replication stream): the replies written
// so far are flushed, no further command is read, and fn runs in the
// connection's goroutine with the connection and a copy of the bytes
// already read past the command. When fn returns, the connection closes
// and OnClose runs as for any other. The connection still counts as
// connected, and Shutdown wakes fn's blocked reads as it wakes the others'
// (a read deadline in the past), so fn must return when a read fails.
func (c *Conn) Detach(fn func(nc net.Conn, buffered []byte)) { c.detach = fn }

// flush writes the reply buffer with one Write under WriteTimeout. It
// returns false on failure.
func (c *Conn) flush() bool {
	if fn := c.barrier; fn != nil {
		c.barrier, c.waited = nil, true
		if err := fn(); err != nil {
			c.wbuf = c.wbuf[:0]
			c.WriteError(err.Error())
			c.closeAfter = true
		}
	}
	if len(c.wbuf) == 0 {
		return true
	}
	var n int
	var err error
	if c.fd >= 0 {
		// The socket is written directly and never waits: the write
		// deadline is set only if it would (see writeReady).
		if c.killed.Load() {
			return false
		}
		n, err = c.writeReady()
	} else {
		if !c.armWrite() {
			return false
		}
		n, err = c.nc.Write(c.wbuf)
	}
	if n > 0 {
		c.srv.bytesOut.Add(uint64(n))
	}
	c.wbuf = c.wbuf[:0]
	if err != nil {
		if !isClosedError(err) {
			c.srv.logger().Debug("resp: write failed, closing connection", "id", c.id, "remote", c.remote, "err", err)
		}
		return false
	}
	return true
}

// armWrite sets the write deadline before a write that may wait for the
// client to read, and reports whether the connection is still open.
func (c *Conn) armWrite() bool {
	if wt := c.lim.WriteTimeout; wt > 0 {
		// Refresh the deadline only when it has noticeably aged: the
		// effective timeout is between 7/8 and 8/8 of WriteTimeout.
		now := time.Now()
		if now.Sub(c.wdlSet) > wt/8 {
			_ = c.nc.SetWriteDeadline(now.Add(wt))
			c.wdlSet = now
		}
	}
	// Checked after the deadline: Close's past one may have been overwritten.
	return !c.killed.Load()
}

// writeReady writes the reply buffer straight to the socket from inside
// onReadable; what the socket does not take at once is written with
// net.Conn.Write, which waits for writability under the write deadline.
// Only that wait needs the deadline, so only it pays for reading the
// clock and setting it: a reply the socket takes at once costs one system
// call and nothing else.
func (c *Conn) writeReady() (int, error) {
	off := 0
	for off < len(c.wbuf) {
		n, err := writeRaw(c.fd, c.wbuf[off:])
		off += n
		switch {
		case err == syscall.EINTR:
		case err == syscall.EAGAIN || (err == nil && n == 0):
			if !c.armWrite() {
				return off, net.ErrClosed
			}
			m, err := c.nc.Write(c.wbuf[off:])
			return off + m, err
		case err != nil:
			return off, err
		}
	}
	return off, nil
}

// armRead sets the read deadline needed before the next Read (idle,
// auth, buffer shrink), calling SetReadDeadline only when it changes. It
// returns false when the server is shutting down.
func (c *Conn) armRead() bool {
	var dl time.Time
	lim := c.lim
	if lim.IdleTimeout > 0 {
		if c.fresh {
			if now := time.Now(); now.Sub(c.idleMark) >= c.idleGran {
				c.idleMark = now
			}
			c.fresh = false
		}
		dl = c.idleMark.Add(lim.IdleTimeout + c.idleGran)
	}
	// Oversized buffers are released once they are found empty when the
	// shrink deadline (armed once, not per request) fires.
	if len(c.rd.buf) > c.rd.lim.initSize() || cap(c.wbuf) > wbufKeep {
		if c.shrinkAt.IsZero() {
			c.shrinkAt = time.Now().Add(c.srv.shrinkDelay)
		}
		dl = earliest(dl, c.shrinkAt)
	} else {
		c.shrinkAt = time.Time{}
	}
	if lim.AuthRequired && !c.authed.Load() {
		dl = earliest(dl, c.authDeadline)
	}
	if !dl.Equal(c.rdl) {
		_ = c.nc.SetReadDeadline(dl)
		c.rdl = dl
	}
	// Checked after setting the deadline: Shutdown and Close set their
	// flag before waking readers, so a wake-up cannot be overwritten unseen.
	return !c.srv.shutting.Load() && !c.killed.Load()
}

// deadlineFired handles a read timeout. It returns true when the
// connection should keep reading (buffers were shrunk), false when it
// must close (idle or auth timeout, shutdown).
func (c *Conn) deadlineFired() bool {
	if c.srv.shutting.Load() {
		return false
	}
	now := time.Now()
	lim := c.lim
	c.rdl = time.Unix(0, 1) // force the next armRead to set a deadline
	if lim.AuthRequired && !c.authed.Load() && !now.Before(c.authDeadline) {
		c.srv.logger().Debug("resp: authentication timeout, closing connection", "id", c.id, "remote", c.remote)
		return false
	}
	if lim.IdleTimeout > 0 && !now.Before(c.idleMark.Add(lim.IdleTimeout+c.idleGran)) {
		c.srv.logger().Debug("resp: idle timeout, closing connection", "id", c.id, "remote", c.remote)
		return false
	}
	if !c.shrinkAt.IsZero() && !now.Before(c.shrinkAt) {
		c.rd.shrink() // no-op while a partial command is buffered
		if cap(c.wbuf) > wbufKeep {
			c.wbuf = make([]byte, 0, wbufInit) // always empty while reading
		}
		c.shrinkAt = time.Time{} // re-armed by armRead if still needed
	}
	return true
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// finish recovers a panic, closes the connection, calls OnClose and
// unregisters the connection.
func (c *Conn) finish() {
	if r := recover(); r != nil {
		c.srv.panicsRecovered.Add(1)
		c.srv.logger().Error("resp: panic serving connection, closing it",
			"id", c.id, "remote", c.remote, "panic", r, "stack", string(debug.Stack()))
	}
	c.nc.Close()
	c.rd.release() // the budget gets its bytes back, the GC the buffers
	c.wbuf = nil
	defer c.srv.untrack(c)
	if c.srv.OnClose != nil {
		defer func() {
			if r := recover(); r != nil {
				c.srv.panicsRecovered.Add(1)
				c.srv.logger().Error("resp: panic in OnClose",
					"id", c.id, "remote", c.remote, "panic", r, "stack", string(debug.Stack()))
			}
		}()
		c.srv.OnClose(c)
	}
}
