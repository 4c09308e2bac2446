package replication

import (
	"errors"
	"log/slog"
	"time"
)

// FailoverOptions are FAILOVER's arguments.
type FailoverOptions struct {
	// Host and Port name the replica to hand over to (TO host port); an
	// empty Host picks the connected replica with the highest
	// acknowledged offset.
	Host string
	Port int
	// Timeout bounds the wait for the replica to catch up (TIMEOUT ms);
	// 0: no bound (FAILOVER ABORT ends it).
	Timeout time.Duration
	// Force hands over when Timeout passes even if the replica has not
	// caught up (FORCE), losing what it lacks.
	Force bool
	// Handover, when set, flips the roles instead of the PSYNC FAILOVER
	// handshake: a control plane that publishes the topology does it.
	Handover Handover
}

// Handover is how a control plane flips the roles of a FAILOVER (see
// FailoverOptions.Handover).
type Handover interface {
	// Check is called with the chosen target before writes pause (under
	// the node's lock: it must not block); an error refuses the FAILOVER.
	Check(host string, port int) error
	// Flip is called once the target has acknowledged every change, with
	// writes still paused. It returns nil once this node follows the
	// target and the target serves (the paused writes are then refused
	// here), or an error, after which writes resume here: it must then be
	// sure that the roles will not flip. deadline is TIMEOUT's end (zero:
	// Flip's own bound); abort is closed by FAILOVER ABORT.
	Flip(host string, port int, deadline time.Time, abort <-chan struct{}) error
}

// FAILOVER's refusals, worded as errors; the command layer words the
// replies.
var (
	ErrFailoverOnReplica    = errors.New("failover: this node is a replica")
	ErrFailoverNoReplicas   = errors.New("failover: no connected replica")
	ErrFailoverNotReplica   = errors.New("failover: the target is not a replica of this node")
	ErrFailoverNotOnline    = errors.New("failover: the target replica is not online")
	ErrFailoverInProgress   = errors.New("failover: already in progress")
	ErrFailoverNotRunning   = errors.New("failover: not in progress")
	ErrFailoverForceOptions = errors.New("failover: FORCE needs a target and a timeout")
)

// The FAILOVER states, as INFO's master_failover_state names them.
const (
	failoverNone       = "no-failover"
	failoverWaiting    = "waiting-for-sync"
	failoverInProgress = "failover-in-progress"
)

// reconnectBound is how long a demoted primary waits for its target to
// accept it (and so to promote itself) before taking writes back.
const reconnectBound = 5 * time.Second

// failover is a FAILOVER in progress.
type failover struct {
	target   *link
	host     string
	port     int
	timeout  time.Duration
	force    bool
	handover Handover      // nil: the PSYNC FAILOVER handshake
	state    string        // failoverWaiting, failoverInProgress
	paused   bool          // writes wait
	unpaused chan struct{} // closed when writes resume
	abort    chan struct{} // closed by FAILOVER ABORT
}

// Failover starts a planned handover to a replica (FAILOVER): writes
// pause; once every in-flight write has finished (see SetQuiesce) and the
// replica has acknowledged everything, this node becomes its replica and
// the replica, told so by a PSYNC ... FAILOVER, promotes itself; the
// paused writes then get READONLY. No change acknowledged to a client is
// lost. When Timeout passes first, the handover is aborted (or, with
// Force, done anyway). With o.Handover a control plane flips the roles
// instead of the PSYNC FAILOVER handshake (see Handover). It returns once
// the handover has begun.
func (n *Node) Failover(o FailoverOptions) error {
	if o.Force && (o.Host == "" || o.Timeout == 0) {
		return ErrFailoverForceOptions
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case n.replica.Load():
		return ErrFailoverOnReplica
	case n.failing != nil:
		return ErrFailoverInProgress
	case len(n.links) == 0:
		return ErrFailoverNoReplicas
	}
	var target *link
	for l := range n.links {
		if o.Host != "" {
			if l.ip == o.Host && l.port == o.Port {
				target = l
			}
		} else if *l.state.Load() == stateOnline && (target == nil || l.ack.Load() > target.ack.Load()) {
			target = l
		}
	}
	switch {
	case target == nil && o.Host != "":
		return ErrFailoverNotReplica
	case target == nil || *target.state.Load() != stateOnline:
		return ErrFailoverNotOnline
	}
	if o.Handover != nil {
		if err := o.Handover.Check(target.ip, target.port); err != nil {
			return err
		}
	}
	f := &failover{target: target, host: target.ip, port: target.port, timeout: o.Timeout, force: o.Force,
		handover: o.Handover, state: failoverWaiting, paused: true, unpaused: make(chan struct{}), abort: make(chan struct{})}
	n.failing = f
	n.refreshGate()
	go n.runFailover(f)
	return nil
}

