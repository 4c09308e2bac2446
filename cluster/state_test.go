package cluster

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStateInMemory(t *testing.T) {
	st, err := Open(Options{})
	require.NoError(t, err)
	v := st.View()
	require.True(t, ValidID(v.ID), v.ID)
	require.Nil(t, v.Topology)
	require.Equal(t, int64(-1), v.Version())
	require.False(t, v.Serves(0))
	require.True(t, v.Holds(0), "before a topology every slot's keys are kept")

	other, err := Open(Options{})
	require.NoError(t, err)
	require.NotEqual(t, v.ID, other.View().ID, "ids are random")

	_, err = Open(Options{NodeID: "nope"})
	require.ErrorIs(t, err, ErrNodeID)
}

func TestStateSetNodes(t *testing.T) {
	st, err := Open(Options{NodeID: id1})
	require.NoError(t, err)

	old, cur, err := st.SetNodes(threeMasters, 1, false)
	require.NoError(t, err)
	require.Nil(t, old.Topology)
	require.Same(t, cur, st.View())
	require.Equal(t, id1, cur.Self.ID)
	require.True(t, cur.Serves(5461) && cur.Serves(10922))
	require.False(t, cur.Serves(5460) || cur.Serves(10923))
	require.False(t, cur.Holds(0))
	dropped := old.Dropped(cur)
	require.Equal(t, Slots-(10922-5461+1), dropped.Count(), "the first map drops every slot not held")

	// The same version again changes nothing, an older one is refused.
	_, again, err := st.SetNodes(threeMasters, 1, false)
	require.NoError(t, err)
	require.Same(t, cur, again)
	_, _, err = st.SetNodes(threeMasters, 0, false)
	require.ErrorIs(t, err, ErrVersion)
	require.Same(t, cur, st.View())

	// A bad map is refused and the current one stays.
	_, _, err = st.SetNodes(id0+" 127.0.0.1 7000 master - 0-100", 9, false)
	require.ErrorContains(t, err, "served by no node")
	require.Same(t, cur, st.View())

	// Version 2 moves 5461-6000 from id1 to id0.
	moved := id0 + " 127.0.0.1 7000 master - 0-6000\n" + id1 + " 127.0.0.1 7001 master - 6001-10922\n" + id2 + " 127.0.0.1 7002 master - 10923-16383"
	old, cur, err = st.SetNodes(moved, 2, false)
	require.NoError(t, err)
	require.False(t, cur.Serves(5461))
	dropped = old.Dropped(cur)
	require.Equal(t, 6000-5461+1, dropped.Count())
	require.True(t, dropped.Has(5461) && dropped.Has(6000) && !dropped.Has(6001))

	// FORCE takes an older version.
	_, cur, err = st.SetNodes(threeMasters, 1, true)
	require.NoError(t, err)
	require.Equal(t, int64(1), cur.Version())
	require.True(t, cur.Serves(5461))
}

func TestStateReplicaHoldsItsMastersSlots(t *testing.T) {
	st, err := Open(Options{NodeID: id3})
	require.NoError(t, err)
	_, cur, err := st.SetNodes(threeMasters+"\n"+id3+" 127.0.0.1 7003 slave "+id2, 1, false)
	require.NoError(t, err)
	require.Equal(t, Replica, cur.Self.Role)
	require.False(t, cur.Serves(Slots-1), "a replica serves no slot")
	require.True(t, cur.Holds(Slots-1) && cur.Holds(10923))
	require.False(t, cur.Holds(0))
}

func TestStateNotInTheMap(t *testing.T) {
	st, err := Open(Options{NodeID: id3})
	require.NoError(t, err)
	_, cur, err := st.SetNodes(threeMasters, 1, false)
	require.NoError(t, err)
	require.Nil(t, cur.Self)
	for _, s := range []int{0, 5461, Slots - 1} {
		require.False(t, cur.Serves(s) || cur.Holds(s))
	}
	// SETNODEID puts the node in the map it has.
	old, cur, err := st.SetNodeID(id2)
	require.NoError(t, err)
	require.Nil(t, old.Self)
	require.Equal(t, id2, cur.Self.ID)
	require.True(t, cur.Serves(Slots-1))
	_, _, err = st.SetNodeID("x")
	require.ErrorIs(t, err, ErrNodeID)
}

func TestStateKeptInDir(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(Options{Dir: dir})
	require.NoError(t, err)
	id := st.View().ID
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	require.NoError(t, err)
	require.Contains(t, string(b), "id "+id+"\n")

	// The id survives a restart; then a map is kept too.
	st, err = Open(Options{Dir: dir})
	require.NoError(t, err)
	require.Equal(t, id, st.View().ID)
	_, _, err = st.SetNodeID(id0)
	require.NoError(t, err)
	_, _, err = st.SetNodes(threeMasters, 4, false)
	require.NoError(t, err)

	st, err = Open(Options{Dir: dir})
	require.NoError(t, err)
	v := st.View()
	require.Equal(t, id0, v.ID)
	require.Equal(t, int64(4), v.Version())
	require.Equal(t, threeMasters, v.Topology.Text())
	require.True(t, v.Serves(0))

	// The flag's id wins over the kept one, and is kept.
	st, err = Open(Options{Dir: dir, NodeID: id2})
	require.NoError(t, err)
	require.True(t, st.View().Serves(Slots-1))
	st, err = Open(Options{Dir: dir})
	require.NoError(t, err)
	require.Equal(t, id2, st.View().ID)
}

func TestStateFileRefusesDamage(t *testing.T) {
	for name, content := range map[string]string{
		"no id":            "version 1\n" + threeMasters + "\n",
		"bad id":           "id 12\n",
		"bad version":      "id " + id0 + "\nversion x\n" + threeMasters + "\n",
		"version no nodes": "id " + id0 + "\nversion 3\n",
		"nodes no version": "id " + id0 + "\n" + threeMasters + "\n",
		"bad map":          "id " + id0 + "\nversion 3\n" + id0 + " 127.0.0.1 7000 master - 0-10\n",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, FileName), []byte(content), 0o600))
			_, err := Open(Options{Dir: dir})
			require.ErrorContains(t, err, "cluster state "+filepath.Join(dir, FileName))
		})
	}
}

func TestStateUnwritableDirRefusesTheChange(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(Options{Dir: dir})
	require.NoError(t, err)
	before := st.View()
	require.NoError(t, os.Mkdir(filepath.Join(dir, FileName+".tmp"), 0o700)) // the temporary file cannot be created
	_, _, err = st.SetNodes(threeMasters, 1, false)
	require.ErrorContains(t, err, "cluster state")
	require.Same(t, before, st.View(), "a change that is not kept is not made")
}
