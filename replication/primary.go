package replication

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/keyspace"
)

// Hello is what a replica said before PSYNC: the command's arguments and
// its REPLCONF listening-port and ip-address.
type Hello struct {
	ReplID        string // PSYNC's replication ID; "?" asks for a full resync
	Offset        int64  // PSYNC's offset: the first byte the replica lacks
	ListeningPort int    // REPLCONF listening-port; 0 when not sent
	IPAddress     string // REPLCONF ip-address; empty: Addr's host
	Addr          string // the connection's remote address, host:port
}

// The states of a replica's link, as Redis's INFO names them.
const (
	stateSnapshot = "wait_bgsave" // the snapshot is being taken
	stateSending  = "send_bulk"   // the snapshot is being sent
	stateOnline   = "online"      // the stream flows
)

// drainIdle and drainMax bound how long a link keeps streaming once the
// server shuts down: until nothing was appended for drainIdle, at most
// drainMax, so that changes acknowledged to clients just before a clean
// shutdown still reach the replicas.
const (
	drainIdle = 100 * time.Millisecond
	drainMax  = 2 * time.Second
)

// link is a connected replica, seen from its primary.
type link struct {
	n       *Node
	nc      net.Conn
	sock    *sock // nc, read and written without waking the runtime's monitor
	ip      string
	port    int
	r       *Reader
	state   atomic.Pointer[string]
	ack     atomic.Int64 // the last offset the replica acknowledged
	lastAck atomic.Int64 // when, in Unix ns (the link's start before any)

	once     sync.Once
	closed   chan struct{}
	draining chan struct{} // closed when the server shuts down
}

func (l *link) name() string { return hostPort(l.ip, l.port) }

// close disconnects the replica; safe to call more than once.
func (l *link) close() {
	l.once.Do(func() {
		close(l.closed)
		l.nc.Close()
	})
}

// CanServe reports whether the node can serve a replica: a primary can;
// a replica only once it holds its own primary's data whole.
func (n *Node) CanServe() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.replid != "?" && !n.closed
}

// ServeReplica serves one replica on nc, the connection it sent PSYNC on
// (with buffered, the bytes read past that command): a partial resync from
// the backlog when the replica's ID and offset allow it (+CONTINUE),
// otherwise a full one (+FULLRESYNC, a snapshot of the keyspace, and the
// stream from the offset the snapshot starts at). It then streams every
// change until the replica disconnects, falls further behind than the
// backlog's limit, stays silent for Timeout, or the node closes. It runs
// in the caller's goroutine and closes nothing but what it opened; the
// caller closes nc.
func (n *Node) ServeReplica(nc net.Conn, buffered []byte, h Hello) {
	ip, _, err := net.SplitHostPort(h.Addr)
	if err != nil {
		ip = h.Addr
	}
	if h.IPAddress != "" {
		ip = h.IPAddress // INFO, ROLE and FAILOVER TO name the replica by it
	}
	l := &link{n: n, nc: nc, sock: newSock(nc), ip: ip, port: h.ListeningPort, closed: make(chan struct{}), draining: make(chan struct{})}
	l.lastAck.Store(time.Now().UnixNano())
	l.ack.Store(-1)
	l.setState(stateSnapshot) // before Status or FAILOVER can see the link

	n.b.activate() // before the offset a full resync starts from is read
	n.mu.Lock()
	if n.closed || n.replid == "?" {
		n.mu.Unlock()
		return
	}
	replid, full := n.replid, true
	if h.ReplID == replid || (h.ReplID == n.replid2 && h.Offset <= n.secondOffset) {
		if r, _, ok := n.b.newReader(h.Offset - 1); ok {
			l.r, full = r, false
		}
	}
	var start int64
	if full {
		l.r, start, _ = n.b.newReader(-1)
	}
	n.links[l] = struct{}{}
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		delete(n.links, l)
		n.mu.Unlock()
		l.r.Close()
		l.close()
		n.notifyAck() // WAITs count one replica fewer
	}()

	log := n.log.With(slog.String("replica", l.name()))
	deadline := func() { _ = nc.SetWriteDeadline(time.Now().Add(n.cfg.Timeout)) }
	deadline()
	if full {
		if h.ReplID != "?" {
			n.syncPartialErr.Add(1)
		}
		n.syncFull.Add(1)
		l.setState(stateSnapshot)
		if _, err := io.WriteString(nc, "+FULLRESYNC "+replid+" "+strconv.FormatInt(start, 10)+"\r\n"); err != nil {
			return
		}
		began := time.Now()
		snap, keys := n.snapshot()
		l.setState(stateSending)
		deadline()
		if _, err := nc.Write(append([]byte("$"+strconv.Itoa(len(snap))+"\r\n"), snap...)); err != nil {
			log.Warn("replication: sending the snapshot failed", slog.Any("err", err))
			return
		}
		log.Info("replication: full resync served", slog.Int64("offset", start), slog.Int("keys", keys),
			slog.Int("bytes", len(snap)), slog.Duration("took", time.Since(began)))
	} else {
		n.syncPartialOK.Add(1)
		if _, err := io.WriteString(nc, "+CONTINUE "+replid+"\r\n"); err != nil {
			return
		}
		log.Info("replication: partial resync served", slog.Int64("from_offset", h.Offset-1))
	}
	l.setState(stateOnline)
	n.notifyAck() // one more replica may make the gate open
	go l.readAcks(buffered)
	if err := l.send(); err != nil {
		log.Warn("replication: replica disconnected", slog.Any("err", err))
	}
}

