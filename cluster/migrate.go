package cluster

import (
	"errors"
	"fmt"
)

// Slot moves with their state follow Apache Kvrocks: the node that serves
// a slot copies its keys to another master (CLUSTERX MIGRATE), refusing
// writes to the slot while the last changes drain, then redirects the slot
// to the destination, which serves it from then on although the topology
// still names the source; a controller then gives the slot to the
// destination in a new topology (CLUSTERX SETSLOT or SETNODES), which
// ends both marks. The marks live in memory only, as Kvrocks's do: a node
// restarted before the new topology serves the topology it kept.

// Errors of the slot-move methods; package commands words the replies.
var (
	ErrNotServed   = errors.New("can't migrate slot which doesn't belong to me")
	ErrNoNode      = errors.New("can't find the destination node id")
	ErrToReplica   = errors.New("can't migrate slot to a slave")
	ErrToMyself    = errors.New("can't migrate slot to myself")
	ErrNotMaster   = errors.New("slave can't migrate slot")
	ErrMoving      = errors.New("the slot's move changed meanwhile (a new topology was set)")
	ErrSlotVersion = errors.New("invalid cluster version: must be the current version + 1")
)

// moves are this node's slot moves in progress: they change which slots
// the node serves and holds without changing the topology. Never changed
// once a View holds them.
type moves struct {
	forbidden Bitmap        // slots whose writes are refused while their tail drains
	importing Bitmap        // slots whose keys another node copies here
	migrated  map[int]*Node // slots handed to another master, by that master
	imported  Bitmap        // slots taken from another master, served before the topology says so
}

// clone copies m for a change.
func (m *moves) clone() moves {
	c := *m
	c.migrated = make(map[int]*Node, len(m.migrated)+1)
	for s, n := range m.migrated {
		c.migrated[s] = n
	}
	return c
}

// del removes slot from b.
func (b *Bitmap) del(slot int) { b[slot>>6] &^= 1 << (slot & 63) }

// all reports whether f holds for every slot of r.
func (r Range) all(f func(slot int) bool) bool {
	for s := r.First; s <= r.Last; s++ {
		if !f(s) {
			return false
		}
	}
	return true
}

// WriteForbidden reports whether writes to slot are refused now: its
// keys are being handed to another node and the last changes drain
// (Kvrocks's TRYAGAIN). Reads are served meanwhile.
func (v *View) WriteForbidden(slot int) bool { return v.moves.forbidden.Has(slot) }

// MigratedTo is the master slot was handed to, which serves it before the
// topology says so; nil when slot was not handed over.
func (v *View) MigratedTo(slot int) *Node { return v.moves.migrated[slot] }

// ServedCount is the number of slots this node serves now.
func (v *View) ServedCount() int { return v.serves.Count() }

// Importing reports whether another node copies the keys of slot here.
func (v *View) Importing(slot int) bool { return v.moves.importing.Has(slot) }

// CanMigrate checks that this node may hand the slots of r to the master
// with id dst: it serves them as a master, dst is another master of the
// topology. It returns dst's node.
func (v *View) CanMigrate(r Range, dst string) (*Node, error) {
	if v.Topology == nil || v.Self == nil || v.Self.Role != Master {
		return nil, ErrNotMaster
	}
	n := v.Topology.Node(dst)
	switch {
	case n == nil:
		return nil, ErrNoNode
	case !r.all(func(s int) bool { return v.serves.Has(s) && v.Topology.Owner(s) == v.Self }):
		return nil, ErrNotServed
	case n == v.Self:
		return nil, ErrToMyself
	case n.Role != Master:
		return nil, ErrToReplica
	}
	return n, nil
}

// ForbidWrites starts refusing writes to the slots of r (which this node
// must serve): the last step of handing them to another node. It returns
// the view after.
func (st *State) ForbidWrites(r Range) (*View, error) {
	return st.changeMoves(func(v *View, m *moves) error {
		if !r.all(v.serves.Has) {
			return ErrNotServed
		}
		r.all(func(s int) bool { m.forbidden.add(s); return true })
		return nil
	})
}

// AllowWrites ends ForbidWrites when handing the slots over failed.
func (st *State) AllowWrites(r Range) {
	_, _ = st.changeMoves(func(_ *View, m *moves) error {
		r.all(func(s int) bool { m.forbidden.del(s); return true })
		return nil
	})
}

