package resp

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Default limits, used when the corresponding Server field is zero.
const (
	DefaultMaxClients        = 10000
	DefaultMaxBulkLen        = 1 << 20 // 1 MiB
	DefaultMaxArgs           = 65536
	DefaultMaxInlineLen      = 64 << 10 // 64 KiB
	DefaultMaxQueryBuffer    = 32 << 20 // 32 MiB
	DefaultPreAuthMaxArgs    = 10
	DefaultPreAuthMaxBulkLen = 16384
	DefaultMaxPendingReply   = 1 << 20 // 1 MiB
	DefaultWriteTimeout      = 10 * time.Second
	DefaultAuthTimeout       = 10 * time.Second
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("resp: server closed")

// maxPerIPReply is sent to connections refused because of MaxClientsPerIP.
const maxPerIPReply = "-ERR max number of clients per IP reached\r\n"

// hostOf returns the host part of a "host:port" address.
func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// maxClientsReply is sent to connections refused because of MaxClients.
const maxClientsReply = "-ERR max number of clients reached\r\n"

// Handler serves one command.
type Handler interface {
	// ServeRESP handles one command. args[0] is the command name, as sent.
	// args alias the connection's read buffer and are valid only during
	// the call: copy what must be kept. Replies are written with the
	// c.Write* methods. ServeRESP is called from the connection's own
	// goroutine, so calls for one connection never overlap.
	ServeRESP(c *Conn, args [][]byte)
}

// HandlerFunc adapts a function to the Handler interface.
type HandlerFunc func(c *Conn, args [][]byte)

// ServeRESP calls f(c, args).
func (f HandlerFunc) ServeRESP(c *Conn, args [][]byte) { f(c, args) }

// Server accepts connections and serves RESP requests with Handler.
//
// Fields must be set before Serve is called and not changed afterwards.
// A limit field that is zero (or negative) means its documented default.
type Server struct {
	// Handler serves every command. Required.
	Handler Handler
	// Logger receives debug, warning and error records; nil means
	// slog.Default().
	Logger *slog.Logger
	// OnOpen, if set, is called in the connection's goroutine before the
	// first read. It may write a reply (sent before the first read).
	OnOpen func(c *Conn)
	// OnClose, if set, is called exactly once when a served connection
	// ends, in its goroutine, after the network connection is closed.
	OnClose func(c *Conn)

	// MaxClients is the maximum number of connected clients. Default
	// 10000. Extra connections get "-ERR max number of clients reached"
	// and are closed; they are counted in Stats.Rejected.
	MaxClients int
	// MaxClientsPerIP caps the connections from one IP address; 0 (the
	// default) means no cap. Extra connections get "-ERR max number of
	// clients per IP reached" and are counted in Stats.Rejected.
	MaxClientsPerIP int
	// MaxBulkLen is the maximum length of one bulk argument
	// ("proto-max-bulk-len"). Default 1 MiB.
	MaxBulkLen int64
	// MaxArgs is the maximum number of arguments of a command. Default
	// 65536.
	MaxArgs int
	// MaxInlineLen is the maximum length of an inline command line.
	// Default 64 KiB.
	MaxInlineLen int
	// MaxQueryBuffer caps a connection's read buffer, and so the size of
	// one command. Default 32 MiB. Must be greater than MaxBulkLen.
	MaxQueryBuffer int
	// MaxQueryBufferTotal bounds the bytes all connections' read buffers
	// hold beyond the 16 KiB each starts with (a partial large command, a
	// burst of pipelined ones). A connection whose buffer would grow past
	// it is closed, with a log line, as Redis closes clients over its query
	// buffer limits; Stats.EvictedClients counts them. A closed
	// connection's buffers are given back at once. Default 256 MiB; must
	// be at least MaxQueryBuffer.
	MaxQueryBufferTotal int64
	// PreAuthMaxArgs caps the argument count of commands received while
	// the connection is not authenticated. Default 10 (as Redis since
	// CVE-2021-32675).
	PreAuthMaxArgs int
	// PreAuthMaxBulkLen caps bulk lengths while the connection is not
	// authenticated. Default 16384.
	PreAuthMaxBulkLen int64
	// MaxPendingReply is the reply buffer size at which a connection
	// flushes in the middle of a pipelined batch before parsing more.
	// Default 1 MiB.
	MaxPendingReply int
	// WriteTimeout bounds each flush; a client that does not read its
	// replies is closed when it elapses. Default 10s; negative disables.
	WriteTimeout time.Duration
	// IdleTimeout closes a connection that sends nothing for this long
	// ("timeout" in Redis). Default 0: never.
	IdleTimeout time.Duration
	// AuthTimeout closes a connection that is still not authenticated
	// this long after it was accepted. Only used when AuthRequired.
	// Default 10s.
	AuthTimeout time.Duration
	// AuthRequired makes new connections start unauthenticated, so the
	// pre-auth caps apply until the handler calls SetAuthenticated(true).
	// Default false: connections start authenticated.
	AuthRequired bool

	initOnce    sync.Once
	lim         Limits
	initErr     error
	shrinkDelay time.Duration // buffer release delay; tests shorten it
	plainReads  bool          // read plain sockets with net.Conn.Read too; tests set it
	queryBufs   queryBudget   // grown read buffers of all connections

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*Conn]struct{}
	perIP     map[string]int
	shutting  atomic.Bool
	done      chan struct{} // closed when shutting down

	nextID          atomic.Uint64
	connected       atomic.Int64
	totalConns      atomic.Uint64
	rejected        atomic.Uint64
	protocolErrors  atomic.Uint64
	panicsRecovered atomic.Uint64
	bytesIn         atomic.Uint64
	bytesOut        atomic.Uint64
	evicted         atomic.Uint64
	wouldBlock      atomic.Uint64 // serveReady reads that found nothing (EAGAIN)
}

