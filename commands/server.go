package commands

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/gcra"
	"github.com/sluicehq/sluice/resp"
)

// Version is Sluice's version, reported by INFO, HELLO and --version.
const Version = "0.1.0"

// redisVersion is the Redis version whose protocol and commands Sluice
// speaks; clients that gate features on redis_version read it.
const redisVersion = "7.2.0"

// Config configures a Server. The zero value of every field but Table is a
// working default.
type Config struct {
	Table       *gcra.Table         // the state; required
	Clock       *gcra.SettableClock // nil: the system clock
	Logger      *slog.Logger        // nil: slog.Default()
	EnableDebug bool                // allow DEBUG (the clock controls tests use)
	// NetStats reports the network layer's counters for INFO; nil reports zeros.
	NetStats func() resp.Stats
	// Settings are the effective configuration, shown by CONFIG GET and INFO.
	Settings []Setting
	// Users are the accounts; nil means only the default user, without a
	// password. The network layer's AuthRequired must be Users.AuthRequired().
	Users *Users
	// Protected refuses clients that are not on a loopback address with
	// Redis's -DENIED reply (protected mode: no password is set).
	Protected bool
	// Persistence is the durable copy of Table, which must journal to it;
	// nil runs in memory only.
	Persistence Persistence
}

// Setting is one named configuration value.
type Setting struct {
	Name, Value string
}

// Server executes commands. It implements resp.Handler; use it as the
// Handler of a resp.Server with OnOpen and OnClose wired to its methods.
type Server struct {
	cfg     Config
	table   *gcra.Table
	clock   *gcra.SettableClock
	log     *slog.Logger
	cmds    *registry
	started time.Time

	mu       sync.Mutex
	sessions map[uint64]*session

	commandsDone atomic.Uint64 // commands of sessions that have ended
	rejected     atomic.Uint64 // calls refused before running (unknown, arity)
	authFailures atomic.Uint64 // AUTH and HELLO AUTH with bad credentials
	deniedCmd    atomic.Uint64 // NOAUTH and NOPERM for a command
	deniedKey    atomic.Uint64 // NOPERM for a key
	latency      Latency

	throttleCmd, clThrottleCmd *Command     // for per-command decision counts
	waitDurable                func() error // s.waitDurableFn, bound once (no allocation per call)
	// durable is cfg.Persistence when its replies wait for durability
	// (RepliesWait), else nil: then no command sets a barrier.
	durable Persistence

	beyond *beyond // state of the commands beyond redis-cell (beyond.go)

	// isLocal tells loopback clients for protected mode; tests replace it
	// to see the refusal without a second network.
	isLocal func(addr string) bool
}

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
	user     atomic.Pointer[User]
	commands atomic.Uint64
	scratch  [32]byte // lower-casing buffer for dispatch
	sample   uint32   // calls since the last latency sample
}

// NewServer returns a Server over cfg.Table.
func NewServer(cfg Config) *Server {
	if cfg.Clock == nil {
		cfg.Clock = gcra.NewSettableClock(gcra.NewSystemClock())
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Users == nil {
		cfg.Users = NewUsers("")
	}
	if cfg.NetStats == nil {
		cfg.NetStats = func() resp.Stats { return resp.Stats{} }
	}
	s := &Server{
		cfg:      cfg,
		table:    cfg.Table,
		clock:    cfg.Clock,
		log:      cfg.Logger,
		cmds:     newRegistry(commandTable()),
		started:  time.Now(),
		sessions: map[uint64]*session{},
		beyond:   newBeyond(),
		isLocal:  isLoopback,
	}
	s.throttleCmd, s.clThrottleCmd = s.cmds.byName["throttle"], s.cmds.byName["cl.throttle"]
	s.waitDurable = s.waitDurableFn
	if p := cfg.Persistence; p != nil {
		if p.RepliesWait() {
			s.durable = p
		}
		s.beyond.windows.SetJournal(nsJournal{p, windowNS})
		s.beyond.leases.SetJournal(nsJournal{p, leaseNS})
	}
	return s
}

// Clock is the server's clock (frozen and released by DEBUG CLOCK).
func (s *Server) Clock() *gcra.SettableClock { return s.clock }

// Commands lists the command table, sorted by name.
func (s *Server) Commands() []*Command { return s.cmds.sorted }

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

// ServeRESP executes one command.
func (s *Server) ServeRESP(c *resp.Conn, args [][]byte) {
	sess, ok := c.Context().(*session)
	if !ok { // a conn that was not opened through OpenConn
		s.OpenConn(c)
		sess = c.Context().(*session)
	}
	sess.commands.Add(1)
	cmd := s.cmds.lookup(args[0], &sess.scratch)
	if cmd == nil {
		s.rejected.Add(1)
		c.WriteError(errUnknownCommand(args))
		return
	}
	if len(cmd.Subs) > 0 && len(args) >= 2 {
		sub := cmd.sub(args[1])
		if sub == nil {
			s.rejected.Add(1)
			c.WriteError(errUnknownSubcommand(args[1], cmd.Name))
			return
		}
		cmd = sub
	}
	if !cmd.arityOK(len(args)) {
		s.rejected.Add(1)
		c.WriteError(errArity(cmd.FullName()))
		return
	}
	if !c.Authenticated() && !cmd.hasFlag("noauth") {
		s.deniedCmd.Add(1)
		c.WriteError(errNoAuth)
		return
	}
	if user := sess.user.Load(); !user.allowAll || !user.allKeys {
		if !user.canRun(cmd) {
			s.deniedCmd.Add(1)
			c.WriteError(errNoPermCmd(user.Name, cmd.FullName()))
			return
		}
		if !user.allKeys && !s.keysAllowed(user, cmd, args) {
			s.deniedKey.Add(1)
			c.WriteError(errNoPermKey)
			return
		}
	}
	sess.lastCmd.Store(&cmd.Name)
	s.run(cmd, sess, c, args)
}

// keysAllowed checks every key of a call against the user's key patterns.
func (s *Server) keysAllowed(u *User, cmd *Command, args [][]byte) bool {
	if cmd.FirstKey == 0 {
		return true
	}
	last := cmd.LastKey
	if last < 0 {
		last += len(args)
	}
	for i := cmd.FirstKey; i <= last && i < len(args); i += max(cmd.Step, 1) {
		if !u.canAccess(args[i]) {
			return false
		}
	}
	return true
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
		sess.user.Store(&User{Name: "default"})
	}
	return sess
}
