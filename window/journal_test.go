package window

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type memJournal struct{ m map[string][]byte }

func (j *memJournal) Put(key, value []byte) { j.m[string(key)] = append([]byte(nil), value...) }
func (j *memJournal) Delete(key []byte)     { delete(j.m, string(key)) }
func (j *memJournal) Flush()                { clear(j.m) }

// TestJournalRestore: what the journal holds restores the same decisions in
// a new store; expired and malformed state is refused.
func TestJournalRestore(t *testing.T) {
	j := &memJournal{m: map[string][]byte{}}
	s := NewStore(4)
	s.SetJournal(j)
	l, err := NewLimit(3, 60)
	require.NoError(t, err)
	now := int64(1893456000000000000)
	for range 3 {
		s.Take(Fixed, []byte("k"), now, l, 1)
	}
	s.Take(Fixed, []byte("gone"), now, l, 1)
	s.Delete([]byte("gone"), now)
	require.Len(t, j.m, 1)

	r := NewStore(4)
	for k, v := range j.m {
		assert.True(t, r.Restore([]byte(k), v, now))
	}
	assert.True(t, r.Take(Fixed, []byte("k"), now, l, 1).Limited, "the restored window is spent")
	assert.False(t, r.Restore([]byte("x"), j.m["k"], now+61e9), "expired state is not restored")
	assert.False(t, r.Restore([]byte("x"), []byte("short"), now), "malformed state is not restored")
	s.Flush()
	assert.Empty(t, j.m)
}
