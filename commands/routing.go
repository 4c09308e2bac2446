package commands

import (
	"bytes"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/sluicehq/sluice/cluster"
	"github.com/sluicehq/sluice/resp"
)

// route checks, in cluster mode, that this node serves the slot of a call's
// keys, read at the command's key positions. It returns the error reply
// when it does not ("" when the call runs here): -CROSSSLOT when the keys
// hash to different slots, -CLUSTERDOWN before any topology, -MOVED to the
// slot's master otherwise. A connection that sent READONLY may also run
// read-only commands on a replica for its master's slots. The cost when
// the slot is served: one atomic load, one slot computation per key and
// one bit test, and no allocation.
func (s *Server) route(sess *session, cmd *Command, args [][]byte) string {
	var slot int
	switch {
	case cmd.FirstKey == cmd.LastKey: // one key: most commands
		if cmd.FirstKey >= len(args) {
			return ""
		}
		slot = cluster.Slot(args[cmd.FirstKey])
	default:
		last := cmd.LastKey
		if last < 0 {
			last += len(args)
		}
		slot = -1
		for i := cmd.FirstKey; i <= last && i < len(args); i += max(cmd.Step, 1) {
			k := cluster.Slot(args[i])
			if slot >= 0 && k != slot {
				s.redirectsCrossSlot.Add(1)
				return errCrossSlot
			}
			slot = k
		}
		if slot < 0 {
			return ""
		}
	}
	v := s.cluster.View()
	if v.Serves(slot) {
		if s.fenced.Load() {
			return errFenced
		}
		return ""
	}
	return s.redirect(sess, cmd, v, slot)
}

// SetFenced makes the node refuse (on) or serve again (off) every keyed
// command for the slots it serves, with -CLUSTERDOWN: the control plane's
// fence, while this node cannot know whether another has taken its slots.
// Redirects are unchanged. It logs only changes.
func (s *Server) SetFenced(on bool) {
	if s.fenced.Swap(on) == on {
		return
	}
	if on {
		s.log.Warn("cluster: fenced: refusing keyed commands for this node's slots (-CLUSTERDOWN) until it holds an etcd lease and has read the topology")
	} else {
		s.log.Info("cluster: fence lifted: serving this node's slots again")
	}
}

// Fenced reports whether SetFenced(true) is in force.
func (s *Server) Fenced() bool { return s.fenced.Load() }

// ApplyTopology sets the topology as a controller publishes it: text at
// version, newer versions only (an equal one changes nothing; an older one
// is refused with an error wrapping cluster.ErrVersion). It logs the new
// view and drops the keys of slots this node no longer holds, as CLUSTERX
// SETNODES does. It returns the views before and after.
func (s *Server) ApplyTopology(text string, version int64) (old, cur *cluster.View, err error) {
	if s.cluster == nil {
		return nil, nil, errors.New("cluster mode is off")
	}
	old, cur, err = s.cluster.SetNodes(text, version, false)
	if err == nil && old != cur {
		s.viewChanged(s.log.With("version", cur.Version(), "node_id", cur.ID, "source", s.manager), old, cur)
	}
	return old, cur, err
}

// redirect is route's answer for a slot this node does not serve: the
// owner's -MOVED, or the destination's once the slot was migrated there;
// while a migration refuses the slot's writes, -TRYAGAIN for a write and
// the command runs for a read.
func (s *Server) redirect(sess *session, cmd *Command, v *cluster.View, slot int) string {
	switch {
	case v.Topology == nil:
		s.redirectsDown.Add(1)
		return errClusterDown
	case v.WriteForbidden(slot):
		if cmd.Flags&FlagWrite == 0 {
			return ""
		}
		s.redirectsTryAgain.Add(1)
		return errTryAgain
	case sess.readonly && cmd.Flags.Has(FlagReadonly) && v.Holds(slot):
		return ""
	}
	s.redirects.Add(1)
	if dst := v.MigratedTo(slot); dst != nil {
		return errMoved(slot, dst.Addr)
	}
	return errMoved(slot, v.Topology.Owner(slot).Addr)
}

// policyPrefix begins the keys where POLICY.THROTTLE keeps state (see
// policyStateKey).
const policyPrefix = "policy:"

// keySlot is the slot a stored key belongs to: its own, except for a
// policy's state, "policy:<name>:<i>:<key>", which belongs to the slot of
// the key the user gave, since POLICY.THROTTLE is routed by that key. The
// policy's name is matched against the loaded policies, longest first;
// for a policy no longer loaded, the first ":<digits>:" after the name's
// first byte ends it. Scans take it once with storedKeySlot.
func (s *Server) keySlot(stored []byte) int { return s.storedKeySlot()(stored) }

