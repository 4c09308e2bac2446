package replication

import (
	"sort"
	"time"
)

// Status is a node's replication state, for INFO replication, ROLE and
// metrics.
type Status struct {
	Replica      bool   // following a primary (role:slave)
	ReplID       string // master_replid ("?" while a replica holds nothing whole)
	ReplID2      string // master_replid2
	Offset       int64  // master_repl_offset; on a replica also slave_repl_offset
	SecondOffset int64  // second_repl_offset
	Backlog      BacklogStatus
	Replicas     []ReplicaStatus // connected replicas, in address order
	// FailoverState is master_failover_state: no-failover,
	// waiting-for-sync or failover-in-progress.
	FailoverState string

	// A replica's link to its primary.
	PrimaryHost string
	PrimaryPort int
	LinkState   string        // connect, connecting, handshake, sync, connected
	LastIO      time.Duration // since the primary last sent anything; -1: never
	ClockOffset time.Duration // this node's wall clock minus the primary's
	ClockKnown  bool          // a heartbeat measured ClockOffset
	// Lag is how far the replica's data trails its primary's (see
	// follower.lag): the age of the newest heartbeat applied when it was
	// applied, or the time since the next one was due. LagKnown is false
	// before the first heartbeat.
	Lag            time.Duration
	LagKnown       bool
	SyncInProgress bool // loading a snapshot

	SyncFull       uint64 // full resyncs served (sync_full)
	SyncPartialOK  uint64 // partial resyncs served (sync_partial_ok)
	SyncPartialErr uint64 // partial resyncs refused (sync_partial_err)
	LinkFullSyncs  uint64 // full resyncs this node received from its primaries
	LinkPartials   uint64 // partial resyncs this node received
}

// ReplicaStatus is one connected replica as its primary sees it.
type ReplicaStatus struct {
	IP       string
	Port     int           // its listening port
	State    string        // wait_bgsave, send_bulk, online
	Offset   int64         // the last offset it acknowledged; -1: none yet
	LagBytes int64         // the primary's offset minus Offset
	Lag      time.Duration // since its last acknowledgement
}

// Status reports the node's replication state.
func (n *Node) Status() Status {
	now := time.Now()
	n.mu.Lock()
	st := Status{
		Replica: n.replica.Load(), ReplID: n.replid, ReplID2: n.replid2, SecondOffset: n.secondOffset,
		Backlog: n.b.Status(), FailoverState: n.failoverState(),
	}
	st.Offset = st.Backlog.End
	for l := range n.links {
		rs := ReplicaStatus{IP: l.ip, Port: l.port, State: *l.state.Load(), Offset: l.ack.Load(),
			Lag: now.Sub(time.Unix(0, l.lastAck.Load()))}
		rs.LagBytes = st.Offset - max(rs.Offset, 0)
		st.Replicas = append(st.Replicas, rs)
	}
	f := n.follower
	n.mu.Unlock()
	sort.Slice(st.Replicas, func(i, j int) bool {
		a, b := st.Replicas[i], st.Replicas[j]
		return a.IP < b.IP || (a.IP == b.IP && a.Port < b.Port)
	})
	st.LastIO = -1
	if f != nil {
		st.PrimaryHost, st.PrimaryPort = f.host, f.port
		st.LinkState = *f.state.Load()
		st.SyncInProgress = st.LinkState == linkSync
		if t := f.lastIO.Load(); t != 0 {
			st.LastIO = now.Sub(time.Unix(0, t))
		}
		st.ClockOffset, st.ClockKnown = time.Duration(f.clockOffset.Load()), f.clockKnown.Load()
		st.Lag, st.LagKnown = f.lag(now)
	}
	st.SyncFull, st.SyncPartialOK, st.SyncPartialErr = n.syncFull.Load(), n.syncPartialOK.Load(), n.syncPartialErr.Load()
	st.LinkFullSyncs, st.LinkPartials = n.linkFullSyncs.Load(), n.linkPartials.Load()
	return st
}