// Migrated hands the slots of r, whose writes ForbidWrites refused, to
// dst: from now on this node redirects them there. ErrMoving when a new
// topology came meanwhile (the slots' fate is then that topology's).
func (st *State) Migrated(r Range, dst *Node) (*View, error) {
	return st.changeMoves(func(v *View, m *moves) error {
		if !r.all(func(s int) bool { return m.forbidden.Has(s) && v.Topology.Owner(s) == v.Self }) {
			return ErrMoving
		}
		r.all(func(s int) bool { m.forbidden.del(s); m.migrated[s] = dst; return true })
		return nil
	})
}

// Importing marks the slots of r as being imported: this node keeps the
// keys another node copies here (its drop pass leaves them) but does not
// serve the slots yet. Only a master of the topology imports, and no slot
// it serves.
func (st *State) Importing(r Range) (*View, error) {
	return st.changeMoves(func(v *View, m *moves) error {
		switch {
		case v.Self == nil || v.Self.Role != Master:
			return errors.New("slave can't import slot")
		case !r.all(func(s int) bool { return !v.serves.Has(s) }):
			return errors.New("can't import slot which belongs to me")
		}
		r.all(func(s int) bool { m.importing.add(s); return true })
		return nil
	})
}

// Imported ends importing the slots of r: with ok this node serves them
// from now on (until a topology says otherwise); without, it forgets the
// import, even one that ended with ok (the caller removes the keys). It
// returns the views before and after.
func (st *State) Imported(r Range, ok bool) (old, cur *View, err error) {
	old = st.View()
	cur, err = st.changeMoves(func(_ *View, m *moves) error {
		if !ok && r.all(m.imported.Has) {
			// The source gave up after it told this node to serve the
			// slots (its request timed out): it serves them again.
			r.all(func(s int) bool { m.imported.del(s); return true })
			return nil
		}
		if !r.all(m.importing.Has) {
			return fmt.Errorf("slot %s is not being imported", r)
		}
		r.all(func(s int) bool {
			m.importing.del(s)
			if ok {
				m.imported.add(s)
			}
			return true
		})
		return nil
	})
	return old, cur, err
}

// changeMoves applies change to a copy of the current moves and publishes
// the view with them (in memory: moves are not kept on disk).
func (st *State) changeMoves(change func(v *View, m *moves) error) (*View, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	v := st.view.Load()
	m := v.moves.clone()
	if err := change(v, &m); err != nil {
		return nil, err
	}
	cur := newView(v.ID, v.Topology, m)
	st.view.Store(cur)
	return cur, nil
}

// SetSlot gives the slots of r to the master with id nodeID at version,
// which must be the current version + 1 (Kvrocks's CLUSTERX SETSLOT: the
// change applies to the topology it was computed from, so a node that
// missed one refuses it and needs SETNODES). The new topology is kept
// and published like SetNodes's; the slot moves of r end. It returns the
// views before and after.
func (st *State) SetSlot(r Range, nodeID string, version int64) (old, cur *View, err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	old = st.view.Load()
	if old.Topology == nil || version != old.Version()+1 {
		return nil, nil, fmt.Errorf("%w (%d, current %d)", ErrSlotVersion, version, old.Version())
	}
	t, err := old.Topology.withSlots(r, nodeID, version)
	if err != nil {
		return nil, nil, err
	}
	m := old.moves.clone()
	for s := r.First; s <= r.Last; s++ {
		delete(m.migrated, s)
		m.imported.del(s)
		m.forbidden.del(s)
	}
	cur, err = st.publish(newView(old.ID, t, m))
	return old, cur, err
}

// withSlots is a copy of t at version where the master nodeID serves the
// slots of r.
func (t *Topology) withSlots(r Range, nodeID string, version int64) (*Topology, error) {
	if r.First < 0 || r.Last >= Slots || r.First > r.Last {
		return nil, fmt.Errorf("%w: slots %s: want a slot or first-last within 0-%d", ErrNodes, r, Slots-1)
	}
	c := &Topology{Version: version, owner: t.owner}
	idx := -1
	for i, n := range t.Nodes {
		cp := *n
		cp.Ranges = nil
		c.Nodes = append(c.Nodes, &cp)
		if n.ID == nodeID {
			idx = i
		}
	}
	switch {
	case idx < 0:
		return nil, ErrNoNode
	case c.Nodes[idx].Role != Master:
		return nil, errors.New("the node is not a master")
	}
	for s := r.First; s <= r.Last; s++ {
		c.owner[s] = uint16(idx + 1)
	}
	c.setRanges()
	return c, nil
}
