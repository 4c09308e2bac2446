package cluster

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The nodes of the decision tables: node "a" has id "aaaa…" (40 digits)
// and port 7000, "b" 7001, and so on.
// Names past "f" take the digits 0-3 (ids are hex).
func tid(name string) string {
	return strings.Repeat(string("abcdef0123"[strings.Index("abcdefghij", name)]), IDLen)
}

func tmember(name string) Member {
	return Member{ID: tid(name), Host: "127.0.0.1", Port: 7000 + strings.Index("abcdefghij", name)}
}

// ttext spells a topology in short lines, "a master 0-5460" or "d slave a",
// as SETNODES text.
func ttext(lines ...string) string {
	var out []string
	for _, l := range lines {
		f := strings.Fields(l)
		m := tmember(f[0])
		s := fmt.Sprintf("%s %s %d %s", m.ID, m.Host, m.Port, f[1])
		if f[1] == "slave" {
			s += " " + tid(f[2])
		} else {
			s += " -"
			for _, r := range f[2:] {
				s += " " + r
			}
		}
		out = append(out, s)
	}
	return strings.Join(out, "\n")
}

func TestDecide(t *testing.T) {
	six := []string{"a master 0-5460", "b master 5461-10922", "c master 10923-16383", "d slave a", "e slave b", "f slave c"}
	shape := Shape{Primaries: 3, Replicas: 1}
	for _, tc := range []struct {
		name    string
		cur     []string // nil: no topology yet
		live    string   // the live nodes, one letter each
		offsets map[string]int64
		shape   Shape
		want    []string // nil: no topology can be formed
		changed bool
	}{
		{name: "first boot with one node: it serves every slot",
			live: "a", want: []string{"a master 0-16383"}, changed: true},
		{name: "first boot with six nodes: three even masters, a replica each",
			live: "fedcba", want: six, changed: true},
		{name: "first boot with four nodes and one primary wanted",
			live: "abcd", shape: Shape{Primaries: 1, Replicas: 1},
			want: []string{"a master 0-16383", "b slave a", "c slave a", "d slave a"}, changed: true},
		{name: "no live node: nothing to decide", live: ""},
		{name: "steady state: unchanged", cur: six, live: "abcdef", want: six},
		{name: "a dead primary: its replica takes its slots",
			cur: six, live: "bcdef",
			want: []string{"b master 5461-10922", "c master 10923-16383", "d master 0-5460", "e slave b", "f slave c"}, changed: true},
		{name: "a dead primary with two replicas: the highest offset wins, the other follows it",
			cur:  []string{"a master 0-8191", "b master 8192-16383", "c slave a", "d slave a", "e slave b"},
			live: "bcde", offsets: map[string]int64{tid("c"): 10, tid("d"): 12}, shape: Shape{Primaries: 2, Replicas: 1},
			want: []string{"b master 8192-16383", "c slave d", "d master 0-8191", "e slave b"}, changed: true},
		{name: "equal offsets: the first replica in the topology wins",
			cur:  []string{"a master 0-8191", "b master 8192-16383", "c slave a", "d slave a"},
			live: "bcd", offsets: map[string]int64{tid("c"): 12, tid("d"): 12}, shape: Shape{Primaries: 2, Replicas: 1},
			want: []string{"b master 8192-16383", "c master 0-8191", "d slave c"}, changed: true},
		{name: "an unknown offset ranks below a known one",
			cur:  []string{"a master 0-8191", "b master 8192-16383", "c slave a", "d slave a"},
			live: "bcd", offsets: map[string]int64{tid("d"): 0}, shape: Shape{Primaries: 2, Replicas: 1},
			want: []string{"b master 8192-16383", "c slave d", "d master 0-8191"}, changed: true},
		{name: "a dead primary and its dead replica: the least-loaded master takes the slots",
			cur:  []string{"a master 0-5460", "b master 5461-10922", "c master 10923-16383", "d slave a", "e slave b"},
			live: "bce",
			want: []string{"b master 5461-10922", "c master 0-5460 10923-16383", "e slave b"}, changed: true},
		{name: "two dead primaries without replicas: the survivor takes both",
			cur: []string{"a master 0-5460", "b master 5461-10922", "c master 10923-16383"}, live: "c",
			want: []string{"c master 0-16383"}, changed: true},
		{name: "a dead replica leaves",
			cur: six, live: "abcdf",
			want: []string{"a master 0-5460", "b master 5461-10922", "c master 10923-16383", "d slave a", "f slave c"}, changed: true},
		{name: "a node joins a full cluster: replica of the shard with the fewest",
			cur:  []string{"a master 0-5460", "b master 5461-10922", "c master 10923-16383", "d slave a", "f slave c"},
			live: "abcdfg",
			want: []string{"a master 0-5460", "b master 5461-10922", "c master 10923-16383", "d slave a", "f slave c", "g slave b"}, changed: true},
		{name: "a node joins while masters are missing: a master with an even share",
			cur:  []string{"b master 5461-10922", "c master 0-5460 10923-16383"},
			live: "bcg",
			want: []string{"b master 5461-10922", "c master 0-5460", "g master 10923-16383"}, changed: true},
		{name: "nodes join one by one: each new master takes an even share",
			cur: []string{"a master 0-16383"}, live: "ab",
			want: []string{"a master 0-8191", "b master 8192-16383"}, changed: true},
		{name: "masters missing and a shard with a spare replica: the spare becomes a master",
			cur:  []string{"b master 0-8191", "c master 8192-16383", "d slave b", "e slave b", "f slave c"},
			live: "bcdef",
			want: []string{"b master 0-5460", "c master 8192-13653", "d slave b", "e master 5461-8191 13654-16383", "f slave c"}, changed: true},
		{name: "every node of the topology gone: the live ones form a new one",
			cur: []string{"a master 0-16383", "b slave a"}, live: "cd",
			want: []string{"c master 0-8191", "d master 8192-16383"}, changed: true},
		{name: "a restarted primary rejoins as a replica",
			cur:  []string{"b master 5461-10922", "c master 10923-16383", "d master 0-5460", "e slave b", "f slave c"},
			live: "abcdef",
			want: []string{"b master 5461-10922", "c master 10923-16383", "d master 0-5460", "e slave b", "f slave c", "a slave d"}, changed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cur *Topology
			if tc.cur != nil {
				var err error
				cur, err = Parse(ttext(tc.cur...), 7)
				require.NoError(t, err)
			}
			var live []Member
			for _, c := range tc.live {
				live = append(live, tmember(string(c)))
			}
			sh := tc.shape
			if sh == (Shape{}) {
				sh = shape
			}
			d := Decide(cur, live, tc.offsets, sh, nil)
			if tc.want == nil {
				require.Empty(t, d.Text)
				require.False(t, d.Changed)
				return
			}
			require.Equal(t, ttext(tc.want...), d.Text, "events: %q", d.Events)
			require.Equal(t, tc.changed, d.Changed)
			require.Equal(t, tc.changed, len(d.Events) > 0, "events: %q", d.Events)
			_, err := Parse(d.Text, 8)
			require.NoError(t, err)
		})
	}
}

