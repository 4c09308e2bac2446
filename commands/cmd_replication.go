package commands

import (
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/keyspace"
	"github.com/sluicehq/sluice/lease"
	"github.com/sluicehq/sluice/replication"
	"github.com/sluicehq/sluice/resp"
)

// Replication is the server's part in replication as the handlers see it;
// *replication.Node implements it. Nil: the replication commands answer
// that replication is off.
type Replication interface {
	// IsReplica reports whether the server follows a primary.
	IsReplica() bool
	// WriteGate says whether writes are served now (one atomic load);
	// AwaitGate waits out a FAILOVER's pause and says it again.
	WriteGate() replication.Gate
	AwaitGate() replication.Gate
	// Failover starts a planned handover (FAILOVER); AbortFailover is
	// FAILOVER ABORT. Both it and ReplicaOf wait for the writes running
	// (AwaitWrites, which the server hands the node).
	Failover(o replication.FailoverOptions) error
	AbortFailover() error
	// ReplicaOf follows host:port (REPLICAOF host port); already: it did.
	ReplicaOf(host string, port int) (already bool)
	// Promote stops following (REPLICAOF NO ONE); already: it did not.
	Promote() (already bool)
	// Wait is WAIT: how many replicas acknowledged every change so far.
	Wait(numreplicas int, timeout time.Duration) int
	// Status is INFO replication's and ROLE's source.
	Status() replication.Status
	// CanServe reports whether a replica could sync from this server now.
	CanServe() bool
	// ServeReplica streams to the replica that sent PSYNC on nc, until it
	// goes; it runs in the connection's goroutine.
	ServeReplica(nc net.Conn, buffered []byte, h replication.Hello)
}

// replicationCommands declares REPLICAOF (and SLAVEOF), ROLE, WAIT and the
// replica's handshake: REPLCONF and PSYNC.
func replicationCommands() []*Command {
	adminFlags := FlagAdmin | FlagNoScript | FlagStale
	adminCats := []string{"@admin", "@slow", "@dangerous"}
	replicaOf := func(name string) *Command {
		return &Command{Name: name, Arity: 3, Flags: adminFlags | FlagNoAsyncLoading, Categories: adminCats,
			Group: "server", Since: "0.3.0",
			Summary:    "Follows a primary (REPLICAOF host port) or stops following and serves writes (REPLICAOF NO ONE).",
			Complexity: "O(1)",
			Args:       []Arg{{Name: "host", Type: "string"}, {Name: "port", Type: "integer"}},
			Handler:    replicaOfCmd}
	}
	return []*Command{
		replicaOf("replicaof"),
		replicaOf("slaveof"),
		{Name: "role", Arity: 1, Flags: FlagNoScript | FlagLoading | FlagStale | FlagFast,
			Categories: []string{"@admin", "@fast", "@dangerous"}, Group: "server", Since: "0.3.0",
			Summary:    "Returns the replication role: master with its offset and replicas, or slave with its primary and link state.",
			Complexity: "O(1)", Handler: roleCmd},
		{Name: "wait", Arity: 3, Flags: FlagNoScript, Categories: []string{"@slow", "@connection"}, Group: "generic", Since: "0.3.0",
			Summary:    "Blocks until the given number of replicas acknowledged every change made so far, or the timeout (ms, 0: none) passes; returns how many did.",
			Complexity: "O(1)",
			Args:       []Arg{{Name: "numreplicas", Type: "integer"}, {Name: "timeout", Type: "integer"}},
			Handler:    waitCmd},
		{Name: "failover", Arity: -1, Flags: adminFlags, Categories: adminCats, Group: "server", Since: "0.3.0",
			Summary: "Hands the primary role over to a replica without losing an acknowledged change: writes pause until the " +
				"replica has everything, then it becomes the primary and this server its replica.",
			Complexity: "O(1)",
			Args: []Arg{
				{Name: "target", Type: "block", Token: "TO", Optional: true, Args: []Arg{
					{Name: "host", Type: "string"}, {Name: "port", Type: "integer"},
					{Name: "force", Type: "pure-token", Token: "FORCE", Optional: true}}},
				{Name: "abort", Type: "pure-token", Token: "ABORT", Optional: true},
				{Name: "milliseconds", Type: "integer", Token: "TIMEOUT", Optional: true},
			},
			Handler: failoverCmd},
		{Name: "replconf", Arity: -1, Flags: adminFlags | FlagAllowBusy, Categories: adminCats, Group: "server", Since: "0.3.0",
			Summary: "An internal command of the replication handshake.", Complexity: "O(1)", Handler: replconf},
		{Name: "psync", Arity: -3, Flags: adminFlags | FlagNoAsyncLoading | FlagNoMulti, Categories: adminCats, Group: "server", Since: "0.3.0",
			Summary:    "An internal command: a replica asks for the replication stream from an offset.",
			Complexity: "O(1)",
			Args:       []Arg{{Name: "replicationid", Type: "string"}, {Name: "offset", Type: "integer"}},
			Handler:    psync},
	}
}

