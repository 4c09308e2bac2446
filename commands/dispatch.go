package commands

import (
	"time"

	"github.com/sluicehq/sluice/acl"
	"github.com/sluicehq/sluice/resp"
)

// latencySampleEvery is how often a connection adds a command's duration
// to the latency histogram: one call in this many, so that connections do
// not all write the histogram's shared counters on every call.
const latencySampleEvery = 16

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
			s.rejected.Add(1) // no command to count it on, as in Redis
			c.WriteError(errUnknownSubcommand(args[1], cmd.Name))
			return
		}
		cmd = sub
	}
	if !cmd.arityOK(len(args)) {
		s.rejected.Add(1)
		cmd.rejected.Add(1)
		c.WriteError(errArity(cmd.FullName()))
		return
	}
	if !c.Authenticated() && !cmd.Flags.Has(FlagNoAuth) {
		s.deniedCmd.Add(1)
		cmd.rejected.Add(1)
		c.WriteError(errNoAuth)
		return
	}
	if user := sess.user.Load(); !user.AllCommands() || !user.AllKeys() {
		// Commands that authenticate (AUTH, HELLO, flagged no_auth) are
		// never denied, as in Redis: "user default off" must not lock
		// everyone out.
		if !cmd.Flags.Has(FlagNoAuth) && !user.CanRun(cmd.acl) {
			s.deniedCmd.Add(1)
			cmd.rejected.Add(1)
			c.WriteError(errNoPermCmd(user.Name, cmd.FullName()))
			return
		}
		if !user.AllKeys() && !s.keysAllowed(user, cmd, args) {
			s.deniedKey.Add(1)
			cmd.rejected.Add(1)
			c.WriteError(errNoPermKey)
			return
		}
	}
	if s.loading.Load() != nil && !cmd.Flags.Has(FlagLoading) {
		cmd.rejected.Add(1)
		c.WriteError(errLoading)
		return
	}
	// A state-changing command is marked as writing before routing reads
	// the cluster view and before the replication gate is read, so that a
	// FAILOVER pausing writes, a REPLICAOF refusing them, or a slot
	// migration refusing a slot's writes, either sees the mark and waits
	// for the command (AwaitWrites) or is seen by it.
	writing := cmd.Flags&FlagWrite != 0 && (s.repl != nil || s.cluster != nil)
	if writing {
		sess.writing.Store(true)
	}
	if s.cluster != nil && cmd.FirstKey != 0 {
		if e := s.route(sess, cmd, args); e != "" {
			s.refuseMarked(sess, cmd, writing, c, e)
			return
		}
	}
	if s.cfg.MaxMemory > 0 && cmd.Flags&FlagDenyOOM != 0 && s.overMemory() {
		s.oomRejected.Add(1)
		s.refuseMarked(sess, cmd, writing, c, errOOM)
		return
	}
	if writing && s.repl != nil && !s.writeAllowed(sess, cmd, args, c) {
		return
	}
	if writing && s.cfg.EnableDebug {
		s.heldWrites.hold() // DEBUG HOLD-WRITES: a write in flight, for tests
	}
	sess.lastCmd.Store(&cmd.Name)
	s.run(cmd, sess, c, args)
	if writing {
		sess.writing.Store(false)
	}
}

// refuseMarked answers a call of cmd refused before it ran with e, ending
// its writing mark.
func (s *Server) refuseMarked(sess *session, cmd *Command, writing bool, c *resp.Conn, e string) {
	if writing {
		sess.writing.Store(false)
	}
	s.rejected.Add(1)
	cmd.rejected.Add(1)
	c.WriteError(e)
}

// keysAllowed checks every key of a call against the user's key patterns.
func (s *Server) keysAllowed(u *acl.User, cmd *Command, args [][]byte) bool {
	if cmd.FirstKey == 0 {
		return true
	}
	last := cmd.LastKey
	if last < 0 {
		last += len(args)
	}
	for i := cmd.FirstKey; i <= last && i < len(args); i += max(cmd.Step, 1) {
		if !u.CanAccess(args[i]) {
			return false
		}
	}
	return true
}

