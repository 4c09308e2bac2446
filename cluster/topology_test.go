package cluster

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const (
	id0 = "0000000000000000000000000000000000000000"
	id1 = "1111111111111111111111111111111111111111"
	id2 = "2222222222222222222222222222222222222222"
	id3 = "3333333333333333333333333333333333333333"
)

// threeMasters is the README's map: three masters on 7000-7002.
const threeMasters = id0 + " 127.0.0.1 7000 master - 0-5460\n" +
	id1 + " 127.0.0.1 7001 master - 5461-10922\n" +
	id2 + " 127.0.0.1 7002 master - 10923-16383"

func TestParse(t *testing.T) {
	top, err := Parse(threeMasters+"\n"+id3+" 10.0.0.9 7003 slave "+id1+"\n", 7)
	require.NoError(t, err)
	require.Equal(t, int64(7), top.Version)
	require.Len(t, top.Nodes, 4)
	require.Equal(t, id0, top.Owner(0).ID)
	require.Equal(t, id0, top.Owner(5460).ID)
	require.Equal(t, id1, top.Owner(5461).ID)
	require.Equal(t, id2, top.Owner(Slots-1).ID)
	require.Equal(t, "127.0.0.1:7001", top.Owner(6000).Addr)
	require.Equal(t, 3, top.Size())
	r := top.Replicas(id1)
	require.Len(t, r, 1)
	require.Equal(t, id3, r[0].ID)
	require.Equal(t, Replica, r[0].Role)
	require.Nil(t, top.Node(strings.Repeat("9", 40)))
	require.Equal(t, threeMasters+"\n"+id3+" 10.0.0.9 7003 slave "+id1, top.Text())
}

func TestParseMergesRangesAndToleratesSpacing(t *testing.T) {
	text := "\r\n  " + id0 + "  host-a.example  7000 MASTER -   0 1 2-9 5000-16383\r\n\n" +
		id1 + "\thost-b 7000 master - 10-4999 \r\n"
	top, err := Parse(text, 0)
	require.NoError(t, err)
	require.Equal(t, []Range{{0, 9}, {5000, 16383}}, top.Node(id0).Ranges)
	require.Equal(t, []Range{{10, 4999}}, top.Node(id1).Ranges)
	require.Equal(t, id0+" host-a.example 7000 master - 0-9 5000-16383\n"+id1+" host-b 7000 master - 10-4999", top.Text())
	again, err := Parse(top.Text(), 0)
	require.NoError(t, err)
	require.Equal(t, top.owner, again.owner)
}