// writeAllowed is the gate of every state-changing command (with
// replication on). The caller has marked the session as writing; the gate
// is read after that, so that a FAILOVER pausing writes either sees the
// mark (and waits for the command, see AwaitWrites) or is seen (and the
// command waits for it). A replica refuses with READONLY, a primary short
// of good replicas with NOREPLICAS; peeks (quantity 0) pass. A refusal
// clears the mark; otherwise the caller clears it once the command has
// run.
func (s *Server) writeAllowed(sess *session, cmd *Command, args [][]byte, c *resp.Conn) bool {
	for {
		g := s.repl.WriteGate()
		if g == replication.GateOpen || cmd.isPeek(args) {
			return true
		}
		sess.writing.Store(false)
		switch g {
		case replication.GatePaused:
			s.repl.AwaitGate()
			sess.writing.Store(true)
			if s.cluster != nil && cmd.FirstKey != 0 {
				// A FAILOVER under a control plane ends with a new map
				// applied: the write goes to the slot's new master.
				if e := s.route(sess, cmd, args); e != "" {
					s.refuseMarked(sess, cmd, true, c, e)
					return false
				}
			}
			continue
		case replication.GateNoReplicas:
			c.WriteError(errNoReplicas)
		default:
			c.WriteError(errReadOnly)
		}
		cmd.rejected.Add(1) // refused before it ran, as Redis counts READONLY
		return false
	}
}

// AwaitWrites returns true once every state-changing command that was
// running when it was called has ended, or false once bound has passed
// first (0: no bound). A command marks its session as writing before
// routing reads the cluster view and before it reads the replication gate
// (ServeRESP), so one that starts after the call sees what was published
// before it: FAILOVER and REPLICAOF call it (through
// replication.Node.SetQuiesce) once writes are paused or refused, a slot
// migration once the slot's writes are refused. A session that ended its
// command and started another is not waited for again.
func (s *Server) AwaitWrites(bound time.Duration) bool {
	var deadline time.Time
	if bound > 0 {
		deadline = time.Now().Add(bound)
	}
	s.mu.Lock()
	sessions := make([]*session, 0, len(s.sessions))
	for _, sess := range s.sessions {
		sessions = append(sessions, sess)
	}
	s.mu.Unlock()
	for _, sess := range sessions {
		if !sess.writing.Load() {
			continue
		}
		n := sess.commands.Load()
		for sess.writing.Load() && sess.commands.Load() == n {
			if !deadline.IsZero() && time.Now().After(deadline) {
				return false
			}
			time.Sleep(20 * time.Microsecond)
		}
	}
	return true
}

// isPeek reports whether a call of cmd asks for quantity 0, changing no
// state, which a replica serves.
func (cmd *Command) isPeek(args [][]byte) bool {
	if cmd.QuantityArg == 0 || len(args) <= cmd.QuantityArg {
		return false
	}
	q, err := parseInt(args[cmd.QuantityArg])
	return err == nil && q == 0
}