// run executes cmd and counts it: its calls, its time, whether it failed
// (replied an error), the latency histogram (one call in
// latencySampleEvery) and the slow log.
//
// Timing costs one clock read per command in a pipelined batch (two for
// a command alone), and the handler's instant comes from the same read
// (see clock.Settable.Stamp and Server.now): a command's start is the
// end of the command before it on the connection when nothing was read,
// flushed or waited for between the two (the parse of the next command is
// all that separates them); otherwise, as for the first command of a
// batch, the clock is read before the command too. So a command's usec
// includes parsing it, which Redis's does not, and nothing else.
//
// When replies wait for durability (fsync always), a command that recorded
// a change (an admission, a refund, a DEL, a FLUSHALL, a lease...) sets a
// barrier on the connection: its reply, and the rest of a pipelined batch
// with it, leaves only once the change is synced, all the batch sharing
// one wait. Handlers need not know. A change recorded meanwhile by another
// connection can make a refusal wait too, which costs time, never safety.
// Otherwise (in memory, everysec, no) this is one nil check. The wait is
// not part of the command's time: it happens when the batch is flushed.
//
// With --min-replicas-ack N the same barrier also waits until N replicas
// acknowledged the change (the replication stream's offset moved), the
// replies of every connection sharing the acknowledgements. Only
// state-changing commands (not their peeks) wait for replicas: a read
// that ran while another connection's change was streamed must not wait
// for, or fail with, acknowledgements that are not its own.
func (s *Server) run(cmd *Command, sess *session, c *resp.Conn, args [][]byte) {
	p, a := s.durable, s.acks
	if a != nil && (cmd.Flags&FlagWrite == 0 || cmd.isPeek(args)) {
		a = nil
	}
	var recorded uint64
	var offset int64
	if p != nil {
		recorded = p.Recorded()
	}
	if a != nil {
		offset = a.StreamOffset()
	}
	seq := sess.commands.Load()
	pending := c.Pending()
	if pending == 0 || sess.stampSeq != seq-1 {
		// The first command of a batch, or one after a refused command
		// or a flush: the previous stamp is not this command's start.
		sess.now, sess.mono = s.clock.Stamp()
	}
	start := sess.mono
	cmd.Handler(s, c, args)
	sess.now, sess.mono = s.clock.Stamp()
	sess.stampSeq = seq
	d := sess.mono - start
	// Counted once it ran, as Redis counts: INFO commandstats does not
	// count itself, and CONFIG RESETSTAT counts its own call.
	cmd.calls.Add(1)
	cmd.nanos.Add(uint64(d))
	if c.IsError(pending) {
		cmd.failed.Add(1)
	}
	if sess.sample++; sess.sample%latencySampleEvery == 0 {
		s.latency.observe(time.Duration(d))
	}
	if d >= s.slowlog.slowerThan {
		s.slowlog.add(cmd, sess, args, d, sess.now)
	}
	switch {
	case a != nil && a.StreamOffset() != offset:
		if sess.awaitReplies == nil {
			sess.awaitReplies = func() error { sess.acksPending = false; return s.awaitReplies() }
		}
		sess.acksPending = true
		c.Barrier(sess.awaitReplies)
	case p != nil && p.Recorded() != recorded && !sess.acksPending:
		// (A barrier set by an earlier command of the batch that waits for
		// replicas waits for the sync too: it is kept.)
		c.Barrier(s.waitDurable)
	}
}

// now is the server clock's instant for the command running on c, stamped
// by run (see Settable.Stamp): handlers read it instead of the clock.
func (s *Server) now(c *resp.Conn) int64 {
	if sess, ok := c.Context().(*session); ok {
		return sess.now
	}
	return s.clock.Now()
}
