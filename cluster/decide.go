package cluster

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Shape is the cluster a controller maintains: how many masters share the
// slots and how many replicas each should have.
type Shape struct {
	Primaries int // masters serving slots; at least 1
	Replicas  int // replicas wanted per master; spares beyond it still join as replicas
}

// Member is a live node as it registered with the controller: its id and
// the address clients must use.
type Member struct {
	ID   string
	Host string
	Port int
}

// Decision is what [Decide] concluded: the topology text to publish, and
// what changed, one line each, for the log.
type Decision struct {
	// Text is the new topology in Kvrocks's SETNODES form; "" when no
	// topology can be formed yet (no live node).
	Text string
	// Changed reports whether Text differs from the current topology.
	Changed bool
	// Events says what changed and why, for the controller's log.
	Events []string
	// Refused, when a handover was asked and not granted, says why (""
	// when granted or none was asked).
	Refused string
}

// Handover is a planned handover asked of the controller (FAILOVER on a
// primary under etcd): From, a master that paused its writes until To,
// its replica, acknowledged every change, asks that To take its slots and
// From follow To. Revision is the topology version From checked the
// request against.
type Handover struct {
	From     string `json:"from"`
	To       string `json:"to"`
	Revision int64  `json:"revision"`
}

// plan is a topology being edited: nodes in order, each master's slots.
type plan struct {
	nodes []*planNode
}

type planNode struct {
	id, host string
	port     int
	master   string // "" for a master
	slots    []int  // a master's slots, sorted
}

func (p *plan) find(id string) *planNode {
	for _, n := range p.nodes {
		if n.id == id {
			return n
		}
	}
	return nil
}

func (p *plan) masters() []*planNode {
	var out []*planNode
	for _, n := range p.nodes {
		if n.master == "" {
			out = append(out, n)
		}
	}
	return out
}

func (p *plan) replicasOf(id string) []*planNode {
	var out []*planNode
	for _, n := range p.nodes {
		if n.master == id {
			out = append(out, n)
		}
	}
	return out
}

func (p *plan) remove(n *planNode) {
	p.nodes = slices.DeleteFunc(p.nodes, func(m *planNode) bool { return m == n })
}

func (p *plan) addrTaken(host string, port int) bool {
	for _, n := range p.nodes {
		if n.host == host && n.port == port {
			return true
		}
	}
	return false
}