// AbortFailover ends the FAILOVER waiting for its replica (FAILOVER ABORT),
// or, with a Handover, one whose flip has not been granted yet.
func (n *Node) AbortFailover() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.failing == nil || (n.failing.state != failoverWaiting && n.failing.handover == nil) {
		return ErrFailoverNotRunning
	}
	select {
	case <-n.failing.abort:
	default:
		close(n.failing.abort)
	}
	return nil
}

func (n *Node) runFailover(f *failover) {
	began := time.Now()
	log := n.log.With(slog.String("target", hostPort(f.host, f.port)))
	log.Info("FAILOVER: writes paused, waiting for the replica to catch up")
	var expired <-chan time.Time
	if f.timeout > 0 {
		t := time.NewTimer(f.timeout)
		defer t.Stop()
		expired = t.C
	}
	// The writes already past the gate must end before the stream's end is
	// taken. Writes take microseconds; one that outlives TIMEOUT (a stalled
	// journal) aborts the handover, FORCE or not: handing over while it
	// runs would change this node's state after its stream ended.
	if !n.awaitWrites(f.timeout) {
		n.endFailover(f)
		log.Warn("FAILOVER aborted: writes in flight did not end within TIMEOUT; writes resume here",
			slog.Duration("paused", time.Since(began)))
		return
	}
	end := n.b.appendGetAck()
	caughtUp := false
	for {
		_, acked := n.countAcked(end)
		if f.target.ack.Load() >= end {
			caughtUp = true
			break
		}
		stop := false
		select {
		case <-acked:
		case <-expired:
			stop = true
		case <-f.abort:
			stop = true
		case <-f.target.closed:
			stop = true
		}
		if stop {
			break
		}
	}
	if !caughtUp && !(f.force && f.timeout > 0 && !isClosed(f.abort)) {
		n.endFailover(f)
		log.Warn("FAILOVER aborted: the replica did not catch up; writes resume here",
			slog.Duration("paused", time.Since(began)))
		return
	}
	n.mu.Lock()
	f.state = failoverInProgress
	n.mu.Unlock()
	if !caughtUp {
		log.Warn("FAILOVER FORCE: handing over before the replica caught up; changes it lacks are lost")
	}
	if f.handover != nil {
		var deadline time.Time
		if f.timeout > 0 && !f.force {
			deadline = began.Add(f.timeout)
		}
		if err := f.handover.Flip(f.host, f.port, deadline, f.abort); err != nil {
			n.endFailover(f)
			log.Warn("FAILOVER aborted: the roles were not flipped; writes resume here", slog.Any("err", err),
				slog.Duration("paused", time.Since(began)))
			return
		}
		n.endFailover(f)
		log.Info("FAILOVER: handed over; this node is now a replica", slog.Duration("paused", time.Since(began)))
		return
	}
	n.handOver(f)
	if n.awaitLink(reconnectBound) {
		n.endFailover(f)
		log.Info("FAILOVER: handed over; this node is now a replica", slog.Duration("paused", time.Since(began)))
		return
	}
	// The target never took over: serve writes again rather than leave
	// no primary at all.
	n.Promote()
	n.endFailover(f)
	log.Error("FAILOVER: the target did not take over; this node is a primary again",
		slog.Duration("paused", time.Since(began)))
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// handOver makes this node a replica of the FAILOVER's target, whose first
// PSYNC says FAILOVER.
func (n *Node) handOver(f *failover) {
	n.roleMu.Lock()
	defer n.roleMu.Unlock()
	n.mu.Lock()
	n.replica.Store(true)
	n.refreshGate()
	n.mu.Unlock()
	n.b.setMuted(true)
	n.closeLinks()
	fl := newFollower(n, f.host, f.port)
	fl.failover = true
	n.mu.Lock()
	n.follower = fl
	n.mu.Unlock()
	go fl.run()
}

// awaitLink waits up to bound for this replica's link to stream.
func (n *Node) awaitLink(bound time.Duration) bool {
	deadline := time.Now().Add(bound)
	for time.Now().Before(deadline) {
		n.mu.Lock()
		f := n.follower
		n.mu.Unlock()
		if f != nil && *f.state.Load() == linkConnected {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

// endFailover ends f: writes resume (or are refused, on a replica).
func (n *Node) endFailover(f *failover) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.failing == f {
		n.failing = nil
		close(f.unpaused)
		n.refreshGate()
	}
}

// failoverState is INFO's master_failover_state.
func (n *Node) failoverState() string {
	if n.failing == nil {
		return failoverNone
	}
	return n.failing.state
}
