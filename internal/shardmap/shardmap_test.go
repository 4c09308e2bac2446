package shardmap

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
)

type memJournal struct {
	m       map[string]int64
	flushes int
}

func (j *memJournal) Put(key, value []byte) { j.m[string(key)] = int64(binary.BigEndian.Uint64(value)) }
func (j *memJournal) Delete(key []byte)     { delete(j.m, string(key)) }
func (j *memJournal) Flush()                { clear(j.m); j.flushes++ }

func encode(dst []byte, v int64) []byte { return binary.BigEndian.AppendUint64(dst, uint64(v)) }

// TestJournalFollowsTheMap: every change the map makes, the journal sees.
func TestJournalFollowsTheMap(t *testing.T) {
	j := &memJournal{m: map[string]int64{}}
	m := New[int64](4, encode)
	m.SetJournal(j)
	for i, k := range []string{"a", "b", "c", "d"} {
		sh := m.For([]byte(k))
		sh.Lock()
		sh.Put([]byte(k), int64(i+1))
		sh.Unlock()
	}
	sh := m.For([]byte("b"))
	sh.Lock()
	assert.True(t, sh.Drop([]byte("b")))
	assert.False(t, sh.Drop([]byte("b")))
	sh.Restore([]byte("quiet"), 9) // recovery: not journalled
	sh.Unlock()
	// Values above 3 expire; 3 is trimmed to 2.
	removed := m.Sweep(100, func(v int64) (int64, bool, bool) {
		switch {
		case v > 3:
			return 0, false, false
		case v == 3:
			return 2, true, true
		}
		return v, true, false
	})
	assert.Equal(t, 2, removed) // d and quiet
	assert.Equal(t, map[string]int64{"a": 1, "c": 2}, j.m)
	assert.Equal(t, 2, m.Len())
	assert.Equal(t, 2, m.Flush())
	assert.Empty(t, j.m)
	assert.Equal(t, 1, j.flushes)
	assert.Zero(t, m.Len())
}
