package keyspace

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/sluicehq/sluice/gcra"
	"github.com/sluicehq/sluice/lease"
	"github.com/sluicehq/sluice/window"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMixedKindsAreOneKey: a key holding a TAT, window counters and leases
// is one key to Len, Expires and Delete, and Delete journals every kind.
func TestMixedKindsAreOneKey(t *testing.T) {
	j := &recorder{}
	ks := New(4, j)
	k := []byte("k")
	gl, err := gcra.NewLimit(5, 1, 60)
	require.NoError(t, err)
	_, err = ks.Throttle(k, epoch, gl, 1) // TAT epoch+60s
	require.NoError(t, err)
	wl := windowLimit(t, 1, 60)
	require.False(t, ks.Take(window.Fixed, k, epoch, wl, 1).Limited) // until epoch+60s
	_, err = ks.Acquire(k, epoch, 2, 120*sec)
	require.NoError(t, err)
	_, err = ks.Throttle([]byte("other"), epoch, gl, 1)
	require.NoError(t, err)

	assert.Equal(t, 2, ks.Len(), "k counts once")
	st := ks.Stats()
	assert.Equal(t, []int{2, 2, 1, 1}, []int{st.Keys, st.GCRA, st.Windows, st.Leases})
	at, ok := ks.Expires(k, epoch)
	assert.True(t, ok)
	assert.Equal(t, epoch+120*sec, at, "the last of its state: the lease")

	j.changes = nil
	assert.True(t, ks.Delete(k, epoch))
	assert.False(t, ks.Delete(k, epoch), "everything went at once")
	_, ok = ks.Expires(k, epoch)
	assert.False(t, ok)
	assert.Equal(t, 1, ks.Len())
	assert.Equal(t, []string{"delete gcra k", "delete window k", "delete lease k"}, j.changes)

	// Dropping one kind of several keeps the name counted once.
	_, _ = ks.Throttle(k, epoch, gl, 1)
	ks.Take(window.Sliding, k, epoch, wl, 1)
	assert.Equal(t, 2, ks.Len())
	_, _ = ks.Throttle(k, epoch, gl, -10) // refund to full: the TAT goes
	assert.Equal(t, 2, ks.Len())
	ks.Sweep(epoch+10*60*sec, 1<<30)
	assert.Zero(t, ks.Len())
	assert.Equal(t, 0, ks.Stats().Keys)
}

// TestDeleteCountsOnlyLiveState: DEL answers for state that still matters;
// expired state not yet swept is removed but not counted.
func TestDeleteCountsOnlyLiveState(t *testing.T) {
	ks := New(1, nil)
	gl, _ := gcra.NewLimit(0, 1, 1)
	_, _ = ks.Throttle([]byte("a"), epoch, gl, 1)
	assert.Equal(t, 1, ks.Len())
	assert.False(t, ks.Delete([]byte("a"), epoch+2*sec))
	assert.Zero(t, ks.Len())
}

// TestSweepWithAnyBudgetEnds: a sweep with a budget far above the number
// of slots makes one pass and returns while keys are live (DEBUG SWEEP
// used to cycle until the budget ran out, holding a shard lock).
func TestSweepWithAnyBudgetEnds(t *testing.T) {
	ks := New(2, nil)
	gl, _ := gcra.NewLimit(0, 1, 3600)
	for i := range 1000 {
		_, err := ks.Throttle([]byte(fmt.Sprint(i)), epoch, gl, 1)
		require.NoError(t, err)
	}
	_, _ = ks.Acquire([]byte("l"), epoch, 1, 3600*sec)
	ks.Take(window.Fixed, []byte("w"), epoch, windowLimit(t, 1, 3600), 1)
	assert.Zero(t, ks.Sweep(epoch+sec, 1<<62))
	assert.Equal(t, 1002, ks.Len())
	assert.Equal(t, 1002, ks.Sweep(epoch+3600*sec, 1<<62))
}

// state is a keyspace's content as text: kind, key, expiry and value of
// every piece of state, for comparisons.
func state(ks *Keyspace) map[string]string {
	m := map[string]string{}
	ks.Range(func(c Change) {
		m[fmt.Sprintf("%v/%q", c.Kind, c.Key)] = fmt.Sprintf("%d %x", c.Expires, c.Value)
	})
	return m
}