func TestDecideMovesANodeToItsNewAddress(t *testing.T) {
	cur, err := Parse(ttext("a master 0-16383", "b slave a"), 3)
	require.NoError(t, err)
	b := tmember("b")
	b.Port = 9000
	d := Decide(cur, []Member{tmember("a"), b}, nil, Shape{Primaries: 1, Replicas: 1}, nil)
	require.True(t, d.Changed)
	require.Contains(t, d.Text, tid("b")+" 127.0.0.1 9000 slave "+tid("a"))
}

func TestDecideANewcomerAtATakenAddressWaits(t *testing.T) {
	cur, err := Parse(ttext("a master 0-16383"), 3)
	require.NoError(t, err)
	imposter := tmember("a")
	imposter.ID = tid("b")
	d := Decide(cur, []Member{tmember("a"), imposter}, nil, Shape{Primaries: 3, Replicas: 1}, nil)
	require.False(t, d.Changed)
	require.Equal(t, cur.Text(), d.Text)
	require.Len(t, d.Events, 1)
}

// TestDecideNeverLeavesASlotUncovered: from random topologies, 400 random
// live sets keep every slot served (Parse refuses a map with an unowned
// slot), list only live nodes, and keep every live node that is placed.
func TestDecideNeverLeavesASlotUncovered(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	names := "abcdefghij"
	var cur *Topology
	for step := range 400 {
		var live []Member
		for _, c := range names {
			if rng.IntN(4) > 0 {
				live = append(live, tmember(string(c)))
			}
		}
		offsets := map[string]int64{}
		for _, m := range live {
			offsets[m.ID] = rng.Int64N(5)
		}
		shape := Shape{Primaries: 1 + rng.IntN(4), Replicas: rng.IntN(3)}
		d := Decide(cur, live, offsets, shape, nil)
		if len(live) == 0 {
			require.Empty(t, d.Text)
			continue
		}
		next, err := Parse(d.Text, int64(step))
		require.NoError(t, err, "step %d: %q", step, d.Events)
		require.Len(t, next.Nodes, len(live), "step %d: every live node is placed", step)
		masters := 0
		for _, n := range next.Nodes {
			if n.Role == Master {
				masters++
			}
		}
		require.LessOrEqual(t, masters, max(shape.Primaries, cur.masterCount()), "step %d", step)
		again := Decide(next, live, offsets, shape, nil)
		require.False(t, again.Changed && masters >= shape.Primaries, "step %d: a second decision changes nothing once the shape is met: %q", step, again.Events)
		cur = next
	}
}

