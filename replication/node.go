package replication

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/keyspace"
)

// Defaults of the Config fields that are durations.
const (
	DefaultTimeout    = 60 * time.Second
	DefaultPingPeriod = time.Second
	// DefaultMinReplicasMaxLag is min-replicas-max-lag's default, as
	// Redis's.
	DefaultMinReplicasMaxLag = 10 * time.Second
	// DefaultBacklogSize is repl-backlog-size's default, as Redis's.
	DefaultBacklogSize = 1 << 20
	// DefaultAckTimeout is how long an admitting reply waits for
	// AckReplicas acknowledgements by default.
	DefaultAckTimeout = time.Second
	// DefaultBufferLimit is how far a replica may fall behind before it is
	// disconnected, as Redis's client-output-buffer-limit for replicas.
	DefaultBufferLimit = 256 << 20
)

// writesBound is how long REPLICAOF host port waits for the writes that
// passed the gate before it closed (they take microseconds). Past it, the
// command returns and the node follows its primary once they have ended.
const writesBound = time.Second

// noReplID is Redis's all-zero replication ID: no second ID.
const noReplID = "0000000000000000000000000000000000000000"

// Config configures a Node.
type Config struct {
	// Keys is the keyspace the node replicates. Required.
	Keys *keyspace.Keyspace
	// Backlog must be one of Keys' journals (keyspace.Tee). Required.
	Backlog *Backlog
	// Now is the server clock: the instant a replica applies changes at
	// (state expired by then is dropped). Nil: the system clock.
	Now func() int64
	// Logger receives what operators must know: links up and down,
	// resyncs, refusals. Nil: slog.Default().
	Logger *slog.Logger
	// ListenPort is the port this node announces to its primary
	// (REPLCONF listening-port), shown by the primary's INFO and ROLE;
	// SetListenPort changes it once the listener has bound.
	ListenPort int
	// AnnouncePort, when not 0, is announced instead of ListenPort
	// (Redis's replica-announce-port: behind NAT or port mapping).
	AnnouncePort int
	// AnnounceIP, when set, is the address this node gives its primary
	// for itself (REPLCONF ip-address; Redis's replica-announce-ip),
	// which the primary shows and matches instead of the one the node
	// connects from.
	AnnounceIP string
	// MasterUser and MasterAuth authenticate this node to its primary
	// (AUTH [user] password); empty MasterAuth sends no AUTH.
	MasterUser, MasterAuth string
	// TLS, when set, is used to dial the primary.
	TLS *tls.Config
	// Timeout drops a link on which nothing arrived for this long
	// (Redis's repl-timeout). Default 60s.
	Timeout time.Duration
	// PrimaryHost and PrimaryPort, when PrimaryHost is set, make the node
	// a replica of that primary from Start, asking it for a full resync
	// (--replicaof).
	PrimaryHost string
	PrimaryPort int
	// MinReplicas, when positive, makes a primary refuse writes while
	// fewer replicas than this acknowledged within MinReplicasMaxLag
	// (Redis's min-replicas-to-write and min-replicas-max-lag).
	MinReplicas       int
	MinReplicasMaxLag time.Duration
	// AckReplicas, when positive, makes AwaitAcks wait until that many
	// replicas acknowledged every change recorded before it, for at most
	// AckTimeout (default 1s): the command layer holds each reply that
	// changed state until then (--min-replicas-ack).
	AckReplicas int
	AckTimeout  time.Duration
	// Checkpoint, when set, is told which stream the keyspace holds, each
	// time a replica has applied more of it: the primary's replication ID
	// and the offset applied, after every change up to that offset was
	// applied (and so handed, in order, to the keyspace's journals). ID "?"
	// says the keyspace follows no stream: a full resync is loading, or the
	// node was promoted and takes writes of its own. The server journals it
	// with the data, so that a replica restarted on its data directory
	// resumes with a partial resync (see Resume). It must be safe for
	// concurrent use and must not block.
	Checkpoint func(replid string, offset int64)
	// PingPeriod is how often a primary sends its replicas a heartbeat
	// carrying its wall clock, and a replica acknowledges its offset.
	// Default 1s.
	PingPeriod time.Duration
}

