package cluster

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Role is a node's part in the topology.
type Role uint8

// The roles, spelled as Kvrocks's text and CLUSTER NODES spell them.
const (
	Master  Role = iota // "master": serves its slots
	Replica             // "slave": follows a master, serves none
)

func (r Role) String() string {
	if r == Replica {
		return "slave"
	}
	return "master"
}

// Node is one line of a topology.
type Node struct {
	ID   string // 40 hex digits
	Host string // IP address or host name, as clients must reach it
	Port int
	Role Role
	// MasterID is the id of the master a replica follows; "" for a master.
	MasterID string
	// Ranges are the slots a master serves, sorted and merged; none for a
	// replica.
	Ranges []Range
	// Addr is "host:port", as -MOVED names the node.
	Addr string
}

// Range is the slots First through Last, both included.
type Range struct{ First, Last int }

// Topology is which node serves each slot, at a version. Build one with
// [Parse]; it is never changed afterwards, so it may be shared freely.
type Topology struct {
	Version int64
	Nodes   []*Node // in the order of the text
	owner   [Slots]uint16
}

// IDLen is the length of a node id: 40 hex digits, as Redis and Kvrocks
// spell them.
const IDLen = 40

// Errors of Parse and State; their texts are the Go errors', commands words
// the replies.
var (
	ErrNodeID  = errors.New("invalid cluster node id: want 40 hex digits")
	ErrVersion = errors.New("invalid cluster version: older than the current one")
	ErrNodes   = errors.New("invalid nodes definition")
)

// ValidID reports whether id is 40 hex digits.
func ValidID(id string) bool {
	if len(id) != IDLen {
		return false
	}
	for i := range len(id) {
		c := id[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// Parse reads a topology in Kvrocks's CLUSTERX SETNODES text: one node a
// line (lines separated by "\n"; blank lines ignored), fields separated by
// spaces:
//
//	<id> <host> <port> master - <slot or first-last> ...
//	<id> <host> <port> slave <master id>
//
// It refuses, naming the line, an id that is not 40 hex digits or appears
// twice, two nodes at one address, a port outside 1..65535, a replica whose
// master is not a master of the text, a replica with slots, a slot outside
// 0..16383, a slot owned twice, a slot owned by nobody, and a negative
// version. Every error but the version's wraps [ErrNodes].
func Parse(text string, version int64) (*Topology, error) {
	if version < 0 {
		return nil, fmt.Errorf("invalid cluster version %d: must not be negative", version)
	}
	t, err := parse(text)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNodes, err)
	}
	t.Version = version
	return t, nil
}

func parse(text string) (*Topology, error) {
	t := &Topology{}
	byID := map[string]int{}
	addrs := map[string]bool{}
	lineNo := 0
	for line := range strings.SplitSeq(text, "\n") {
		lineNo++
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		n, slots, err := parseLine(fields)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", lineNo, err)
		}
		if _, dup := byID[n.ID]; dup {
			return nil, fmt.Errorf("line %d: node id %s appears twice", lineNo, n.ID)
		}
		if addrs[n.Addr] {
			return nil, fmt.Errorf("line %d: two nodes at %s", lineNo, n.Addr)
		}
		if len(t.Nodes) >= 1<<15 {
			return nil, fmt.Errorf("line %d: too many nodes", lineNo)
		}
		byID[n.ID], addrs[n.Addr] = len(t.Nodes), true
		t.Nodes = append(t.Nodes, n)
		for _, r := range slots {
			for s := r.First; s <= r.Last; s++ {
				if t.owner[s] != 0 {
					return nil, fmt.Errorf("line %d: slot %d is already owned by %s", lineNo, s, t.Nodes[t.owner[s]-1].ID)
				}
				t.owner[s] = uint16(len(t.Nodes))
			}
		}
	}
	if len(t.Nodes) == 0 {
		return nil, errors.New("no nodes")
	}
	for _, n := range t.Nodes {
		if n.Role != Replica {
			continue
		}
		m, ok := byID[n.MasterID]
		if !ok || t.Nodes[m].Role != Master {
			return nil, fmt.Errorf("replica %s follows %s, which is not a master of the topology", n.ID, n.MasterID)
		}
	}
	if r, ok := t.unowned(); ok {
		return nil, fmt.Errorf("slots %d-%d are served by no node (every slot 0-%d needs a master)", r.First, r.Last, Slots-1)
	}
	t.setRanges()
	return t, nil
}

