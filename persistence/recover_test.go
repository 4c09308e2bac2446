package persistence

import (
	"errors"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble"
	"github.com/sluicehq/sluice/keyspace"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLoadDeletesExpiredFromDisk: state whose Expires is not after now is
// not restored, of any kind, and is deleted from disk.
func TestLoadDeletesExpiredFromDisk(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, EverySec)
	m := newModel(s)
	for i := range 30 {
		// Expiries 60..300 s after epoch.
		m.tat(fmt.Sprintf("k%d", i), epoch+int64(i%5+1)*60*sec)
		m.set(keyspace.Window, fmt.Sprintf("k%d", i), epoch+int64(i%5+1)*60*sec, "w")
	}
	m.set(keyspace.Lease, "exactly-now", epoch+120*sec, "l")
	m.set(keyspace.Lease, "just-after", epoch+120*sec+1, "l")
	require.NoError(t, s.Close())

	later := epoch + 120*sec // expiries of 60 and 120 s have passed
	got, rec := reload(t, dir, later)
	assert.Equal(t, KindRecovery{Restored: 18, Expired: 12}, rec.GCRA)
	assert.Equal(t, KindRecovery{Restored: 18, Expired: 12}, rec.Window)
	assert.Equal(t, KindRecovery{Restored: 1, Expired: 1}, rec.Lease)
	assert.Equal(t, KindRecovery{Restored: 37, Expired: 25}, rec.Total())
	assert.Len(t, got, 37)
	for k, st := range got {
		assert.Greater(t, st.expires, later, "%v", k)
	}
	// The expired entries are gone from disk: loading at the original instant
	// finds only the survivors.
	got, rec = reload(t, dir, epoch)
	assert.Equal(t, KindRecovery{Restored: 37}, rec.Total())
	assert.Len(t, got, 37)
}

func TestLoadDeletesMalformedEntries(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, EverySec)
	newModel(s).tat("good", epoch+sec)
	require.NoError(t, s.foldNow())
	require.NoError(t, s.db.Set([]byte("g/short"), []byte{1, 2}, pebble.Sync))
	require.NoError(t, s.db.Set([]byte("w/no-time"), encodedExpiry(0), pebble.Sync))
	require.NoError(t, s.db.Set([]byte("x/unknown-prefix"), []byte("kept"), pebble.Sync))
	require.NoError(t, s.Close())
	got, rec := reload(t, dir, epoch)
	assert.Equal(t, map[id]state{{keyspace.GCRA, "good"}: {epoch + sec, ""}}, got)
	assert.Equal(t, KindRecovery{Restored: 1, Invalid: 1}, rec.GCRA)
	assert.Equal(t, KindRecovery{Invalid: 1}, rec.Window)
	_, rec = reload(t, dir, epoch)
	assert.Zero(t, rec.Total().Invalid)
}

// TestRecoveryIntoAModel: Load restores without journalling back, reports
// what it did in Stats, and the restored state is what the model had.
func TestRecoveryIntoAModel(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, EverySec)
	m := newModel(s)
	for i := range 1000 {
		m.tat(fmt.Sprintf("k%d", i), epoch+sec)
		if i%10 == 0 {
			m.set(keyspace.Lease, fmt.Sprintf("k%d", i), epoch+sec, fmt.Sprint(i))
		}
	}
	want := m.snapshot()
	require.NoError(t, s.Close())

	s2 := open(t, dir, EverySec)
	m2 := newModel(s2)
	rec, err := s2.Load(m2, epoch)
	require.NoError(t, err)
	assert.Equal(t, want, m2.snapshot())
	assert.Equal(t, 1000, rec.GCRA.Restored)
	assert.Equal(t, 100, rec.Lease.Restored)
	assert.Equal(t, 1100, rec.Replayed)
	assert.Positive(t, rec.Duration)
	assert.Equal(t, rec, s2.Stats().Recovery)
	assert.Zero(t, s2.Stats().Recorded, "loading does not journal the state back")
}

// failingRestorer refuses the nth state it is given.
type failingRestorer struct{ n int }

func (f *failingRestorer) Restore(keyspace.Change, int64) error {
	if f.n--; f.n == 0 {
		return errors.New("table full")
	}
	return nil
}

func TestLoadReportsARestoreError(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, EverySec)
	m := newModel(s)
	m.tat("a", epoch+sec)
	m.set(keyspace.Window, "b", epoch+sec, "w")
	require.NoError(t, s.Close())
	s = open(t, dir, EverySec)
	_, err := s.Load(&failingRestorer{n: 2}, epoch)
	require.ErrorContains(t, err, `restore window state of key "b": table full`)
}
