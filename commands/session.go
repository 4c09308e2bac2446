package commands

import (
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/acl"
	"github.com/sluicehq/sluice/resp"
	"github.com/sluicehq/sluice/topkeys"
)

// session is the per-connection state kept in resp.Conn's context.
type session struct {
	id       uint64
	addr     string
	laddr    string
	created  time.Time
	name     atomic.Pointer[string]
	libName  atomic.Pointer[string]
	libVer   atomic.Pointer[string]
	lastCmd  atomic.Pointer[string]
	user     atomic.Pointer[acl.User]
	commands atomic.Uint64
	scratch  [maxNameLen]byte // lower-casing buffer for dispatch
	sample   uint32           // calls since the last latency sample
	// now and mono are the last stamp of the clock on this connection
	// (see run): the server clock's instant, which handlers read through
	// Server.now, and a monotonic reading; stampSeq is the number (in
	// commands) of the command that took it at its end. Only the
	// connection's goroutine touches them.
	now, mono int64
	stampSeq  uint64
	// listeningPort is a replica's REPLCONF listening-port, for PSYNC.
	listeningPort int
	// ipAddress is a replica's REPLCONF ip-address, for PSYNC.
	ipAddress string
	// writing is set while a state-changing command is routed, gated and
	// run (see ServeRESP, writeAllowed and AwaitWrites).
	writing atomic.Bool
	topKeys topkeys.Sampler // which decisions THROTTLE.TOP records (cmd_top.go)
	// authFailed counts failed AUTH on this connection (see
	// authConnFailures); only the connection's goroutine touches it.
	authFailed int
	// readonly is set by READONLY (cluster mode): reads of a replica's
	// master's slots run here. Only the connection's goroutine touches it.
	readonly bool
	// acksPending says the connection's barrier waits for replicas'
	// acknowledgements (--min-replicas-ack) until its replies are flushed;
	// awaitReplies is that barrier, made on the first use. Only the
	// connection's goroutine touches them.
	acksPending  bool
	awaitReplies func() error
}

// OpenConn registers a new connection; wire it to resp.Server.OnOpen.
func (s *Server) OpenConn(c *resp.Conn) {
	sess := &session{id: c.ID(), addr: c.RemoteAddr(), laddr: c.LocalAddr(), created: time.Now()}
	sess.user.Store(s.cfg.Users.Default())
	c.SetContext(sess)
	if s.cfg.Protected && !s.isLocal(sess.addr) {
		s.log.Warn("protected mode: refused a non-loopback client", "client", sess.addr)
		c.WriteError(errDenied)
		c.CloseAfterReply()
	}
	s.mu.Lock()
	s.sessions[sess.id] = sess
	s.mu.Unlock()
}

// CloseConn forgets a connection; wire it to resp.Server.OnClose.
func (s *Server) CloseConn(c *resp.Conn) {
	sess, ok := c.Context().(*session)
	if !ok {
		return
	}
	s.mu.Lock()
	delete(s.sessions, sess.id)
	s.mu.Unlock()
	s.commandsDone.Add(sess.commands.Load())
}

// commandsProcessed counts the commands of every session, ended or not.
func (s *Server) commandsProcessed() uint64 {
	n := s.commandsDone.Load()
	s.mu.Lock()
	for _, sess := range s.sessions {
		n += sess.commands.Load()
	}
	s.mu.Unlock()
	return n
}

// isLoopback reports whether a "host:port" address is on a loopback interface.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// sessionOf returns the connection's session.
func sessionOf(c *resp.Conn) *session {
	sess, _ := c.Context().(*session)
	if sess == nil {
		sess = &session{id: c.ID()}
		sess.user.Store(&acl.User{Name: "default"})
	}
	return sess
}