// replicaOfCmd serves REPLICAOF host port and REPLICAOF NO ONE.
func replicaOfCmd(s *Server, c *resp.Conn, args [][]byte) {
	if s.repl == nil {
		c.WriteError(errNoReplication)
		return
	}
	if s.manager != "" {
		c.WriteError(errRoleManaged("REPLICAOF", s.manager))
		return
	}
	client := sessionOf(c).addr
	if strings.EqualFold(string(args[1]), "no") && strings.EqualFold(string(args[2]), "one") {
		if !s.repl.Promote() {
			s.log.Warn("REPLICAOF NO ONE: now a primary, serving writes", "client", client)
		}
		c.WriteSimple("OK")
		return
	}
	port, err := parseInt(args[2])
	if err != nil || port < 0 || port > 65535 {
		c.WriteError(errMasterPort)
		return
	}
	host := string(args[1])
	if s.repl.ReplicaOf(host, int(port)) {
		c.WriteSimple("OK Already connected to specified master")
		return
	}
	s.log.Warn("REPLICAOF: now a replica, refusing writes", "primary", net.JoinHostPort(host, strconv.Itoa(int(port))), "client", client)
	c.WriteSimple("OK")
}

// roleCmd serves ROLE: ["master", offset, [[ip, port, offset]...]] or
// ["slave", host, port, state, offset].
func roleCmd(s *Server, c *resp.Conn, _ [][]byte) {
	if s.repl == nil {
		c.WriteArray(3)
		c.WriteBulkString("master")
		c.WriteInt(0)
		c.WriteArray(0)
		return
	}
	st := s.repl.Status()
	if st.Replica {
		c.WriteArray(5)
		c.WriteBulkString("slave")
		c.WriteBulkString(st.PrimaryHost)
		c.WriteInt(int64(st.PrimaryPort))
		c.WriteBulkString(st.LinkState)
		c.WriteInt(st.Offset)
		return
	}
	c.WriteArray(3)
	c.WriteBulkString("master")
	c.WriteInt(st.Offset)
	c.WriteArray(len(st.Replicas))
	for _, r := range st.Replicas {
		c.WriteArray(3)
		c.WriteBulkString(r.IP)
		c.WriteBulkString(strconv.Itoa(r.Port))
		c.WriteBulkString(strconv.FormatInt(max(r.Offset, 0), 10))
	}
}

// waitCmd serves WAIT numreplicas timeout, blocking the connection.
func waitCmd(s *Server, c *resp.Conn, args [][]byte) {
	n, err := parseInt(args[1])
	if err != nil {
		c.WriteError(errNotInteger)
		return
	}
	ms, err := parseInt(args[2])
	if err != nil {
		c.WriteError(errTimeoutInteger)
		return
	}
	if ms < 0 {
		c.WriteError(errTimeoutNeg)
		return
	}
	if s.repl == nil {
		c.WriteInt(0)
		return
	}
	if s.repl.IsReplica() {
		c.WriteError(errWaitOnReplica)
		return
	}
	timeout := time.Duration(min(ms, int64(time.Duration(1<<62)/time.Millisecond))) * time.Millisecond
	c.WriteInt(int64(s.repl.Wait(int(min(n, 1<<31)), timeout)))
}

// replconf serves REPLCONF option value ...: listening-port and
// ip-address (an IP address or a host name, as a Redis replica may
// announce) are kept for PSYNC; capa and the rest of the handshake are
// accepted; ACK and GETACK outside a replication link are ignored, as
// Redis does.
func replconf(s *Server, c *resp.Conn, args [][]byte) {
	if (len(args)-1)%2 != 0 {
		c.WriteError(errSyntax)
		return
	}
	for i := 1; i < len(args); i += 2 {
		switch opt := strings.ToLower(string(args[i])); opt {
		case "listening-port":
			port, err := parseInt(args[i+1])
			if err != nil || port < 0 || port > 65535 {
				c.WriteError(errNotInteger)
				return
			}
			sessionOf(c).listeningPort = int(port)
		case "ack", "getack":
			return // no reply, as on a replication link
		case "ip-address":
			if !announceable(args[i+1]) {
				c.WriteError(errReplconfIPAddress(args[i+1]))
				return
			}
			sessionOf(c).ipAddress = string(args[i+1])
		case "capa", "rdb-only", "rdb-filter-only", "rdb-channel":
		default:
			c.WriteError(errReplconfOption(args[i]))
			return
		}
	}
	c.WriteSimple("OK")
}