// Node is one server's part in replication: the primary side, serving
// replicas from the backlog, and the replica side, following a primary.
// A node is a primary until ReplicaOf and again after Promote.
type Node struct {
	cfg Config
	b   *Backlog
	log *slog.Logger

	// roleMu serialises role changes (ReplicaOf, Promote, Close).
	roleMu sync.Mutex

	mu           sync.Mutex
	replid       string // this node's replication ID; "?" while a replica holds nothing whole
	replid2      string // the ID it had before its last promotion
	secondOffset int64  // the offset up to which replid2 is valid; -1
	links        map[*link]struct{}
	follower     *follower // nil on a primary
	closed       bool
	acked        chan struct{} // closed and replaced when a replica acknowledges

	replica atomic.Bool
	gate    atomic.Int32 // a Gate, set by refreshGate under mu
	failing *failover    // the FAILOVER in progress, under mu; nil: none
	// resumeID and resumeAt, set by Resume, name the stream the keyspace
	// held at start; while the stream's offset is still resumeAt (nothing
	// changed since), following a primary resumes from them. Under mu.
	resumeID string
	resumeAt int64
	// resumeClean: the keyspace holds exactly the stream up to resumeAt
	// (a primary's clean stop), not possibly more (a replica's checkpoint).
	resumeClean bool
	// draining is set once the server shuts down (a link's ack reader saw
	// it): no more heartbeats, so that the replicas' last bytes are the
	// stream's end and a clean stop's offset is theirs.
	draining atomic.Bool
	// getAckAt is the offset before the newest GETACK AwaitAcks appended:
	// a waiter whose changes end at or before it needs no other.
	getAckAt atomic.Int64

	syncFull       atomic.Uint64 // full resyncs served
	syncPartialOK  atomic.Uint64 // partial resyncs served
	syncPartialErr atomic.Uint64 // partial resyncs asked for and refused
	linkFullSyncs  atomic.Uint64 // full resyncs this replica received
	linkPartials   atomic.Uint64 // partial resyncs this replica received

	listenPort atomic.Int32 // announced to a primary; see SetListenPort
	// quiesce waits for the writes in flight (SetQuiesce); nil: none run.
	quiesce func(bound time.Duration) bool
	started atomic.Bool
	stop    chan struct{}
	done    chan struct{}
}