// stream is a Journal that keeps copies of the changes.
type stream struct{ changes []Change }

func (s *stream) Record(c Change) {
	c.Key = bytes.Clone(c.Key)
	c.Value = bytes.Clone(c.Value)
	s.changes = append(s.changes, c)
}

// TestStreamRebuildsTheKeyspace is the property persistence and
// replication stand on: applying the change stream, in order, to an empty
// keyspace (as recovery and a replica do) rebuilds the same state, for
// every kind and every operation; and Len counts the key names Range
// reports. It also checks the Created flag against the stream itself.
func TestStreamRebuildsTheKeyspace(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	j := &stream{}
	ks := New(4, j)
	keys := make([][]byte, 200)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("key:%d", i))
	}
	now := epoch
	gl, _ := gcra.NewLimit(3, 2, 10)
	wl := windowLimit(t, 3, 10)
	var ids []int64
	for step := 0; step < 20000; step++ {
		k := keys[rng.IntN(len(keys))]
		switch op := rng.IntN(100); {
		case op < 40:
			_, err := ks.Throttle(k, now, gl, rng.Int64N(4)-1)
			require.NoError(t, err)
		case op < 50:
			checks := []Check{{Key: k, Limit: gl}, {Key: keys[rng.IntN(len(keys))], Limit: gl}}
			_, err := ks.ThrottleMulti(checks, now, 1, make([]gcra.Result, 2))
			require.NoError(t, err)
		case op < 65:
			ks.Take(window.Algorithm(rng.IntN(2)), k, now, wl, rng.Int64N(3))
		case op < 72:
			checks := []WindowCheck{{Key: k, Limit: wl}, {Key: keys[rng.IntN(len(keys))], Limit: wl}}
			ks.TakeMulti(window.Sliding, checks, now, 1, make([]gcra.Result, 2))
		case op < 80:
			r, err := ks.Acquire(k, now, 3, (1+rng.Int64N(20))*sec)
			require.NoError(t, err)
			if r.Acquired {
				ids = append(ids, r.ID)
			}
		case op < 84 && len(ids) > 0:
			ks.Release(k, ids[rng.IntN(len(ids))], now)
		case op < 87 && len(ids) > 0:
			ks.Renew(k, ids[rng.IntN(len(ids))], now, 5*sec)
		case op < 90:
			ks.Delete(k, now)
		case op < 93:
			ks.Sweep(now, 16)
		case op < 94 && step%50 == 0:
			ks.Flush()
		default:
			now += rng.Int64N(2 * sec)
		}
	}
	require.NotEmpty(t, j.changes)

	// Created is true exactly when the stream so far held nothing of the
	// key's kind.
	held := map[string]bool{}
	for i, c := range j.changes {
		id := fmt.Sprintf("%v/%s", c.Kind, c.Key)
		switch c.Op {
		case Flush:
			clear(held)
		case Set:
			require.Equal(t, !held[id], c.Created, "change %d: %s", i, id)
			held[id] = true
		case Delete:
			require.True(t, held[id], "change %d deletes %s, which the stream never set", i, id)
			delete(held, id)
		}
	}

	replica := New(2, nil)
	for _, c := range j.changes {
		require.NoError(t, replica.Restore(c, epoch)) // nothing expires: same state
	}
	assert.Equal(t, state(ks), state(replica))
	assert.Equal(t, ks.Len(), replica.Len())
	names := map[string]bool{}
	ks.Range(func(c Change) { names[string(c.Key)] = true })
	assert.Equal(t, len(names), ks.Len())

	// Restoring at a later instant drops what expired by then.
	later := New(2, nil)
	for _, c := range j.changes {
		require.NoError(t, later.Restore(c, now))
	}
	later.Range(func(c Change) { assert.Greater(t, c.Expires, now, "%v %s", c.Kind, c.Key) })
}