// Decide is the controller's whole judgement, a pure function: given the
// current topology (nil before the first), the nodes whose registration is
// live, the replication offsets of live replicas (by id; a replica absent
// from offsets ranks below any known offset) and the shape to maintain, it
// returns the next topology. It never leaves a slot without a master:
//
//   - A handover (nil: none asked) is granted when the topology is still
//     the version it names, its From is a live master and its To a live
//     replica of From: To takes From's slots, From and From's other
//     replicas follow To. Otherwise Decision.Refused says why. A version
//     that moved means the request was checked against another map: the
//     node asks again rather than the controller guess.
//   - A master that is not live is replaced by its live replica with the
//     highest offset (ties: the first in the topology), which takes its
//     slots; the master's other replicas follow the new one. With no live
//     replica, its slots go to the live master serving the fewest (ties:
//     the first): empty state for those keys, which a limiter prefers to
//     refusing them.
//   - A replica that is not live leaves the topology (it rejoins, as a
//     replica, when it registers again).
//   - A live node at the address of a node the topology lists, or of one
//     placed earlier in the same decision, waits (its predecessor's
//     registration has not expired yet).
//   - A live node the topology does not list becomes a master, taking an
//     even share of the slots from the masters that have the most, while
//     there are fewer masters than shape.Primaries; otherwise a replica of
//     the master with the fewest replicas (ties: the first). New nodes are
//     placed in the order of their ids.
//   - While there are fewer masters than shape.Primaries and a master has
//     more than shape.Replicas replicas, its last replica becomes a master
//     with an even share of the slots.
//   - With no topology, the first live nodes in id order (at most
//     shape.Primaries) become masters with even ranges, the others
//     replicas: a cluster forms with the nodes it has and grows to its
//     shape as nodes join. With no live node there is nothing to decide.
//
// A live node listed at another address than it registered is moved to
// the registered one. The order of lines is kept; new nodes are appended.
func Decide(cur *Topology, live []Member, offsets map[string]int64, shape Shape, handover *Handover) Decision {
	shape.Primaries = max(shape.Primaries, 1)
	alive := map[string]Member{}
	for _, m := range live {
		alive[m.ID] = m
	}
	newcomers := slices.Clone(live)
	slices.SortFunc(newcomers, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	var d Decision
	p := &plan{}
	if cur != nil {
		for _, n := range cur.Nodes {
			pn := &planNode{id: n.ID, host: n.Host, port: n.Port, master: n.MasterID}
			for _, r := range n.Ranges {
				for s := r.First; s <= r.Last; s++ {
					pn.slots = append(pn.slots, s)
				}
			}
			p.nodes = append(p.nodes, pn)
		}
		if handover != nil {
			d.handOver(p, alive, cur.Version, *handover)
		}
		d.failover(p, alive, offsets)
		if len(p.masters()) == 0 {
			// Every node of the topology is gone: start over with the live ones.
			p = &plan{}
		}
	}
	// Live nodes listed at another address move there (a restart that
	// announces a new port); the address must be free.
	for _, n := range p.nodes {
		m := alive[n.id]
		if (m.Host != n.host || m.Port != n.port) && !p.addrTaken(m.Host, m.Port) {
			d.event("node %s moves from %s:%d to %s:%d", n.id, n.host, n.port, m.Host, m.Port)
			n.host, n.port = m.Host, m.Port
		}
	}
	if len(p.nodes) == 0 {
		d.form(p, newcomers, shape.Primaries)
	}
	for _, m := range newcomers {
		if p.find(m.ID) != nil {
			continue
		}
		if p.addrTaken(m.Host, m.Port) {
			d.event("node %s waits: %s:%d is still another node's", m.ID, m.Host, m.Port)
			continue
		}
		n := &planNode{id: m.ID, host: m.Host, port: m.Port}
		if len(p.masters()) < shape.Primaries {
			p.nodes = append(p.nodes, n)
			moved := p.rebalanceTo(n)
			d.event("node %s joins as master, taking %d slots (fewer masters than %d)", n.id, moved, shape.Primaries)
			continue
		}
		target := p.fewestReplicas()
		n.master = target.id
		p.nodes = append(p.nodes, n)
		d.event("node %s joins as replica of %s", n.id, target.id)
	}
	for len(p.masters()) < shape.Primaries {
		var donor *planNode
		for _, m := range p.masters() {
			if k := len(p.replicasOf(m.id)); k > shape.Replicas && (donor == nil || k > len(p.replicasOf(donor.id))) {
				donor = m
			}
		}
		if donor == nil {
			break
		}
		rs := p.replicasOf(donor.id)
		r := rs[len(rs)-1]
		r.master = ""
		moved := p.rebalanceTo(r)
		d.event("replica %s of %s becomes a master, taking %d slots (fewer masters than %d, %d replicas above %d)",
			r.id, donor.id, moved, shape.Primaries, len(rs)-shape.Replicas, shape.Replicas)
	}
	if handover != nil && cur == nil {
		d.Refused = "no topology yet"
	}
	if len(p.nodes) == 0 {
		return d
	}
	d.Text = p.text()
	d.Changed = cur == nil || d.Text != cur.Text()
	return d
}

// handOver grants h when it still holds (see Decide), or says in
// d.Refused why not.
func (d *Decision) handOver(p *plan, alive map[string]Member, version int64, h Handover) {
	from, to := p.find(h.From), p.find(h.To)
	_, fromLive := alive[h.From]
	_, toLive := alive[h.To]
	switch {
	case h.Revision != version:
		d.Refused = fmt.Sprintf("the topology changed (version %d, the request checked %d)", version, h.Revision)
	case from == nil || from.master != "":
		d.Refused = fmt.Sprintf("node %s is not a master of the topology", h.From)
	case to == nil || to.master != from.id:
		d.Refused = fmt.Sprintf("node %s is not a replica of %s", h.To, h.From)
	case !fromLive || !toLive:
		d.Refused = "a node of the handover is not registered"
	}
	if d.Refused != "" {
		d.event("handover of %s to %s refused: %s", h.From, h.To, d.Refused)
		return
	}
	for _, r := range p.replicasOf(from.id) {
		r.master = to.id
	}
	to.master, to.slots = "", from.slots
	from.master, from.slots = to.id, nil
	d.event("planned handover (FAILOVER): master %s hands its %d slots to its replica %s and follows it", from.id, len(to.slots), to.id)
}

// failover removes the nodes that are not alive: a master is replaced by
// its best live replica or, without one, its slots go to the live master
// serving the fewest (after every promotion). When no master is left the
// plan is empty of masters and the caller starts over.
func (d *Decision) failover(p *plan, alive map[string]Member, offsets map[string]int64) {
	isAlive := func(id string) bool { _, ok := alive[id]; return ok }
	var orphans []*planNode
	for _, m := range p.masters() {
		if isAlive(m.id) {
			continue
		}
		var best *planNode
		for _, r := range p.replicasOf(m.id) {
			if isAlive(r.id) && (best == nil || offset(offsets, r.id) > offset(offsets, best.id)) {
				best = r
			}
		}
		if best == nil {
			orphans = append(orphans, m)
			continue
		}
		best.master, best.slots = "", m.slots
		for _, r := range p.replicasOf(m.id) {
			r.master = best.id
		}
		p.remove(m)
		d.event("master %s is gone: its replica %s (offset %d) takes its %d slots", m.id, best.id, offset(offsets, best.id), len(m.slots))
	}
	for _, n := range slices.Clone(p.nodes) {
		if !isAlive(n.id) && n.master != "" {
			p.remove(n)
			d.event("replica %s is gone", n.id)
		}
	}
	for _, m := range orphans {
		p.remove(m)
	}
	for _, m := range orphans {
		var heir *planNode
		for _, o := range p.masters() {
			if heir == nil || len(o.slots) < len(heir.slots) {
				heir = o
			}
		}
		if heir == nil {
			d.event("master %s is gone with every other node of the topology", m.id)
			continue
		}
		heir.slots = append(heir.slots, m.slots...)
		slices.Sort(heir.slots)
		d.event("master %s is gone with no live replica: master %s takes its %d slots (their state starts empty)", m.id, heir.id, len(m.slots))
	}
}

// form starts a topology: the first live nodes (at most primaries, in id
// order, each at a free address) become masters of even ranges, split as
// redis-cli --cluster create splits them (0-5460, 5461-10922, 10923-16383).
func (d *Decision) form(p *plan, live []Member, primaries int) {
	var ms []*planNode
	for _, m := range live {
		if len(ms) < primaries && !p.addrTaken(m.Host, m.Port) {
			n := &planNode{id: m.ID, host: m.Host, port: m.Port}
			p.nodes, ms = append(p.nodes, n), append(ms, n)
		}
	}
	per, first := float64(Slots)/float64(len(ms)), 0
	for i, n := range ms {
		last := int(math.Round(float64(i+1)*per - 1)) // redis-cli --cluster create's split
		if i == len(ms)-1 {
			last = Slots - 1
		}
		for s := first; s <= last; s++ {
			n.slots = append(n.slots, s)
		}
		d.event("node %s forms the cluster as master of slots %d-%d", n.id, first, last)
		first = last + 1
	}
}

// offset is a replica's known offset, -1 when unknown.
func offset(offsets map[string]int64, id string) int64 {
	if o, ok := offsets[id]; ok {
		return o
	}
	return -1
}

func (d *Decision) event(format string, args ...any) {
	d.Events = append(d.Events, fmt.Sprintf(format, args...))
}

// fewestReplicas is the master with the fewest replicas (ties: the first).
func (p *plan) fewestReplicas() *planNode {
	var best *planNode
	bestN := 0
	for _, m := range p.masters() {
		if k := len(p.replicasOf(m.id)); best == nil || k < bestN {
			best, bestN = m, k
		}
	}
	return best
}

// rebalanceTo gives n, a master with no slots, an even share of the slots:
// the masters that hold the most give first, each what it holds above the
// new even share, its highest slots first. It returns how many slots moved.
func (p *plan) rebalanceTo(n *planNode) int {
	masters := p.masters()
	share := Slots / len(masters)
	slices.SortStableFunc(masters, func(a, b *planNode) int { return cmp.Compare(len(b.slots), len(a.slots)) })
	moved := 0
	for _, m := range masters {
		if m == n || len(m.slots) <= share {
			continue
		}
		give := min(len(m.slots)-share, share-moved)
		if give <= 0 {
			break
		}
		n.slots = append(n.slots, m.slots[len(m.slots)-give:]...)
		m.slots = m.slots[:len(m.slots)-give]
		moved += give
	}
	slices.Sort(n.slots)
	return moved
}

// text writes the plan as SETNODES text, each master's slots as ranges.
func (p *plan) text() string {
	var b strings.Builder
	for i, n := range p.nodes {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(n.id + " " + n.host + " " + strconv.Itoa(n.port))
		if n.master != "" {
			b.WriteString(" slave " + n.master)
			continue
		}
		b.WriteString(" master -")
		for j := 0; j < len(n.slots); {
			k := j
			for k+1 < len(n.slots) && n.slots[k+1] == n.slots[k]+1 {
				k++
			}
			b.WriteString(" " + Range{n.slots[j], n.slots[k]}.String())
			j = k + 1
		}
	}
	return b.String()
}
