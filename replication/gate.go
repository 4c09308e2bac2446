package replication

import "time"

// Gate says whether the node serves writes now. The command layer reads it
// (one atomic load) before every state-changing command.
type Gate int32

// The gate's states.
const (
	// GateOpen: writes are served.
	GateOpen Gate = iota
	// GateReadOnly: the node is a replica (READONLY).
	GateReadOnly
	// GateNoReplicas: fewer replicas than MinReplicas acknowledged within
	// MinReplicasMaxLag (NOREPLICAS).
	GateNoReplicas
	// GatePaused: a FAILOVER is handing over; writes wait (AwaitGate).
	GatePaused
)

// WriteGate reports whether writes are served now.
func (n *Node) WriteGate() Gate { return Gate(n.gate.Load()) }

// AwaitGate blocks while the gate is GatePaused (a FAILOVER handing
// over, bounded by its timeout) and returns the gate then.
func (n *Node) AwaitGate() Gate {
	for {
		n.mu.Lock()
		var ch chan struct{}
		if n.failing != nil && n.failing.paused {
			ch = n.failing.unpaused
		}
		n.mu.Unlock()
		if ch == nil {
			return n.WriteGate()
		}
		<-ch
	}
}

// refreshGate sets the gate from the role, a FAILOVER in progress and the
// replicas' acknowledgements. Called with n.mu held.
func (n *Node) refreshGate() {
	g := GateOpen
	switch {
	case n.failing != nil && n.failing.paused:
		// Until the target has taken over: writes then get READONLY
		// from here and find the new primary already serving.
		g = GatePaused
	case n.replica.Load():
		g = GateReadOnly
	case n.cfg.MinReplicas > 0 && n.goodReplicas(time.Now()) < n.cfg.MinReplicas:
		g = GateNoReplicas
	}
	n.gate.Store(int32(g))
}

// goodReplicas counts the streaming replicas that acknowledged within
// MinReplicasMaxLag, as Redis's min-replicas-max-lag counts them. Called
// with n.mu held.
func (n *Node) goodReplicas(now time.Time) int {
	good := 0
	for l := range n.links {
		if *l.state.Load() == stateOnline && now.Sub(time.Unix(0, l.lastAck.Load())) <= n.cfg.MinReplicasMaxLag {
			good++
		}
	}
	return good
}