// announceable reports whether a replica's REPLCONF ip-address can name
// it: an IP address, or a host name (letters, digits, '-' and '.'; Redis
// 7 replicas may announce one). Anything else would garble INFO's
// slaveN:ip=...,port=... line.
func announceable(v []byte) bool {
	if len(v) == 0 || len(v) > 255 {
		return false
	}
	if _, err := netip.ParseAddr(string(v)); err == nil {
		return true
	}
	for _, b := range v {
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '.') {
			return false
		}
	}
	return true
}

// psync serves PSYNC replid offset: the connection becomes a replication
// link, served until the replica goes.
func psync(s *Server, c *resp.Conn, args [][]byte) {
	if s.repl == nil {
		c.WriteError(errNoReplication)
		return
	}
	failover := len(args) == 4 && strings.EqualFold(string(args[3]), "failover")
	if len(args) != 3 && !failover {
		c.WriteError(errSyntax)
		return
	}
	offset, err := parseInt(args[2])
	if err != nil {
		c.WriteError(errNotInteger)
		return
	}
	if failover {
		// The primary is handing over to this replica (its FAILOVER).
		if !s.repl.IsReplica() {
			c.WriteError(errPsyncFailoverMaster)
			return
		}
		s.repl.Promote()
		s.log.Warn("PSYNC FAILOVER: promoted by a FAILOVER of the primary, now a primary", "client", sessionOf(c).addr)
	}
	if !s.repl.CanServe() {
		c.WriteError(errNoMasterLink)
		return
	}
	sess := sessionOf(c)
	h := replication.Hello{ReplID: string(args[1]), Offset: offset, ListeningPort: sess.listeningPort,
		IPAddress: sess.ipAddress, Addr: sess.addr}
	repl := s.repl
	c.Detach(func(nc net.Conn, buffered []byte) { repl.ServeReplica(nc, buffered, h) })
}

// failoverCmd serves FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT ms].
func failoverCmd(s *Server, c *resp.Conn, args [][]byte) {
	if s.repl == nil {
		c.WriteError(errNoReplication)
		return
	}
	if s.manager != "" && s.cfg.ClusterHandover == nil {
		c.WriteError(errRoleManaged("FAILOVER", s.manager))
		return
	}
	var o replication.FailoverOptions
	if s.manager != "" {
		o.Handover = s.cfg.ClusterHandover
	}
	abort, to, timeout := false, false, false
	for i := 1; i < len(args); i++ {
		switch strings.ToUpper(string(args[i])) {
		case "TO":
			if to || i+2 >= len(args) {
				c.WriteError(errSyntax)
				return
			}
			port, err := parseInt(args[i+2])
			if err != nil || port < 0 || port > 65535 {
				c.WriteError(errNotInteger)
				return
			}
			o.Host, o.Port, to = string(args[i+1]), int(port), true
			i += 2
		case "FORCE":
			o.Force = true
		case "ABORT":
			abort = true
		case "TIMEOUT":
			if timeout || i+1 >= len(args) {
				c.WriteError(errSyntax)
				return
			}
			ms, err := parseInt(args[i+1])
			if err != nil {
				c.WriteError(errNotInteger)
				return
			}
			if ms <= 0 {
				c.WriteError(errFailoverTimeout)
				return
			}
			o.Timeout, timeout = time.Duration(min(ms, int64(time.Duration(1<<62)/time.Millisecond)))*time.Millisecond, true
			i++
		default:
			c.WriteError(errSyntax)
			return
		}
	}
	var err error
	switch {
	case abort && (to || timeout || o.Force):
		c.WriteError(errSyntax)
		return
	case abort:
		err = s.repl.AbortFailover()
	default:
		err = s.repl.Failover(o)
	}
	if err != nil {
		c.WriteError(errorReply(err))
		return
	}
	if !abort {
		s.log.Warn("FAILOVER: handing the primary role over", "to", o.Host, "port", o.Port, "client", sessionOf(c).addr)
	}
	c.WriteSimple("OK")
}