func (l *link) setState(s string) { l.state.Store(&s) }

// snapshot encodes every key's state as a sequence of Set records.
func (n *Node) snapshot() ([]byte, int) {
	keys := 0
	b := make([]byte, 0, n.cfg.Keys.Len()*32)
	n.cfg.Keys.Range(func(c keyspace.Change) {
		b = appendChange(b, c)
		keys++
	})
	return b, keys
}

// coalesce is how long a link lets changes accumulate after a write before
// the next one, unless a full buffer is ready: under load the stream then
// costs one write on the primary and one read on the replica per
// millisecond instead of one per change, for at most that much lag.
const coalesce = time.Millisecond

// maxWrite bounds the bytes of one write to a replica.
const maxWrite = 4 << 20

// send streams the backlog to the replica until the link closes, writing
// straight from the backlog's blocks.
func (l *link) send() error {
	var parts [][]byte
	var dlSet, drainUntil, lastWrite time.Time
	draining := l.draining
	hold := time.NewTimer(0)
	<-hold.C
	for {
		if !drainUntil.IsZero() {
			lastWrite = time.Time{} // no holding back when shutting down
		}
		if wait := coalesce - time.Since(lastWrite); wait > 0 {
			// Let changes accumulate since the last write, unless
			// plenty are ready already.
			_, ready, err := l.r.next(64<<10, parts)
			l.r.advance(0)
			if err != nil {
				return err
			}
			if ready < 64<<10 {
				hold.Reset(wait)
				select {
				case <-hold.C:
				case <-l.closed:
					hold.Stop()
					return nil
				case <-l.r.urgent: // a WAIT is waiting: write now
					if !hold.Stop() {
						<-hold.C
					}
					yield()
				}
			}
		}
		var n int
		var err error
		parts, n, err = l.r.next(maxWrite, parts)
		if err != nil {
			return err
		}
		if n > 0 {
			now := time.Now()
			if now.Sub(dlSet) > time.Second {
				_ = l.nc.SetWriteDeadline(now.Add(l.n.cfg.Timeout))
				dlSet = now
			}
			werr := l.sock.write(parts)
			l.r.advance(n)
			if werr != nil {
				return errOrNil(l, werr)
			}
			lastWrite = now
			continue
		}
		l.r.advance(0)
		if !drainUntil.IsZero() {
			// Shutting down: stop once nothing came for drainIdle.
			t := time.NewTimer(min(drainIdle, time.Until(drainUntil)))
			select {
			case <-l.r.Wake():
				t.Stop()
				continue
			case <-t.C:
				return nil
			}
		}
		lastWrite = time.Time{} // idle: the next change goes at once
		select {
		case <-l.r.Wake():
			yield()
		case <-l.closed:
			return nil
		case <-draining:
			drainUntil = time.Now().Add(drainMax)
			draining = nil // a nil channel: not selected again
		}
	}
}

// yield lets the goroutines already runnable run before a link writes
// what woke it. Connections the poller found readable together are queued
// together; the change (and, with --min-replicas-ack, the GETACK) of the
// first one wakes the link, which the scheduler would otherwise run next,
// before the others: one write and one acknowledgement per request. Run
// after them, the link sends all their changes and GETACKs in one write
// (with --min-replicas-ack 1, unpipelined: 0.21 writes per request instead
// of 1.0; docs/replication.md). The first request's acknowledgement then
// waits for the queued requests to be served (microseconds each); the
// others' come sooner, without a write each ahead of them.
func yield() { runtime.Gosched() }

// errOrNil is err unless the link was closed on purpose.
func errOrNil(l *link, err error) error {
	select {
	case <-l.closed:
		return nil
	default:
		return err
	}
}

// readAcks reads what the replica sends: REPLCONF ACK <offset>. Other
// commands are ignored, as Redis ignores them on a replication link. A
// read deadline in the past (the server shutting down: this code sets
// none) makes the link drain instead of closing at once.
func (l *link) readAcks(buffered []byte) {
	br := bufio.NewReader(io.MultiReader(bytes.NewReader(buffered), l.sock))
	for {
		args, err := readCommand(br)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			l.n.draining.Store(true) // no heartbeat after the last bytes
			close(l.draining)
			return
		}
		if err != nil {
			l.close()
			return
		}
		if len(args) == 3 && strings.EqualFold(args[0], "replconf") && strings.EqualFold(args[1], "ack") {
			off, err := strconv.ParseInt(args[2], 10, 64)
			if err != nil {
				continue
			}
			if off > l.ack.Load() {
				l.ack.Store(off)
			}
			l.lastAck.Store(time.Now().UnixNano())
			l.n.notifyAck()
		}
	}
}