func (t *Topology) masterCount() int {
	if t == nil {
		return 0
	}
	n := 0
	for _, m := range t.Nodes {
		if m.Role == Master {
			n++
		}
	}
	return n
}

func TestDecideHandover(t *testing.T) {
	two := []string{"a master 0-8191", "b master 8192-16383", "c slave a", "d slave b", "e slave a"}
	for _, tc := range []struct {
		name    string
		live    string
		h       Handover // names, and the version the request checked
		want    []string // nil: unchanged
		refused string   // the start of Decision.Refused; "" granted
	}{
		{name: "granted: the replica takes the slots, the master and its other replica follow it",
			live: "abcde", h: Handover{From: "a", To: "c", Revision: 7},
			want: []string{"a slave c", "b master 8192-16383", "c master 0-8191", "d slave b", "e slave c"}},
		{name: "the other shard's handover leaves the first alone",
			live: "abcde", h: Handover{From: "b", To: "d", Revision: 7},
			want: []string{"a master 0-8191", "b slave d", "c slave a", "d master 8192-16383", "e slave a"}},
		{name: "a topology that moved since the request was checked",
			live: "abcde", h: Handover{From: "a", To: "c", Revision: 6}, refused: "the topology changed"},
		{name: "to a replica of another master",
			live: "abcde", h: Handover{From: "a", To: "d", Revision: 7}, refused: "node dddd"},
		{name: "from a replica",
			live: "abcde", h: Handover{From: "c", To: "a", Revision: 7}, refused: "node cccc"},
		{name: "to a node not in the topology",
			live: "abcde", h: Handover{From: "a", To: "f", Revision: 7}, refused: "node ffff"},
		{name: "to a replica whose registration is gone: refused, and the replica leaves",
			live: "abde", h: Handover{From: "a", To: "c", Revision: 7}, refused: "a node of the handover",
			want: []string{"a master 0-8191", "b master 8192-16383", "d slave b", "e slave a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur, err := Parse(ttext(two...), 7)
			require.NoError(t, err)
			var live []Member
			for _, c := range tc.live {
				live = append(live, tmember(string(c)))
			}
			h := Handover{From: tid(tc.h.From), To: tid(tc.h.To), Revision: tc.h.Revision}
			d := Decide(cur, live, nil, Shape{Primaries: 2, Replicas: 1}, &h)
			if tc.refused != "" {
				require.True(t, strings.HasPrefix(d.Refused, tc.refused), "refused: %q", d.Refused)
			} else {
				require.Empty(t, d.Refused)
			}
			want := tc.want
			if want == nil {
				want = two
			}
			require.Equal(t, ttext(want...), d.Text, "events: %q", d.Events)
			require.Equal(t, tc.want != nil, d.Changed)
			_, err = Parse(d.Text, 8)
			require.NoError(t, err)
			// Once published, the same request is stale: the controller
			// deletes it in the same transaction, but deciding again with
			// it refuses and changes nothing.
			next, err := Parse(d.Text, 8)
			require.NoError(t, err)
			again := Decide(next, live, nil, Shape{Primaries: 2, Replicas: 1}, &h)
			require.False(t, again.Changed, "events: %q", again.Events)
			require.NotEmpty(t, again.Refused)
		})
	}
}
