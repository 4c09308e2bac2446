package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
)

// View is this node's place in a topology: what routing reads. A View is
// never changed once published; a new topology or node id publishes a new
// one.
type View struct {
	// ID is this node's id.
	ID string
	// Topology is the current topology; nil before the first one is set,
	// when no slot is served.
	Topology *Topology
	// Self is this node's line in Topology; nil when the topology does not
	// list ID (the node then serves no slot and redirects every key).
	Self   *Node
	serves Bitmap // slots Self serves as their master (or imported), but those migrated or write-forbidden
	holds  Bitmap // slots whose keys Self keeps: its own, its master's for a replica, or being imported
	moves  moves  // slot moves in progress (migrate.go)
}

// Serves reports whether this node serves slot: the hot path's one bit
// test.
func (v *View) Serves(slot int) bool { return v.serves.Has(slot) }

// Holds reports whether this node keeps the keys of slot: it serves the
// slot, or is a replica of its master. Before any topology every slot is
// held (the keys recovered from disk wait for one).
func (v *View) Holds(slot int) bool { return v.Topology == nil || v.holds.Has(slot) }

// Version is the topology's version, -1 before the first.
func (v *View) Version() int64 {
	if v.Topology == nil {
		return -1
	}
	return v.Topology.Version
}

// Dropped is the slots whose keys v held and next holds no more: what a
// node must delete when its view changes from v to next.
func (v *View) Dropped(next *View) Bitmap {
	held := v.holds
	if v.Topology == nil {
		for i := range held {
			held[i] = ^uint64(0)
		}
	}
	return held.Without(&next.holds)
}

// newView places id in t (nil: no topology yet), with the slot moves m.
func newView(id string, t *Topology, m moves) *View {
	v := &View{ID: id, Topology: t, moves: m}
	if t == nil {
		return v
	}
	v.Self = t.Node(id)
	if v.Self == nil {
		return v
	}
	defer v.applyMoves()
	master := v.Self
	if v.Self.Role == Replica {
		master = t.Node(v.Self.MasterID)
	}
	for _, r := range master.Ranges {
		for s := r.First; s <= r.Last; s++ {
			if master == v.Self {
				v.serves.add(s)
			}
			v.holds.add(s)
		}
	}
	return v
}

// applyMoves changes serves and holds by the slot moves: a slot migrated
// or write-forbidden is not served (its keys are kept), an imported one
// is, and the keys of the one being imported are kept.
func (v *View) applyMoves() {
	m := &v.moves
	for s := range m.migrated {
		v.serves.del(s)
	}
	for i, w := range m.forbidden {
		v.serves[i] &^= w
	}
	if v.Self.Role != Master {
		return
	}
	for i := range m.imported {
		v.serves[i] |= m.imported[i]
		v.holds[i] |= m.imported[i] | m.importing[i]
	}
}

// Announce is how this node describes itself where the topology does not
// (before one is set): the address and host name clients should use.
type Announce struct {
	IP       string // "" when not announced, as Redis shows it
	Port     int
	Hostname string // "" when none
}

// Options configure [Open].
type Options struct {
	// Dir keeps the node id and the topology in a file, [FileName], so a
	// restarted node keeps both; "" keeps them in memory only.
	Dir string
	// NodeID is this node's id; "" takes the one kept in Dir, or a new
	// random one (kept in Dir when there is one).
	NodeID string
	// Announce is how the node describes itself.
	Announce Announce
}

// State is this node's cluster membership: its id and the current
// topology, published as a [View]. Reading the view is one atomic load;
// changes are serialized and, with a directory, written to disk before
// they are published. It is safe for concurrent use.
type State struct {
	view atomic.Pointer[View]

	mu       sync.Mutex // serializes changes and the file
	file     string     // "" in memory
	announce Announce
}

// Open returns the state of a node: the id and topology kept in o.Dir, if
// any, with o.NodeID taking precedence over the kept id. A new id is drawn
// at random when there is none, and kept.
func Open(o Options) (*State, error) {
	if o.NodeID != "" && !ValidID(o.NodeID) {
		return nil, fmt.Errorf("node id %q: %w", o.NodeID, ErrNodeID)
	}
	st := &State{file: filePath(o.Dir), announce: o.Announce}
	kept, err := readFile(st.file)
	if err != nil {
		return nil, err
	}
	id := o.NodeID
	if id == "" {
		id = kept.id
	}
	if id == "" {
		id = randomID()
	}
	v := newView(id, kept.topology, moves{})
	if id != kept.id {
		if err := writeFile(st.file, v); err != nil {
			return nil, err
		}
	}
	st.view.Store(v)
	return st, nil
}

// randomID draws a node id as Redis does: 160 random bits in hex.
func randomID() string {
	var b [IDLen / 2]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// View is the current view.
func (st *State) View() *View { return st.view.Load() }

// Announced is how the node describes itself.
func (st *State) Announced() Announce {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.announce
}

// SetAnnounce changes how the node describes itself (the server sets the
// port it found when it listens on port 0).
func (st *State) SetAnnounce(a Announce) {
	st.mu.Lock()
	st.announce = a
	st.mu.Unlock()
}

// SetNodeID makes id this node's id (Kvrocks's CLUSTERX SETNODEID): the
// current topology is read again as seen by id. It returns the views
// before and after.
func (st *State) SetNodeID(id string) (old, cur *View, err error) {
	if !ValidID(id) {
		return nil, nil, ErrNodeID
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	old = st.view.Load()
	cur, err = st.publish(newView(id, old.Topology, old.moves))
	return old, cur, err
}

// SetNodes replaces the topology with text at version (Kvrocks's CLUSTERX
// SETNODES). A version older than the current one is refused with
// [ErrVersion] and the current version is accepted without change (the
// same map pushed again), unless force is set: then any valid map
// replaces the current one. It returns the views before and after (the
// same view when nothing changed).
func (st *State) SetNodes(text string, version int64, force bool) (old, cur *View, err error) {
	t, err := Parse(text, version)
	if err != nil {
		return nil, nil, err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	old = st.view.Load()
	if !force {
		if version < old.Version() {
			return nil, nil, fmt.Errorf("%w (%d < %d)", ErrVersion, version, old.Version())
		}
		if version == old.Version() {
			return old, old, nil
		}
	}
	// A new topology ends the slots handed over or taken (Kvrocks does
	// the same); a move under way keeps its marks and finds out when it
	// ends (Migrated).
	m := old.moves.clone()
	clear(m.migrated)
	m.imported = Bitmap{}
	cur, err = st.publish(newView(old.ID, t, m))
	return old, cur, err
}

// publish keeps v on disk, when there is a directory, and makes it
// current. Called with st.mu held.
func (st *State) publish(v *View) (*View, error) {
	if err := writeFile(st.file, v); err != nil {
		return nil, err
	}
	st.view.Store(v)
	return v, nil
}