// storedKeySlot returns keySlot over the policies loaded now, for a scan
// that calls it under a shard lock: it does not allocate.
func (s *Server) storedKeySlot() func(stored []byte) int {
	names := s.policies.Load().Names()
	return func(stored []byte) int {
		if !bytes.HasPrefix(stored, []byte(policyPrefix)) {
			return cluster.Slot(stored)
		}
		rest := stored[len(policyPrefix):]
		best := -1
		for _, name := range names {
			if len(name) > best && len(rest) > len(name) && rest[len(name)] == ':' && string(rest[:len(name)]) == name {
				if _, ok := afterIndex(rest[len(name)+1:]); ok {
					best = len(name)
				}
			}
		}
		if best >= 0 {
			key, _ := afterIndex(rest[best+1:])
			return cluster.Slot(key)
		}
		for i := 1; i < len(rest); i++ {
			if rest[i] == ':' {
				if key, ok := afterIndex(rest[i+1:]); ok {
					return cluster.Slot(key)
				}
			}
		}
		return cluster.Slot(stored)
	}
}

// afterIndex reads "<digits>:" at the start of b and returns what follows.
func afterIndex(b []byte) ([]byte, bool) {
	i := 0
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	if i == 0 || i >= len(b) || b[i] != ':' {
		return nil, false
	}
	return b[i+1:], true
}

// topologyChanged logs a new view and, when this node no longer holds
// some slots, schedules dropping their keys.
func (s *Server) topologyChanged(c *resp.Conn, old, cur *cluster.View) {
	s.viewChanged(s.log.With("version", cur.Version(), "node_id", cur.ID, "client", sessionOf(c).addr), old, cur)
}

// viewChanged is topologyChanged with its logger.
func (s *Server) viewChanged(log *slog.Logger, old, cur *cluster.View) {
	switch {
	case cur.Topology == nil:
		log.Info("cluster node id set; no topology yet")
	case cur.Self == nil:
		log.Warn("cluster topology set without this node's id: it serves no slot and redirects every key",
			"nodes", len(cur.Topology.Nodes))
	default:
		served := 0
		for _, r := range cur.Self.Ranges {
			served += r.Last - r.First + 1
		}
		log.Info("cluster topology set", "nodes", len(cur.Topology.Nodes), "role", cur.Self.Role.String(),
			"addr", cur.Self.Addr, "slots", served)
		if a := s.cluster.Announced(); a.IP != "" && (a.IP != cur.Self.Host || a.Port != cur.Self.Port) {
			log.Warn("the topology places this node at another address than it announces",
				"topology_addr", cur.Self.Addr, "announced_ip", a.IP, "announced_port", a.Port)
		}
	}
	dropped := old.Dropped(cur)
	if n := dropped.Count(); n > 0 {
		log.Info("dropping the keys of slots this node no longer holds, in the background", "slots", n)
		s.slotDrop.start()
	}
}

// slotDrop is the background removal of the keys of slots this node lost:
// a pass over the keyspace's shards, a few per call of DropStep, that
// removes every key whose slot the current view does not hold. A new
// topology while a pass runs starts the pass over.
type slotDrop struct {
	mu      sync.Mutex
	pending bool // a pass is owed
	next    int  // the next shard of the pass
	dropped atomic.Uint64
}

func (d *slotDrop) start() {
	d.mu.Lock()
	d.pending, d.next = true, 0
	d.mu.Unlock()
}

// DropStep removes the keys of the slots this node no longer holds from
// the next tenth of the keyspace's shards, when a topology change left
// some to remove; it does nothing otherwise. The server's sweeper calls it
// with the expiry sweep. It reports whether a pass is still under way.
func (s *Server) DropStep() bool {
	if s.cluster == nil {
		return false
	}
	d := &s.slotDrop
	d.mu.Lock()
	if !d.pending {
		d.mu.Unlock()
		return false
	}
	first := d.next
	n := s.keys.Shards()
	last := min(first+n/10+1, n)
	d.next = last
	d.mu.Unlock()

	now := s.clock.Now()
	slotOf := s.storedKeySlot()
	drop := func(key []byte) bool { return !s.cluster.View().Holds(slotOf(key)) }
	removed := 0
	for i := first; i < last; i++ {
		removed += s.keys.DeleteIf(i, drop, now)
	}
	d.dropped.Add(uint64(removed))

	d.mu.Lock()
	defer d.mu.Unlock()
	if d.next == last && last == n { // not restarted meanwhile
		d.pending = false
		s.log.Info("dropped the keys of the slots this node no longer holds", "keys_dropped_total", d.dropped.Load())
	}
	return d.pending
}

// finishDrops runs DropStep until no pass is under way (DEBUG SWEEP).
func (s *Server) finishDrops() {
	for s.DropStep() {
	}
}