// replicationInfo fills INFO's replication section with Redis's fields.
func (s *Server) replicationInfo(kv func(string, any)) {
	if s.repl == nil {
		kv("role", "master")
		kv("connected_slaves", 0)
		return
	}
	st := s.repl.Status()
	if st.Replica {
		kv("role", "slave")
		kv("master_host", st.PrimaryHost)
		kv("master_port", st.PrimaryPort)
		kv("master_link_status", map[bool]string{true: "up", false: "down"}[st.LinkState == "connected"])
		kv("master_last_io_seconds_ago", seconds(st.LastIO))
		kv("master_sync_in_progress", boolInt(st.SyncInProgress))
		kv("slave_read_repl_offset", st.Offset)
		kv("slave_repl_offset", st.Offset)
		kv("slave_priority", 100)
		kv("slave_read_only", 1)
		kv("replica_announced", 1)
		if st.ClockKnown {
			kv("master_clock_offset_ms", st.ClockOffset.Milliseconds())
		}
		lag := int64(-1)
		if st.LagKnown {
			lag = st.Lag.Milliseconds()
		}
		kv("master_repl_lag_ms", lag)
		kv("slave_full_syncs", st.LinkFullSyncs)
		kv("slave_partial_syncs", st.LinkPartials)
	} else {
		kv("role", "master")
	}
	kv("connected_slaves", len(st.Replicas))
	for i, r := range st.Replicas {
		kv(fmt.Sprintf("slave%d", i), fmt.Sprintf("ip=%s,port=%d,state=%s,offset=%d,lag=%d",
			r.IP, r.Port, r.State, max(r.Offset, 0), int64(r.Lag/time.Second)))
	}
	kv("master_failover_state", st.FailoverState)
	kv("master_replid", st.ReplID)
	kv("master_replid2", st.ReplID2)
	kv("master_repl_offset", st.Offset)
	kv("second_repl_offset", st.SecondOffset)
	kv("repl_backlog_active", 1)
	kv("repl_backlog_size", st.Backlog.Size)
	kv("repl_backlog_first_byte_offset", st.Backlog.First+1)
	kv("repl_backlog_histlen", st.Backlog.End-st.Backlog.First)
	kv("sync_full", st.SyncFull)
	kv("sync_partial_ok", st.SyncPartialOK)
	kv("sync_partial_err", st.SyncPartialErr)
}

// seconds is d in whole seconds, -1 for a negative d (never).
func seconds(d time.Duration) int64 {
	if d < 0 {
		return -1
	}
	return int64(d / time.Second)
}

// digest serves DEBUG DIGEST: 40 hex digits summing up every key's state
// that still matters at now (expired state, and expired leases within a
// key's set, are left out, as a replica may already have dropped them),
// independent of the order keys are stored in; "000...0" when there is
// none. A primary and a replica that applied the same stream agree.
func (s *Server) digest() string {
	now := s.clock.Now()
	var sum [sha1.Size]byte
	var buf []byte
	s.keys.Range(func(ch keyspace.Change) {
		if ch.Expires <= now {
			return
		}
		value := ch.Value
		if ch.Kind == keyspace.Lease {
			ls, err := lease.Decode(value)
			if err != nil {
				return
			}
			live := lease.Live(ls, now)
			if len(live) == 0 {
				return
			}
			value = lease.Encode(nil, live)
			ch.Expires = lease.Last(live)
		}
		buf = append(buf[:0], byte(ch.Kind))
		buf = binary.AppendUvarint(buf, uint64(len(ch.Key)))
		buf = append(buf, ch.Key...)
		buf = binary.LittleEndian.AppendUint64(buf, uint64(ch.Expires))
		buf = append(buf, value...)
		h := sha1.Sum(buf)
		for i := range sum {
			sum[i] ^= h[i]
		}
	})
	return hex.EncodeToString(sum[:])
}