// Limits are the effective limits of a Server, with defaults applied.
type Limits struct {
	MaxClients        int
	MaxClientsPerIP   int // 0 means no cap
	MaxBulkLen        int64
	MaxArgs           int
	MaxInlineLen      int
	MaxQueryBuffer    int
	PreAuthMaxArgs    int
	PreAuthMaxBulkLen int64
	MaxPendingReply   int
	WriteTimeout      time.Duration // 0 means none
	IdleTimeout       time.Duration // 0 means none
	AuthTimeout       time.Duration
	AuthRequired      bool

	MaxQueryBufferTotal int64
}

// Stats are a Server's counters.
type Stats struct {
	Connected        int64  // currently served connections
	TotalConnections uint64 // connections accepted and served
	Rejected         uint64 // connections refused because of MaxClients
	ProtocolErrors   uint64 // connections closed for malformed input
	PanicsRecovered  uint64 // panics recovered in connection goroutines
	BytesIn          uint64 // bytes read from clients
	BytesOut         uint64 // bytes written to clients
	// QueryBufferBytes is what MaxQueryBufferTotal bounds: the bytes all
	// connections' read buffers hold beyond their initial 16 KiB.
	QueryBufferBytes int64
	// EvictedClients counts connections closed because their read buffer
	// would have taken the total past MaxQueryBufferTotal.
	EvictedClients uint64
}

func orDefault[T int | int64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Limits returns the effective limits (defaults applied), e.g. for INFO.
func (s *Server) Limits() Limits {
	l := Limits{
		MaxClients:        orDefault(s.MaxClients, DefaultMaxClients),
		MaxClientsPerIP:   max(s.MaxClientsPerIP, 0),
		MaxBulkLen:        orDefault(s.MaxBulkLen, DefaultMaxBulkLen),
		MaxArgs:           orDefault(s.MaxArgs, DefaultMaxArgs),
		MaxInlineLen:      orDefault(s.MaxInlineLen, DefaultMaxInlineLen),
		MaxQueryBuffer:    orDefault(s.MaxQueryBuffer, DefaultMaxQueryBuffer),
		PreAuthMaxArgs:    orDefault(s.PreAuthMaxArgs, DefaultPreAuthMaxArgs),
		PreAuthMaxBulkLen: orDefault(s.PreAuthMaxBulkLen, DefaultPreAuthMaxBulkLen),
		MaxPendingReply:   orDefault(s.MaxPendingReply, DefaultMaxPendingReply),
		WriteTimeout:      s.WriteTimeout,
		IdleTimeout:       max(s.IdleTimeout, 0),
		AuthTimeout:       orDefault(s.AuthTimeout, DefaultAuthTimeout),
		AuthRequired:      s.AuthRequired,

		MaxQueryBufferTotal: orDefault(s.MaxQueryBufferTotal, DefaultMaxQueryBufferTotal),
	}
	switch {
	case l.WriteTimeout == 0:
		l.WriteTimeout = DefaultWriteTimeout
	case l.WriteTimeout < 0:
		l.WriteTimeout = 0
	}
	return l
}

func (s *Server) init() error {
	s.initOnce.Do(func() {
		s.lim = s.Limits()
		if int64(s.lim.MaxQueryBuffer) <= s.lim.MaxBulkLen {
			s.initErr = errors.New("resp: MaxQueryBuffer must be greater than MaxBulkLen")
		}
		if s.lim.MaxQueryBufferTotal < int64(s.lim.MaxQueryBuffer) {
			s.initErr = errors.New("resp: MaxQueryBufferTotal must be at least MaxQueryBuffer")
		}
		s.queryBufs.limit = s.lim.MaxQueryBufferTotal
		if s.Handler == nil {
			s.initErr = errors.New("resp: Server.Handler is nil")
		}
		s.listeners = make(map[net.Listener]struct{})
		s.conns = make(map[*Conn]struct{})
		s.perIP = make(map[string]int)
		s.done = make(chan struct{})
		if s.shrinkDelay <= 0 {
			s.shrinkDelay = defaultShrinkDelay
		}
	})
	return s.initErr
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// Stats returns the server's counters. It is cheap (atomic loads).
func (s *Server) Stats() Stats {
	return Stats{
		Connected:        s.connected.Load(),
		TotalConnections: s.totalConns.Load(),
		Rejected:         s.rejected.Load(),
		ProtocolErrors:   s.protocolErrors.Load(),
		PanicsRecovered:  s.panicsRecovered.Load(),
		BytesIn:          s.bytesIn.Load(),
		BytesOut:         s.bytesOut.Load(),
		QueryBufferBytes: s.queryBufs.used.Load(),
		EvictedClients:   s.evicted.Load(),
	}
}

// Serve accepts connections on ln and serves each in its own goroutine.
// It blocks until the listener fails or the server is shut down, in which
// case it returns ErrServerClosed. Serve may be called for several
// listeners. ln is closed when Serve returns.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.init(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.shutting.Load() {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()

	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.shutting.Load() {
				return ErrServerClosed
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.logger().Warn("resp: accept error, retrying", "err", err, "delay", delay)
				t := time.NewTimer(delay)
				select {
				case <-t.C:
				case <-s.done:
					t.Stop()
				}
				continue
			}
			return err
		}
		delay = 0
		s.accept(nc)
	}
}

