package lease

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type memJournal struct{ m map[string][]byte }

func (j *memJournal) Put(key, value []byte) { j.m[string(key)] = append([]byte(nil), value...) }
func (j *memJournal) Delete(key []byte)     { delete(j.m, string(key)) }
func (j *memJournal) Flush()                { clear(j.m) }

// TestJournalRestore: journalled leases restore into a new store, expired
// ones are dropped, and new ids come after every restored one.
func TestJournalRestore(t *testing.T) {
	j := &memJournal{m: map[string][]byte{}}
	s := NewStore(4)
	s.SetJournal(j)
	now := int64(1893456000000000000)
	a, err := s.Acquire([]byte("k"), now, 3, 1000)
	require.NoError(t, err)
	b, err := s.Acquire([]byte("k"), now, 3, 60000)
	require.NoError(t, err)
	_, err = s.Acquire([]byte("other"), now, 1, 1000)
	require.NoError(t, err)
	released, _ := s.Release([]byte("other"), 3, now)
	require.True(t, released)
	require.Len(t, j.m, 1, "a key without leases is deleted from the journal")

	r := NewStore(4)
	later := now + 2e9 // lease a has expired, b has not
	for k, v := range j.m {
		assert.True(t, r.Restore([]byte(k), v, later))
	}
	assert.EqualValues(t, 1, r.InFlight([]byte("k"), later))
	ok, _ := r.Release([]byte("k"), b.ID, later)
	assert.True(t, ok, "lease b survived")
	c, err := r.Acquire([]byte("k"), later, 3, 1000)
	require.NoError(t, err)
	assert.Greater(t, c.ID, b.ID, "ids keep growing after a restore")
	assert.False(t, r.Restore([]byte("x"), j.m["k"][:5], later), "malformed state is not restored")
	assert.Less(t, a.ID, b.ID)
	s.Flush()
	assert.Empty(t, j.m)
}
