package persistence

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// auxCount reads the "count" auxiliary field of a store just opened.
func auxCount(t *testing.T, s *Store) (int, bool) {
	t.Helper()
	v, ok, err := s.Aux("count")
	require.NoError(t, err)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(string(v))
	require.NoError(t, err)
	return n, true
}

// TestAuxIsNeverAheadOfTheData: an auxiliary field recorded after each
// change ("count" = how many keys exist) comes back after a close, from
// Pebble and the journal alike, and after a torn journal tail it never
// claims a change that was lost: every key it counts is there.
func TestAuxIsNeverAheadOfTheData(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Always)
	_, ok := auxCount(t, s)
	assert.False(t, ok, "a new directory has no field")
	m := newModel(s)
	for i := range 100 {
		m.tat(fmt.Sprintf("k%d", i), epoch+int64(i+1)*sec)
		s.RecordAux("count", []byte(strconv.Itoa(i+1)))
		if i == 49 {
			require.NoError(t, s.foldNow()) // half in Pebble, half in the journal
		}
		if i%5 == 4 {
			require.NoError(t, s.Wait())
		}
	}
	require.NoError(t, s.Close())

	s = open(t, dir, Always)
	n, ok := auxCount(t, s)
	require.True(t, ok)
	assert.Equal(t, 100, n)
	m = newModel(s)
	_, err := s.Load(m, epoch)
	require.NoError(t, err)
	assert.Len(t, m.snapshot(), 100)
	assert.Equal(t, "100", keySpace(t, s)[auxPrefix+"count"], "kept beside the keys, under its own prefix")

	// More keys, a Wait every five, then the newest segment's last record
	// torn (a crash during its write).
	for i := 100; i < 200; i++ {
		m.tat(fmt.Sprintf("k%d", i), epoch+int64(i+1)*sec)
		s.RecordAux("count", []byte(strconv.Itoa(i+1)))
		if i%5 == 4 {
			require.NoError(t, s.Wait())
		}
	}
	require.NoError(t, s.Wait())
	nums := journalSegments(t, s)
	require.NoError(t, s.Close())
	seg := filepath.Join(dir, journalDir, segmentName(nums[len(nums)-1]))
	b, err := os.ReadFile(seg)
	require.NoError(t, err)
	end := contentLen(b)
	copy(b[end-4:end], make([]byte, 4))
	require.NoError(t, os.WriteFile(seg, b, 0o600))

	s = open(t, dir, Always)
	n, ok = auxCount(t, s)
	require.True(t, ok)
	m = newModel(nil)
	_, err = s.Load(m, epoch)
	require.NoError(t, err)
	got := gcraOnly(m.snapshot())
	assert.Less(t, n, 200, "the torn record held the last field")
	assert.GreaterOrEqual(t, n, 195)
	for i := range n {
		assert.Contains(t, got, fmt.Sprintf("k%d", i), "the field counts k%d: it must be there", i)
	}
}

// TestAuxDroppedAfterAcceptedCorruption: a record lost in the middle of
// the journal (accepted with AcceptCorruption) may hold changes a later
// field counts: every field is dropped, even one folded before.
func TestAuxDroppedAfterAcceptedCorruption(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Always)
	m := newModel(s)
	s.RecordAux("count", []byte("0"))
	require.NoError(t, s.foldNow()) // a field in Pebble already
	for i := range 400 {
		m.tat(fmt.Sprintf("k%d", i), epoch+int64(i+1)*sec)
		s.RecordAux("count", []byte(strconv.Itoa(i+1)))
		if i%5 == 4 {
			require.NoError(t, s.Wait())
		}
	}
	nums := journalSegments(t, s)
	require.Len(t, nums, 1)
	require.NoError(t, s.Close())
	seg := filepath.Join(dir, journalDir, segmentName(nums[0]))
	b, err := os.ReadFile(seg)
	require.NoError(t, err)
	b[contentLen(b)/2] ^= 0x10
	require.NoError(t, os.WriteFile(seg, b, 0o600))

	s = openWith(t, Options{Dir: dir, AcceptCorruption: true})
	_, ok := auxCount(t, s)
	assert.False(t, ok)
}