// accept registers nc and starts its goroutine, or refuses it.
func (s *Server) accept(nc net.Conn) {
	s.mu.Lock()
	if s.shutting.Load() {
		s.mu.Unlock()
		nc.Close()
		return
	}
	ip := hostOf(nc.RemoteAddr().String())
	reply := ""
	switch {
	case len(s.conns) >= s.lim.MaxClients:
		reply = maxClientsReply
	case s.lim.MaxClientsPerIP > 0 && s.perIP[ip] >= s.lim.MaxClientsPerIP:
		reply = maxPerIPReply
	}
	if reply != "" {
		s.mu.Unlock()
		s.rejected.Add(1)
		s.logger().Debug("resp: refusing connection", "remote", nc.RemoteAddr().String(), "reply", reply[1:len(reply)-2])
		// Off the accept loop: a TLS handshake may precede the write.
		go func() {
			_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
			if n, _ := nc.Write([]byte(reply)); n > 0 {
				s.bytesOut.Add(uint64(n))
			}
			nc.Close()
		}()
		return
	}
	c := newConn(s, nc)
	s.perIP[ip]++
	s.conns[c] = struct{}{}
	s.connected.Store(int64(len(s.conns)))
	s.mu.Unlock()
	s.totalConns.Add(1)
	go c.serve()
}

func (s *Server) untrack(c *Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	ip := hostOf(c.remote)
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
	s.connected.Store(int64(len(s.conns)))
	s.mu.Unlock()
}

// beginShutdown marks the server closed and closes its listeners.
func (s *Server) beginShutdown() error {
	_ = s.init() // make the maps, even if Serve was never called
	var err error
	s.mu.Lock()
	if !s.shutting.Swap(true) {
		close(s.done)
	}
	for ln := range s.listeners {
		if cerr := ln.Close(); cerr != nil && err == nil && !errors.Is(cerr, net.ErrClosed) {
			err = cerr
		}
	}
	s.mu.Unlock()
	return err
}

// Shutdown gracefully stops the server: it stops accepting, lets every
// connection finish the commands it has already read and flush their
// replies, wakes connections blocked in Read, and waits until all
// connection goroutines have returned or ctx is done (then it returns
// ctx.Err(); call Close to force). Serve returns ErrServerClosed.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.beginShutdown()
	s.mu.Lock()
	for c := range s.conns {
		c.wake()
	}
	s.mu.Unlock()

	poll := time.Millisecond
	t := time.NewTimer(poll)
	defer t.Stop()
	for {
		if s.connected.Load() == 0 {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			poll = min(2*poll, 50*time.Millisecond)
			t.Reset(poll)
		}
	}
}

// Close immediately closes the listeners and all connections, without
// waiting for connection goroutines to return.
func (s *Server) Close() error {
	err := s.beginShutdown()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	return err
}