// parseLine reads one node's fields; it returns the slot ranges as given.
func parseLine(f []string) (*Node, []Range, error) {
	if len(f) < 5 {
		return nil, nil, errors.New("want <id> <host> <port> master|slave <master id>|- [slots...]")
	}
	n := &Node{ID: f[0], Host: f[1]}
	if !ValidID(n.ID) {
		return nil, nil, fmt.Errorf("node id %q: want 40 hex digits", n.ID)
	}
	if !validHost(n.Host) {
		return nil, nil, fmt.Errorf("host %q: want an IP address or a host name", n.Host)
	}
	port, err := strconv.Atoi(f[2])
	if err != nil || port < 1 || port > 65535 {
		return nil, nil, fmt.Errorf("port %q: want 1..65535", f[2])
	}
	n.Port, n.Addr = port, n.Host+":"+f[2]
	switch strings.ToLower(f[3]) {
	case "master":
		if f[4] != "-" {
			return nil, nil, fmt.Errorf("master %s: its master field must be -, not %q", n.ID, f[4])
		}
	case "slave", "replica":
		n.Role = Replica
		if n.MasterID = f[4]; !ValidID(n.MasterID) {
			return nil, nil, fmt.Errorf("replica %s: master id %q: want 40 hex digits", n.ID, n.MasterID)
		}
		if len(f) > 5 {
			return nil, nil, fmt.Errorf("replica %s: a replica serves no slots", n.ID)
		}
		return n, nil, nil
	default:
		return nil, nil, fmt.Errorf("role %q: want master or slave", f[3])
	}
	var slots []Range
	for _, s := range f[5:] {
		r, err := parseRange(s)
		if err != nil {
			return nil, nil, err
		}
		slots = append(slots, r)
	}
	return n, slots, nil
}

// parseRange reads "n" or "first-last".
func parseRange(s string) (Range, error) {
	a, b, isRange := strings.Cut(s, "-")
	first, err1 := strconv.Atoi(a)
	last := first
	var err2 error
	if isRange {
		last, err2 = strconv.Atoi(b)
	}
	if err1 != nil || err2 != nil || first < 0 || last >= Slots || first > last {
		return Range{}, fmt.Errorf("slots %q: want a slot or first-last within 0-%d", s, Slots-1)
	}
	return Range{first, last}, nil
}

// validHost accepts an IP address or something that may be a host name:
// letters, digits, '.', '-' and '_', at most 255 bytes.
func validHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if h == "" || len(h) > 255 {
		return false
	}
	for i := range len(h) {
		c := h[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// unowned finds the first run of slots no master serves.
func (t *Topology) unowned() (Range, bool) {
	for s := 0; s < Slots; s++ {
		if t.owner[s] == 0 {
			e := s
			for e+1 < Slots && t.owner[e+1] == 0 {
				e++
			}
			return Range{s, e}, true
		}
	}
	return Range{}, false
}

// setRanges gives each master its slots as sorted, merged ranges.
func (t *Topology) setRanges() {
	for s := 0; s < Slots; {
		o := t.owner[s]
		e := s
		for e+1 < Slots && t.owner[e+1] == o {
			e++
		}
		n := t.Nodes[o-1]
		n.Ranges = append(n.Ranges, Range{s, e})
		s = e + 1
	}
}

// Owner is the master that serves slot.
func (t *Topology) Owner(slot int) *Node { return t.Nodes[t.owner[slot]-1] }

// Node finds a node by id, or returns nil.
func (t *Topology) Node(id string) *Node {
	for _, n := range t.Nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// Replicas lists the replicas of the master with id masterID, in the
// order of the text.
func (t *Topology) Replicas(masterID string) []*Node {
	var out []*Node
	for _, n := range t.Nodes {
		if n.Role == Replica && n.MasterID == masterID {
			out = append(out, n)
		}
	}
	return out
}

// Size is the number of masters that serve at least one slot: Redis's
// cluster_size.
func (t *Topology) Size() int {
	n := 0
	for _, m := range t.Nodes {
		if len(m.Ranges) > 0 {
			n++
		}
	}
	return n
}

// Text writes t back in the form Parse reads, one node a line, each
// master's slots as its merged ranges.
func (t *Topology) Text() string {
	var b strings.Builder
	for i, n := range t.Nodes {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s %s %d %s ", n.ID, n.Host, n.Port, n.Role)
		if n.Role == Replica {
			b.WriteString(n.MasterID)
			continue
		}
		b.WriteByte('-')
		for _, r := range n.Ranges {
			b.WriteByte(' ')
			b.WriteString(r.String())
		}
	}
	return b.String()
}

// String spells r as Kvrocks's text does: "5" or "0-5460".
func (r Range) String() string {
	if r.First == r.Last {
		return strconv.Itoa(r.First)
	}
	return strconv.Itoa(r.First) + "-" + strconv.Itoa(r.Last)
}
