package cluster

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSlotMoveMarks: a slot moved with its state, as both nodes see it.
// The source serves it until its writes are forbidden, then redirects it
// to the destination; the destination keeps its keys while importing and
// serves it once imported; SETSLOT at the next version makes the move the
// topology's and ends the marks; SETNODES ends them too.
func TestSlotMoveMarks(t *testing.T) {
	withReplica := threeMasters + "\n" + id3 + " 127.0.0.1 7003 slave " + id1
	src, err := Open(Options{NodeID: id0})
	require.NoError(t, err)
	dst, err := Open(Options{NodeID: id1})
	require.NoError(t, err)
	rep, err := Open(Options{NodeID: id3})
	require.NoError(t, err)
	for _, st := range []*State{src, dst, rep} {
		_, _, err := st.SetNodes(withReplica, 1, false)
		require.NoError(t, err)
	}
	const slot = 100

	v := src.View()
	for _, c := range []struct {
		slot int
		dst  string
		err  error
	}{
		{6000, id1, ErrNotServed}, {slot, id3, ErrToReplica}, {slot, id0, ErrToMyself}, {slot, "nope", ErrNoNode},
	} {
		_, err := v.CanMigrate(Range{c.slot, c.slot}, c.dst)
		require.ErrorIs(t, err, c.err, "slot %d to %s", c.slot, c.dst)
	}
	_, err = v.CanMigrate(Range{5460, 5461}, id1)
	require.ErrorIs(t, err, ErrNotServed, "every slot of a range must be served here")
	_, err = rep.View().CanMigrate(Range{6000, 6000}, id2)
	require.ErrorIs(t, err, ErrNotMaster)
	n, err := v.CanMigrate(Range{slot, slot}, id1)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:7001", n.Addr)

	_, err = rep.Importing(Range{slot, slot})
	require.ErrorContains(t, err, "slave can't import slot")
	_, err = src.Importing(Range{slot, slot})
	require.ErrorContains(t, err, "can't import slot which belongs to me")
	d, err := dst.Importing(Range{slot, slot})
	require.NoError(t, err)
	require.True(t, d.Importing(slot))
	require.True(t, d.Holds(slot) && !d.Serves(slot), "importing: kept, not served")

	s, err := src.ForbidWrites(Range{slot, slot})
	require.NoError(t, err)
	require.True(t, s.WriteForbidden(slot) && !s.Serves(slot) && s.Holds(slot))
	require.Equal(t, 5460, s.ServedCount())
	src.AllowWrites(Range{slot, slot})
	require.True(t, src.View().Serves(slot), "a failed move serves the slot again")
	_, err = src.Migrated(Range{slot, slot}, n)
	require.ErrorIs(t, err, ErrMoving, "only a forbidden slot is handed over")

	_, err = src.ForbidWrites(Range{slot, slot})
	require.NoError(t, err)
	_, cur, err := dst.Imported(Range{slot, slot}, true)
	require.NoError(t, err)
	require.True(t, cur.Serves(slot) && !cur.Importing(slot))
	s, err = src.Migrated(Range{slot, slot}, n)
	require.NoError(t, err)
	require.False(t, s.Serves(slot) || s.WriteForbidden(slot))
	require.Same(t, n, s.MigratedTo(slot))
	require.True(t, s.Holds(slot), "the source keeps the keys until the topology moves the slot")

	_, _, err = src.SetSlot(Range{slot, slot}, id1, 3)
	require.ErrorIs(t, err, ErrSlotVersion)
	_, _, err = src.SetSlot(Range{slot, slot}, id3, 2)
	require.ErrorContains(t, err, "not a master")
	for _, st := range []*State{src, dst} {
		old, cur, err := st.SetSlot(Range{slot, slot}, id1, 2)
		require.NoError(t, err)
		require.Equal(t, int64(2), cur.Version())
		require.Equal(t, id1, cur.Topology.Owner(slot).ID)
		require.Nil(t, cur.MigratedTo(slot))
		if st == src {
			dropped := old.Dropped(cur)
			require.Equal(t, 1, dropped.Count(), "the source drops the slot's keys")
			require.Equal(t, []Range{{0, 99}, {101, 5460}}, cur.Self.Ranges)
		} else {
			require.True(t, cur.Serves(slot))
			require.Equal(t, []Range{{100, 100}, {5461, 10922}}, cur.Self.Ranges)
		}
	}

	// SETNODES ends the marks: the map says where each slot is.
	_, err = src.ForbidWrites(Range{200, 200})
	require.NoError(t, err)
	_, err = src.Migrated(Range{200, 200}, n)
	require.NoError(t, err)
	_, cur, err = src.SetNodes(withReplica, 3, false)
	require.NoError(t, err)
	require.True(t, cur.Serves(200) && cur.MigratedTo(200) == nil)
}

// TestImportAbandonedAfterSuccess: a source that gave up after telling
// the destination to serve the slot (its IMPORT 1 timed out) sends IMPORT
// 2, and the destination stops serving the slot.
func TestImportAbandonedAfterSuccess(t *testing.T) {
	dst, err := Open(Options{NodeID: id1})
	require.NoError(t, err)
	_, _, err = dst.SetNodes(threeMasters, 1, false)
	require.NoError(t, err)
	_, err = dst.Importing(Range{7, 7})
	require.NoError(t, err)
	_, cur, err := dst.Imported(Range{7, 7}, true)
	require.NoError(t, err)
	require.True(t, cur.Serves(7))
	_, cur, err = dst.Imported(Range{7, 7}, false)
	require.NoError(t, err)
	require.False(t, cur.Serves(7) || cur.Holds(7))
	_, _, err = dst.Imported(Range{7, 7}, false)
	require.ErrorContains(t, err, "slot 7 is not being imported")
}