func TestParseRefuses(t *testing.T) {
	whole := " 0-16383"
	for _, tc := range []struct{ name, text, want string }{
		{"empty", " \n\n", "no nodes"},
		{"short line", id0 + " 127.0.0.1 7000 master", "line 1: want <id>"},
		{"short id", "abc 127.0.0.1 7000 master -" + whole, `node id "abc": want 40 hex digits`},
		{"non-hex id", strings.Repeat("g", 40) + " 127.0.0.1 7000 master -" + whole, "want 40 hex digits"},
		{"duplicate id", id0 + " 127.0.0.1 7000 master -" + whole + "\n" + id0 + " 127.0.0.1 7001 master -", "line 2: node id " + id0 + " appears twice"},
		{"duplicate address", id0 + " 127.0.0.1 7000 master -" + whole + "\n" + id1 + " 127.0.0.1 7000 master -", "line 2: two nodes at 127.0.0.1:7000"},
		{"bad host", id0 + " a/b 7000 master -" + whole, `host "a/b"`},
		{"port 0", id0 + " 127.0.0.1 0 master -" + whole, `port "0": want 1..65535`},
		{"port too big", id0 + " 127.0.0.1 65536 master -" + whole, `port "65536"`},
		{"port not a number", id0 + " 127.0.0.1 x master -" + whole, `port "x"`},
		{"bad role", id0 + " 127.0.0.1 7000 leader -" + whole, `role "leader"`},
		{"master with a master", id0 + " 127.0.0.1 7000 master " + id1 + whole, "its master field must be -"},
		{"replica with slots", id0 + " 127.0.0.1 7000 master -" + whole + "\n" + id1 + " 127.0.0.1 7001 slave " + id0 + " 5", "a replica serves no slots"},
		{"replica of nobody", id0 + " 127.0.0.1 7000 master -" + whole + "\n" + id1 + " 127.0.0.1 7001 slave " + id2, "follows " + id2 + ", which is not a master"},
		{"replica of a replica", id0 + " 127.0.0.1 7000 master -" + whole + "\n" + id1 + " 127.0.0.1 7001 slave " + id0 + "\n" + id2 + " 127.0.0.1 7002 slave " + id1, "follows " + id1 + ", which is not a master"},
		{"replica bad master id", id0 + " 127.0.0.1 7000 master -" + whole + "\n" + id1 + " 127.0.0.1 7001 slave -", `master id "-"`},
		{"slot too big", id0 + " 127.0.0.1 7000 master - 0-16384", `slots "0-16384"`},
		{"negative slot", id0 + " 127.0.0.1 7000 master - -1", `slots "-1"`},
		{"reversed range", id0 + " 127.0.0.1 7000 master - 10-5 0-16383", `slots "10-5"`},
		{"not a slot", id0 + " 127.0.0.1 7000 master - a-b", `slots "a-b"`},
		{"slot owned twice", id0 + " 127.0.0.1 7000 master - 0-100\n" + id1 + " 127.0.0.1 7001 master - 100-16383", "line 2: slot 100 is already owned by " + id0},
		{"slot owned twice by one", id0 + " 127.0.0.1 7000 master - 0-16383 5", "slot 5 is already owned"},
		{"uncovered", id0 + " 127.0.0.1 7000 master - 0-100 102-16383", "slots 101-101 are served by no node"},
		{"uncovered tail", id0 + " 127.0.0.1 7000 master - 0-16000", "slots 16001-16383 are served by no node"},
		{"no slots at all", id0 + " 127.0.0.1 7000 master -", "slots 0-16383 are served by no node"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.text, 1)
			require.ErrorContains(t, err, tc.want)
		})
	}
	_, err := Parse(id0+" 127.0.0.1 7000 master -"+whole, -1)
	require.ErrorContains(t, err, "invalid cluster version -1")
}

func TestValidID(t *testing.T) {
	require.True(t, ValidID(id0))
	require.True(t, ValidID("0123456789abcdefABCDEF0123456789abcdef01"))
	require.False(t, ValidID(id0[:39]))
	require.False(t, ValidID(id0+"0"))
	require.False(t, ValidID(strings.Repeat("z", 40)))
}

// FuzzParse: Parse never panics, and a topology it accepts covers every
// slot once and reads back from its own Text to the same owners.
func FuzzParse(f *testing.F) {
	f.Add(threeMasters, int64(1))
	f.Add(threeMasters+"\n"+id3+" 127.0.0.1 7003 slave "+id0, int64(0))
	f.Add(id0+" ::1 7000 master - 0 1-16383", int64(5))
	f.Add(id0+" 127.0.0.1 7000 master - 0-16383 0", int64(5))
	f.Fuzz(func(t *testing.T, text string, version int64) {
		top, err := Parse(text, version)
		if err != nil {
			return
		}
		for s := range Slots {
			if top.Owner(s).Role != Master {
				t.Fatalf("slot %d served by a replica", s)
			}
		}
		again, err := Parse(top.Text(), version)
		if err != nil {
			t.Fatalf("Text does not parse back: %v\n%s", err, top.Text())
		}
		if again.owner != top.owner || again.Text() != top.Text() {
			t.Fatalf("Text does not round-trip:\n%s\n%s", top.Text(), again.Text())
		}
	})
}