// TestRestoreRefusesWhatItCannotRead: a malformed change is an error and
// changes nothing.
func TestRestoreRefusesWhatItCannotRead(t *testing.T) {
	ks := New(1, nil)
	for _, c := range []Change{
		{Op: Set, Kind: Window, Key: []byte("w"), Expires: epoch, Value: []byte{1, 2}},
		{Op: Set, Kind: Lease, Key: []byte("l"), Expires: epoch, Value: make([]byte, 15)},
		{Op: Set, Kind: GCRA, Key: []byte("g"), Expires: epoch, Value: []byte{1}},
		{Op: Set, Kind: 9, Key: []byte("x"), Expires: epoch},
		{Op: 9},
	} {
		assert.Error(t, ks.Restore(c, epoch-sec), "%+v", c)
	}
	assert.Zero(t, ks.Len())
}

// TestNewLeaseIDsNeverClashWithRestoredOnes: a lease taken after a restore
// never gets the ID of a restored live lease on its key. The destination
// draws the very sequence the source drew, so every new ID clashes unless
// the keyspace draws again.
func TestNewLeaseIDsNeverClashWithRestoredOnes(t *testing.T) {
	j := &stream{}
	src := New(1, j)
	src.FixLeaseIDs(42)
	held := map[int64]bool{}
	for range 5 {
		r, err := src.Acquire([]byte("pool"), epoch, 10, sec)
		require.NoError(t, err)
		held[r.ID] = true
	}
	dst := New(1, nil)
	dst.FixLeaseIDs(42)
	for _, c := range j.changes {
		require.NoError(t, dst.Restore(c, epoch))
	}
	for range 5 {
		r, err := dst.Acquire([]byte("pool"), epoch, 10, sec)
		require.NoError(t, err)
		require.True(t, r.Acquired)
		assert.False(t, held[r.ID], "lease %d was restored live and is issued again", r.ID)
		held[r.ID] = true
	}
	assert.Equal(t, int64(10), dst.InFlight([]byte("pool"), epoch))
}

// TestLeaseIDsAreUnguessable: IDs are random in 1..lease.MaxID, not a
// counter: consecutive acquisitions (on one key or on several) are not
// neighbours, they spread over the whole range, and two keyspaces draw
// different ones, so an ID reveals nothing of other clients' activity.
func TestLeaseIDsAreUnguessable(t *testing.T) {
	a, b := New(4, nil), New(4, nil)
	var prev int64
	var high int
	seen := map[int64]bool{}
	for i := range 1000 {
		key := []byte(fmt.Sprintf("k%d", i%7))
		r, err := a.Acquire(key, epoch, 1000, sec)
		require.NoError(t, err)
		require.True(t, r.Acquired)
		require.GreaterOrEqual(t, r.ID, int64(1))
		require.LessOrEqual(t, r.ID, int64(lease.MaxID))
		require.False(t, seen[r.ID], "ID %d issued twice", r.ID)
		seen[r.ID] = true
		d := r.ID - prev
		require.False(t, d >= -1000 && d <= 1000, "IDs %d then %d are neighbours", prev, r.ID)
		prev = r.ID
		if r.ID > lease.MaxID/2 {
			high++
		}
		other, err := b.Acquire(key, epoch, 1000, sec)
		require.NoError(t, err)
		require.NotEqual(t, r.ID, other.ID)
	}
	assert.InDelta(t, 500, high, 100, "IDs spread over 1..MaxID: about half in the upper half")
}

// ExampleKeyspace shows one key holding two kinds of state: THROTTLE's TAT
// and a fixed window, deleted at once.
func ExampleKeyspace() {
	ks := New(16, nil)
	now := int64(1_893_456_000_000_000_000) // 2030-01-01T00:00:00Z
	perMinute, _ := gcra.NewLimit(4, 5, 60) // max_burst 4, 5 per 60 s
	for range 6 {
		r, _ := ks.Throttle([]byte("user:1"), now, perMinute, 1)
		fmt.Println("limited:", r.Limited, "remaining:", r.Remaining)
	}
	hourly, _ := window.NewLimit(100, 3600)
	r := ks.Take(window.Fixed, []byte("user:1"), now, hourly, 1)
	fmt.Println("window remaining:", r.Remaining)
	fmt.Println("keys:", ks.Len(), "deleted:", ks.Delete([]byte("user:1"), now), "keys:", ks.Len())
	// Output:
	// limited: false remaining: 4
	// limited: false remaining: 3
	// limited: false remaining: 2
	// limited: false remaining: 1
	// limited: false remaining: 0
	// limited: true remaining: 0
	// window remaining: 99
	// keys: 1 deleted: true keys: 0
}