// New returns a primary node with a fresh replication ID. Call Start.
func New(cfg Config) *Node {
	if cfg.Now == nil {
		cfg.Now = func() int64 { return time.Now().UnixNano() }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.PingPeriod <= 0 {
		cfg.PingPeriod = DefaultPingPeriod
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = DefaultAckTimeout
	}
	if cfg.MinReplicasMaxLag <= 0 {
		cfg.MinReplicasMaxLag = DefaultMinReplicasMaxLag
	}
	n := &Node{
		cfg: cfg, b: cfg.Backlog, log: cfg.Logger,
		replid: newReplID(), replid2: noReplID, secondOffset: -1,
		links: map[*link]struct{}{}, acked: make(chan struct{}),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	n.listenPort.Store(int32(cfg.ListenPort))
	n.refreshGate()
	if cfg.AckReplicas > 0 {
		// Every change must move the offset, replicas or none, so that
		// its reply waits (see AwaitAcks).
		n.b.activate()
	}
	return n
}

// SetListenPort sets the port this node announces to its primaries (a
// server started on port 0 knows it once listening).
func (n *Node) SetListenPort(port int) { n.listenPort.Store(int32(port)) }

// SetQuiesce tells the node how to wait for the writes in flight: quiesce
// returns true once every state-changing command that was running when it
// was called has ended (each marks itself before it reads WriteGate), or
// false once bound has passed first (0: no bound). FAILOVER calls it once
// writes are paused, and a primary turned replica (ReplicaOf) once they
// are refused, before it takes the offset it asks its new primary to
// continue from. The command layer provides it
// (commands.Server.AwaitWrites). Call it before Start.
func (n *Node) SetQuiesce(quiesce func(bound time.Duration) bool) { n.quiesce = quiesce }

// awaitWrites is quiesce, true at once when none was set.
func (n *Node) awaitWrites(bound time.Duration) bool {
	return n.quiesce == nil || n.quiesce(bound)
}

// newReplID returns 40 random hex digits, as Redis's replication IDs.
func newReplID() string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Resume tells a node started on a data directory which stream its
// keyspace holds: the stream replid, applied up to offset at least (the
// last Checkpoint before the node stopped; after a crash the keyspace may
// hold a little more of the same stream, which a replay from offset
// applies again harmlessly, see docs/replication.md), or, when clean,
// exactly up to offset (Stopped, journaled by a primary's clean stop).
// Call it before Start. A replica (PrimaryHost) then asks its primary to
// continue from there; a primary takes writes of its own, so the
// checkpoint on disk is withdrawn at Start, but a REPLICAOF before
// anything changed still resumes from it. A primary resuming a clean stop
// continues the stream's offsets under a new ID and keeps replid as its
// second ID, valid up to offset+1 (as Redis 7 does with the repl-id and
// repl-offset of an RDB written at shutdown): the replicas that held
// everything up to offset continue without a full resync.
func (n *Node) Resume(replid string, offset int64, clean bool) {
	if replid == "" || replid == "?" || offset < 0 {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.b.reset(offset)
	n.b.activate() // so that any change moves the offset (see ReplicaOf)
	n.resumeID, n.resumeAt, n.resumeClean = replid, offset, clean
}

// Stopped reports, once Close has returned, the stream a primary's
// keyspace is: its replication ID and the stream's end offset, ok false
// on a replica (its Checkpoints say what it holds), a primary that never
// served a replica (its backlog idle: no offset names its changes), or
// before Close. Call it while no change can be made (keyspace.Hold): the
// keyspace then holds exactly every change of the stream up to offset.
func (n *Node) Stopped() (replid string, offset int64, ok bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.closed || n.replica.Load() || n.replid == "?" || n.b.idle.Load() {
		return "", 0, false
	}
	return n.replid, n.b.Offset(), true
}

// Start starts the heartbeat (a primary pings its replicas every
// PingPeriod and drops those silent for Timeout) and, with PrimaryHost,
// starts following that primary.
func (n *Node) Start() {
	if n.started.Swap(true) {
		return
	}
	go n.heartbeat()
	n.mu.Lock()
	resumeID, resumeAt, clean := n.resumeID, n.resumeAt, n.resumeClean
	n.mu.Unlock()
	switch {
	case n.cfg.PrimaryHost != "" && resumeID != "":
		n.log.Info("replication: the data directory holds the primary's stream; asking to continue from it",
			slog.String("replid", resumeID), slog.Int64("offset", resumeAt))
		if clean {
			// The keyspace will hold more than the offset before the
			// first Checkpoint: the field no longer says "exactly".
			n.checkpoint(resumeID, resumeAt)
		}
		n.mu.Lock()
		n.replid = resumeID
		n.mu.Unlock()
		n.ReplicaOf(n.cfg.PrimaryHost, n.cfg.PrimaryPort)
	case n.cfg.PrimaryHost != "":
		n.forget() // nothing of its own to continue from
		n.ReplicaOf(n.cfg.PrimaryHost, n.cfg.PrimaryPort)
	case resumeID != "":
		n.checkpoint("?", -1) // writes of its own are coming
		if clean {
			n.mu.Lock()
			n.replid2, n.secondOffset = resumeID, resumeAt+1
			replid := n.replid
			n.mu.Unlock()
			n.log.Info("replication: the data directory holds the stream up to a clean stop; replicas at its end continue without a full resync",
				slog.String("replid", replid), slog.String("replid2", resumeID), slog.Int64("offset", resumeAt))
		}
	}
}

// checkpoint tells Config.Checkpoint, if set, which stream the keyspace
// holds.
func (n *Node) checkpoint(replid string, offset int64) {
	if n.cfg.Checkpoint != nil {
		n.cfg.Checkpoint(replid, offset)
	}
}

func (n *Node) heartbeat() {
	defer close(n.done)
	t := time.NewTicker(n.cfg.PingPeriod)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		n.mu.Lock()
		var silent []*link
		now := time.Now()
		for l := range n.links {
			if now.Sub(time.Unix(0, l.lastAck.Load())) > n.cfg.Timeout {
				silent = append(silent, l)
			}
		}
		ping := len(n.links) > 0 && !n.replica.Load() && n.failing == nil && !n.draining.Load()
		n.refreshGate()
		n.mu.Unlock()
		for _, l := range silent {
			n.log.Warn("replication: replica timed out, disconnecting it", slog.String("replica", l.name()),
				slog.Duration("silent_for", now.Sub(time.Unix(0, l.lastAck.Load()))))
			l.close()
		}
		if ping {
			n.b.appendPing(now.UnixNano())
		}
	}
}

// Close stops the node: it stops following its primary (applying nothing
// more), disconnects its replicas and wakes every WAIT. Call it once the
// network has stopped, before closing what the keyspace journals to.
func (n *Node) Close() {
	n.roleMu.Lock()
	defer n.roleMu.Unlock()
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.closed = true
	f := n.follower
	close(n.acked)
	n.mu.Unlock()
	close(n.stop)
	if f != nil {
		f.halt()
	}
	n.closeLinks()
	if n.started.Load() {
		<-n.done
	}
}

// IsReplica reports whether the node follows a primary (and so refuses
// writes).
func (n *Node) IsReplica() bool { return n.replica.Load() }

// ReplicaOf makes the node follow the primary at host:port, in the
// background, reconnecting with backoff until Promote or Close. It returns
// true, changing nothing, when the node already follows that primary. A
// primary turned replica disconnects its replicas and first asks its new
// primary to continue from its own stream (a demoted primary after a
// failover resumes without a full resync when its new primary holds
// everything it had).
//
// A primary turned replica refuses writes (READONLY) at once and waits
// for those that passed the gate before to end before its stream stops
// taking the keyspace's changes: every change it made is then in the
// stream whose offset it offers, as in Redis, where no command runs
// during the switch. Were one recorded later, it would stay in the state
// but not in the stream, and a partial resync would keep it for good.
// The wait is bounded by writesBound; past it ReplicaOf returns, logging
// it, and the node connects to its primary only once those writes ended.
func (n *Node) ReplicaOf(host string, port int) (already bool) {
	n.roleMu.Lock()
	defer n.roleMu.Unlock()
	n.mu.Lock()
	f := n.follower
	closed := n.closed
	n.mu.Unlock()
	if closed {
		return false
	}
	if f != nil && f.host == host && f.port == port {
		return true
	}
	if f != nil {
		f.halt()
	} else {
		n.mu.Lock()
		n.replica.Store(true)
		n.refreshGate()
		n.mu.Unlock()
		if began := time.Now(); n.awaitWrites(writesBound) {
			n.followOnly()
		} else {
			n.log.Warn("replication: writes that began before this node became a replica are still running; "+
				"it will connect to its primary once they have ended", slog.Duration("waited", time.Since(began)))
		}
	}
	n.closeLinks()
	f = newFollower(n, host, port)
	n.mu.Lock()
	n.follower = f
	n.mu.Unlock()
	n.log.Info("replication: following a primary", slog.String("primary", f.addr()))
	go f.run()
	return false
}

// followOnly mutes the backlog for the keyspace's own changes, once no
// write of this node's is running: from here the stream is its primary's,
// and its end is the offset PSYNC offers.
func (n *Node) followOnly() {
	n.b.setMuted(true)
	n.mu.Lock()
	if n.resumeID != "" && n.b.Offset() == n.resumeAt {
		// Nothing changed since the start (read once muted: a change
		// recorded before that moved the offset): the keyspace still
		// holds the stream it was restarted with.
		n.replid = n.resumeID
	}
	n.resumeID = ""
	n.mu.Unlock()
}

// Promote makes a replica a primary (REPLICAOF NO ONE): it stops following
// its primary once the change being applied is done, and serves writes
// with the state it has. Its replicas stay connected. It takes a new
// replication ID and keeps the old one as its second, valid up to its
// offset, so that the other replicas of its former primary and the former
// primary itself can continue from it without a full resync. It returns
// true, changing nothing, on a primary.
func (n *Node) Promote() (already bool) {
	n.roleMu.Lock()
	defer n.roleMu.Unlock()
	n.mu.Lock()
	f := n.follower
	n.follower = nil
	n.mu.Unlock()
	if f == nil {
		return true
	}
	f.halt()
	n.checkpoint("?", -1) // before any write of its own
	n.mu.Lock()
	end := n.b.Offset()
	if n.replid != "?" {
		n.replid2, n.secondOffset = n.replid, end+1
	}
	n.replid = newReplID()
	n.b.setMuted(false)
	n.replica.Store(false)
	n.refreshGate()
	replid := n.replid
	n.mu.Unlock()
	n.log.Info("replication: promoted to primary", slog.String("replid", replid), slog.Int64("offset", end))
	return false
}

// psyncArgs are what a replica sends in PSYNC: its replication ID and the
// offset of the first byte it lacks, or "?" and -1 when it holds nothing
// whole.
func (n *Node) psyncArgs() (string, int64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.replid == "?" {
		return "?", -1
	}
	return n.replid, n.b.Offset() + 1
}

// closeLinks disconnects every replica.
func (n *Node) closeLinks() {
	n.mu.Lock()
	links := make([]*link, 0, len(n.links))
	for l := range n.links {
		links = append(links, l)
	}
	n.mu.Unlock()
	for _, l := range links {
		l.close()
	}
}

// notifyAck wakes the WAITs and the FAILOVER, and counts the good
// replicas again.
func (n *Node) notifyAck() {
	n.mu.Lock()
	if !n.closed {
		close(n.acked)
		n.acked = make(chan struct{})
	}
	n.refreshGate()
	n.mu.Unlock()
}

// Wait blocks until numreplicas replicas have acknowledged every change
// recorded before the call, or timeout passes (0: no timeout), or the node
// closes, and returns how many have (WAIT). As Redis's WAIT, it waits for
// replicas that may yet connect.
func (n *Node) Wait(numreplicas int, timeout time.Duration) int {
	target := n.b.Offset()
	count, acked := n.countAcked(target)
	if count >= numreplicas || n.isClosed() {
		return count
	}
	n.b.appendGetAck()
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	for {
		select {
		case <-acked:
		case <-expired:
			count, _ = n.countAcked(target)
			return count
		}
		count, acked = n.countAcked(target)
		if count >= numreplicas || n.isClosed() {
			return count
		}
	}
}

// ErrNotAcked is AwaitAcks's error: fewer than AckReplicas replicas
// acknowledged the changes within AckTimeout.
var ErrNotAcked = errors.New("not enough replicas acknowledged the change in time")

// StreamOffset is the offset of the end of the replication stream, read
// without a lock: a command that moved it recorded a change (or a
// heartbeat went out meanwhile).
func (n *Node) StreamOffset() int64 { return n.b.endA.Load() }

// AckReplicas is Config.AckReplicas: how many replicas AwaitAcks waits
// for; 0: it returns at once.
func (n *Node) AckReplicas() int { return n.cfg.AckReplicas }

// AwaitAcks returns once AckReplicas replicas have acknowledged every
// change recorded before the call, or ErrNotAcked after AckTimeout (or
// once the node closes or becomes a replica meanwhile). On a replica it
// returns at once: it makes no changes of its own. Waiters share the acknowledgements: a GETACK is appended only
// when none already follows the changes waited for, so a burst of replies
// costs one round trip to the replicas (group acknowledgement).
func (n *Node) AwaitAcks() error {
	want := n.cfg.AckReplicas
	if want <= 0 || n.replica.Load() {
		return nil // a replica's stream moves with its primary's changes, not its own
	}
	target := n.StreamOffset()
	count, acked := n.countAcked(target)
	if count >= want {
		return nil
	}
	if n.getAckAt.Load() < target {
		at := n.b.appendGetAck()
		for {
			old := n.getAckAt.Load()
			if old >= at || n.getAckAt.CompareAndSwap(old, at) {
				break
			}
		}
	}
	t := time.NewTimer(n.cfg.AckTimeout)
	defer t.Stop()
	for {
		if n.isClosed() || n.replica.Load() {
			return ErrNotAcked
		}
		select {
		case <-acked:
		case <-t.C:
			acked = nil
		}
		count, next := n.countAcked(target)
		if count >= want {
			return nil
		}
		if acked == nil {
			return ErrNotAcked
		}
		acked = next
	}
}

func (n *Node) countAcked(offset int64) (int, <-chan struct{}) {
	n.mu.Lock()
	defer n.mu.Unlock()
	count := 0
	for l := range n.links {
		if l.ack.Load() >= offset {
			count++
		}
	}
	return count, n.acked
}

func (n *Node) isClosed() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.closed
}

// hostPort joins a host and a port.
func hostPort(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }
