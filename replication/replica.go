package replication

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/keyspace"
)

// The states of a replica's link to its primary, as ROLE names them.
const (
	linkConnect    = "connect"    // waiting to (re)connect
	linkConnecting = "connecting" // dialing
	linkHandshake  = "handshake"  // AUTH, REPLCONF, PSYNC
	linkSync       = "sync"       // loading a snapshot
	linkConnected  = "connected"  // following the stream
)

// Reconnection backoff: the first retry after minRetry, doubling up to
// maxRetry; a link that got as far as streaming starts over at minRetry.
const (
	minRetry = 100 * time.Millisecond
	maxRetry = 5 * time.Second
)

// clockWarn is the clock offset to the primary above which a replica
// warns: TATs are absolute instants, so skew shifts every limit it serves
// after a promotion.
const clockWarn = 50 * time.Millisecond

// follower is a replica's side of the link: it connects to the primary,
// resynchronises, applies the stream, acknowledges, and reconnects with
// backoff until halted.
type follower struct {
	n      *Node
	host   string
	port   int
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	state       atomic.Pointer[string]
	lastIO      atomic.Int64 // Unix ns of the last bytes from the primary; 0: never
	clockOffset atomic.Int64 // ns: this node's wall clock minus the primary's, at its last heartbeat
	clockKnown  atomic.Bool
	clockWarned atomic.Bool // a warning about the offset was logged and still holds
	// pingClock and pingAt are the newest heartbeat applied: the primary's
	// wall clock in it, and this node's when it was applied (Unix ns; 0:
	// none yet). Lag derives from them.
	pingClock, pingAt atomic.Int64
	wmu               sync.Mutex // writes to the primary (acknowledgements)
	// failover makes PSYNC say FAILOVER, telling the primary (a replica of
	// this node's until then) to promote itself, until one PSYNC succeeds.
	failover bool
}

func newFollower(n *Node, host string, port int) *follower {
	ctx, cancel := context.WithCancel(context.Background())
	f := &follower{n: n, host: host, port: port, ctx: ctx, cancel: cancel, done: make(chan struct{})}
	f.setState(linkConnect)
	return f
}

func (f *follower) addr() string { return hostPort(f.host, f.port) }

func (f *follower) setState(s string) { f.state.Store(&s) }

// halt stops following and returns once nothing more will be applied.
func (f *follower) halt() {
	f.cancel()
	<-f.done
}

// authError is a primary refusing this node's credentials: logged as an
// error, since retrying cannot help until an operator fixes them.
type authError struct{ err error }

func (e *authError) Error() string { return e.err.Error() }
func (e *authError) Unwrap() error { return e.err }

// run follows the primary until halted.
func (f *follower) run() {
	defer close(f.done)
	if !f.awaitOwnWrites() {
		return
	}
	delay := time.Duration(0)
	for {
		streamed, err := f.session()
		if f.ctx.Err() != nil {
			return
		}
		f.setState(linkConnect)
		if streamed {
			delay = 0
		}
		delay = min(max(2*delay, minRetry), maxRetry)
		level := slog.LevelWarn
		var ae *authError
		if errors.As(err, &ae) {
			level = slog.LevelError
		}
		f.n.log.Log(f.ctx, level, "replication: link to primary down, retrying",
			slog.String("primary", f.addr()), slog.Any("err", err), slog.Duration("retry_in", delay))
		t := time.NewTimer(delay)
		select {
		case <-f.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// awaitOwnWrites is a follower's first step when ReplicaOf stopped
// waiting for the node's own writes (its backlog still takes them): it
// waits until they have ended, then mutes the backlog (followOnly). It
// returns false if halted first.
func (f *follower) awaitOwnWrites() bool {
	n := f.n
	if n.b.isMuted() {
		return true
	}
	began := time.Now()
	for !n.awaitWrites(writesBound) {
		if f.ctx.Err() != nil {
			return false
		}
		n.log.Warn("replication: writes of this node still running; not connecting to the primary until they end",
			slog.String("primary", f.addr()), slog.Duration("waited", time.Since(began)))
	}
	if f.ctx.Err() != nil {
		return false
	}
	n.followOnly()
	n.log.Info("replication: the writes ended; connecting to the primary", slog.String("primary", f.addr()),
		slog.Duration("waited", time.Since(began)))
	return true
}

// session is one connection to the primary: handshake, resync, stream.
// streamed reports whether it got as far as the stream.
func (f *follower) session() (streamed bool, err error) {
	cfg := f.n.cfg
	f.setState(linkConnecting)
	d := net.Dialer{Timeout: 5 * time.Second}
	nc, err := d.DialContext(f.ctx, "tcp", f.addr())
	if err != nil {
		return false, err
	}
	if cfg.TLS != nil {
		tc := cfg.TLS.Clone()
		if tc.ServerName == "" {
			tc.ServerName = f.host
		}
		nc = tls.Client(nc, tc)
	}
	stop := context.AfterFunc(f.ctx, func() { nc.Close() })
	defer stop()
	defer nc.Close()
	br := bufio.NewReaderSize(nc, 64<<10)

	f.setState(linkHandshake)
	_ = nc.SetDeadline(time.Now().Add(cfg.Timeout))
	call := func(args ...string) (string, error) {
		if _, err := nc.Write(appendCommand(nil, args...)); err != nil {
			return "", err
		}
		return readReply(br)
	}
	if cfg.MasterAuth != "" {
		args := []string{"AUTH", cfg.MasterAuth}
		if cfg.MasterUser != "" {
			args = []string{"AUTH", cfg.MasterUser, cfg.MasterAuth}
		}
		if _, err := call(args...); err != nil {
			var re *replyError
			if errors.As(err, &re) {
				return false, &authError{fmt.Errorf("primary refused --masterauth/--masteruser: %w", err)}
			}
			return false, err
		}
	}
	if _, err := call("PING"); err != nil {
		var re *replyError
		if errors.As(err, &re) && (strings.HasPrefix(re.text, "NOAUTH") || strings.HasPrefix(re.text, "NOPERM")) {
			return false, &authError{fmt.Errorf("primary refused this replica (set --masterauth, and --masteruser for an ACL user): %w", err)}
		}
		return false, err
	}
	port := int(f.n.listenPort.Load())
	if cfg.AnnouncePort != 0 {
		port = cfg.AnnouncePort
	}
	if _, err := call("REPLCONF", "listening-port", strconv.Itoa(port)); err != nil {
		return false, fmt.Errorf("REPLCONF listening-port: %w", err)
	}
	if cfg.AnnounceIP != "" {
		// As Redis: a primary that refuses it still serves this replica,
		// under the address it sees.
		if _, err := call("REPLCONF", "ip-address", cfg.AnnounceIP); err != nil {
			var re *replyError
			if !errors.As(err, &re) {
				return false, err
			}
			f.n.log.Warn("replication: the primary refused REPLCONF ip-address (--replica-announce-ip); it shows this replica at the address it connects from",
				slog.String("primary", f.addr()), slog.String("error", re.text))
		}
	}
	if _, err := call("REPLCONF", "capa", "psync2"); err != nil {
		var re *replyError
		if !errors.As(err, &re) {
			return false, err
		}
	}
	replid, offset := f.n.psyncArgs()
	psync := []string{"PSYNC", replid, strconv.FormatInt(offset, 10)}
	if f.failover {
		psync = append(psync, "FAILOVER")
	}
	if _, err := nc.Write(appendCommand(nil, psync...)); err != nil {
		return false, err
	}
	line, err := readLine(br)
	if err != nil {
		return false, err
	}
	f.lastIO.Store(time.Now().UnixNano())
	switch fields := strings.Fields(line); {
	case fields[0] == "+FULLRESYNC" && len(fields) == 3:
		start, err := strconv.ParseInt(fields[2], 10, 64)
		if err != nil {
			return false, fmt.Errorf("bad PSYNC reply %q", truncate(line))
		}
		if err := f.fullSync(nc, br, fields[1], start); err != nil {
			return false, err
		}
	case fields[0] == "+CONTINUE":
		id := ""
		if len(fields) > 1 {
			id = fields[1]
		}
		f.n.continued(id)
		f.n.log.Info("replication: partial resync from primary", slog.String("primary", f.addr()),
			slog.Int64("offset", offset-1))
	case line[0] == '-':
		return false, fmt.Errorf("primary refused PSYNC: %s", line[1:])
	default:
		return false, fmt.Errorf("bad PSYNC reply %q", truncate(line))
	}
	_ = nc.SetDeadline(time.Time{})
	f.failover = false
	f.setState(linkConnected)
	f.n.log.Info("replication: link to primary up", slog.String("primary", f.addr()), slog.Int64("offset", f.n.b.Offset()))
	ended := make(chan struct{})
	defer close(ended)
	go f.acknowledge(nc, ended)
	return true, f.stream(nc, br)
}

// acknowledge sends REPLCONF ACK every PingPeriod until ended.
func (f *follower) acknowledge(nc net.Conn, ended chan struct{}) {
	t := time.NewTicker(f.n.cfg.PingPeriod)
	defer t.Stop()
	for {
		f.sendAck(nc)
		select {
		case <-ended:
			return
		case <-t.C:
		}
	}
}

// sendAck acknowledges the offset applied so far. A failure is left to
// the reader to notice.
func (f *follower) sendAck(nc net.Conn) {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	_ = nc.SetWriteDeadline(time.Now().Add(f.n.cfg.Timeout))
	_, _ = nc.Write(appendCommand(nil, "REPLCONF", "ACK", strconv.FormatInt(f.n.b.Offset(), 10)))
}

// fullSync loads the snapshot that follows +FULLRESYNC: every key this
// node held is dropped, the snapshot's keys applied, and the node's
// stream starts again at start, under the primary's ID. Until it is
// whole, the node offers no ID to resume from, and its own replicas are
// disconnected.
func (f *follower) fullSync(nc net.Conn, br *bufio.Reader, replid string, start int64) error {
	f.setState(linkSync)
	f.n.mu.Lock()
	f.n.replid = "?"
	f.n.mu.Unlock()
	f.n.checkpoint("?", -1) // before the Flush: the data matches no stream until loaded
	f.n.closeLinks()
	began := time.Now()
	line, err := readLine(br)
	if err != nil {
		return err
	}
	size, err := strconv.ParseInt(strings.TrimPrefix(line, "$"), 10, 64)
	if line[0] != '$' || err != nil || size < 0 {
		return fmt.Errorf("bad snapshot header %q", truncate(line))
	}
	keys := f.n.cfg.Keys
	if err := keys.Apply(keyspace.Change{Op: keyspace.Flush}, f.n.cfg.Now()); err != nil {
		return err
	}
	buf := make([]byte, 0, 256<<10)
	remaining, n := size, 0
	for remaining > 0 {
		_ = nc.SetReadDeadline(time.Now().Add(f.n.cfg.Timeout))
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, cap(buf))...)[:len(buf)]
		}
		k, err := br.Read(buf[len(buf):min(cap(buf), len(buf)+int(min(remaining, 1<<30)))])
		buf, remaining = buf[:len(buf)+k], remaining-int64(k)
		f.lastIO.Store(time.Now().UnixNano())
		used, applied, _, aerr := f.apply(buf)
		n += applied
		buf = buf[:copy(buf, buf[used:])]
		if aerr != nil {
			return aerr
		}
		if err != nil {
			return fmt.Errorf("snapshot: %w", err)
		}
	}
	if len(buf) > 0 {
		return fmt.Errorf("%w: snapshot ends inside a record", errCorrupt)
	}
	f.n.mu.Lock()
	f.n.replid, f.n.replid2, f.n.secondOffset = replid, noReplID, -1
	f.n.b.reset(start)
	f.n.mu.Unlock()
	f.n.checkpoint(replid, start)
	f.n.linkFullSyncs.Add(1)
	f.n.log.Info("replication: full resync from primary loaded", slog.String("primary", f.addr()),
		slog.Int("keys", n), slog.Int64("bytes", size), slog.Int64("offset", start), slog.Duration("took", time.Since(began)))
	return nil
}

// stream applies the primary's stream until the link fails: complete
// records are applied in order, then appended as received to this node's
// backlog (its offset, and its own replicas' stream).
func (f *follower) stream(nc net.Conn, br *bufio.Reader) error {
	buf := make([]byte, 0, 64<<10)
	var dlSet time.Time
	for {
		now := time.Now()
		if now.Sub(dlSet) > time.Second {
			_ = nc.SetReadDeadline(now.Add(f.n.cfg.Timeout))
			dlSet = now
		}
		if len(buf) == cap(buf) { // one record larger than the buffer
			buf = append(buf, make([]byte, cap(buf))...)[:len(buf)]
		}
		k, err := br.Read(buf[len(buf):cap(buf)])
		if k > 0 {
			buf = buf[:len(buf)+k]
			f.lastIO.Store(time.Now().UnixNano())
			used, _, getAck, aerr := f.apply(buf)
			if used > 0 {
				f.n.b.appendRaw(buf[:used])
				buf = buf[:copy(buf, buf[used:])]
				f.n.checkpointApplied()
			}
			if aerr != nil {
				if errors.Is(aerr, errCorrupt) {
					f.n.forget() // resume from nothing: a full resync
				}
				return aerr
			}
			if getAck {
				f.sendAck(nc)
			}
		}
		if err != nil {
			return err
		}
	}
}

// apply applies the complete records at the start of b and returns the
// bytes they took, how many changes it applied and whether a GETACK was
// among them.
func (f *follower) apply(b []byte) (used, changes int, getAck bool, err error) {
	keys, now := f.n.cfg.Keys, f.n.cfg.Now()
	for used < len(b) {
		rec, k, err := decodeRecord(b[used:])
		if err != nil {
			return used, changes, getAck, err
		}
		if k == 0 {
			break
		}
		switch rec.tag {
		case tagPing:
			f.observeClock(rec.clock)
		case tagGetAck:
			getAck = true
		default:
			if err := keys.Apply(rec.change, now); err != nil {
				return used, changes, getAck, fmt.Errorf("apply %v of %q: %w", rec.change.Op, rec.change.Key, err)
			}
			changes++
		}
		used += k
	}
	return used, changes, getAck, nil
}

// observeClock records the offset of this node's wall clock from the
// primary's heartbeat, warning when it passes clockWarn.
func (f *follower) observeClock(primary int64) {
	now := time.Now().UnixNano()
	f.pingClock.Store(primary)
	f.pingAt.Store(now)
	off := time.Duration(now - primary)
	f.clockOffset.Store(int64(off))
	f.clockKnown.Store(true)
	far := off > clockWarn || off < -clockWarn
	if far && !f.clockWarned.Swap(true) {
		f.n.log.Warn("replication: this node's clock is off the primary's; limits shift by as much after a promotion",
			slog.String("primary", f.addr()), slog.Duration("offset", off), slog.Duration("warn_above", clockWarn))
	} else if !far {
		f.clockWarned.Store(false)
	}
}

// lag is how far this replica's data trails its primary at now, from the
// newest heartbeat applied (produced at the primary's clock c, applied at
// this node's a): a-c when it was applied, or, once the next heartbeat is
// overdue, now-c-period, since the replica holds nothing the primary did
// after c. Both clocks are wall clocks: their offset adds to it. known is
// false before the first heartbeat.
func (f *follower) lag(now time.Time) (lag time.Duration, known bool) {
	a := f.pingAt.Load()
	if a == 0 {
		return 0, false
	}
	c := f.pingClock.Load()
	d := time.Duration(a - c)
	if over := time.Duration(now.UnixNano()-c) - f.n.cfg.PingPeriod; over > d {
		d = over
	}
	return max(d, 0), true
}

// continued takes note of a partial resync: a primary answering with
// another ID than this node's (it was promoted since) becomes this node's
// ID, the old one kept as the second, and this node's replicas reconnect
// to learn it.
func (n *Node) continued(id string) {
	n.linkPartials.Add(1)
	n.mu.Lock()
	changed := id != "" && id != n.replid
	if changed {
		n.replid2, n.secondOffset = n.replid, n.b.Offset()+1
		n.replid = id
	}
	n.mu.Unlock()
	if changed {
		n.checkpointApplied()
		n.closeLinks()
	}
}

// checkpointApplied tells Checkpoint the stream a replica applied so far.
// Called by the follower only, after applying: the offset covers nothing
// not yet applied.
func (n *Node) checkpointApplied() {
	if n.cfg.Checkpoint == nil {
		return
	}
	n.mu.Lock()
	replid, offset := n.replid, n.b.Offset()
	n.mu.Unlock()
	n.checkpoint(replid, offset)
}

// forget drops this node's replication ID, so that its next PSYNC asks
// for a full resync (after a stream it could not apply).
func (n *Node) forget() {
	n.mu.Lock()
	n.replid = "?"
	n.mu.Unlock()
}
