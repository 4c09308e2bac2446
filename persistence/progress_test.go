package persistence

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestProgress: Open reports the replay of the journal record by record,
// Load the keys it reads every loadReportEvery, each with bytes growing
// towards an estimated total.
func TestProgress(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, No)
	m := newModel(s)
	const keys = 5000
	for i := range keys {
		m.tat(fmt.Sprintf("user:%06d", i), epoch+3600*sec)
	}
	require.NoError(t, s.Close())

	var reports []Progress
	opts := Options{Dir: dir, Mode: EverySec, Progress: func(p Progress) { reports = append(reports, p) }}
	got, rec := reloadWith(t, opts, epoch)
	require.Len(t, got, keys)
	require.Equal(t, keys, rec.GCRA.Restored)

	var replay, load []Progress
	for _, p := range reports {
		switch p.Step {
		case "replay":
			replay = append(replay, p)
		case "load":
			load = append(load, p)
		default:
			t.Fatalf("step %q", p.Step)
		}
	}
	require.NotEmpty(t, replay, "the journal was replayed at Open")
	require.Len(t, load, keys/loadReportEvery)
	for i, p := range replay {
		assert.Positive(t, p.Total)
		assert.LessOrEqual(t, p.Bytes, p.Total, "the journal's records fit in its files")
		if i > 0 {
			assert.Greater(t, p.Bytes, replay[i-1].Bytes)
		}
	}
	for i, p := range load {
		assert.Equal(t, (i+1)*loadReportEvery, p.Keys)
		assert.Positive(t, p.Total)
		assert.Greater(t, p.Bytes, int64(p.Keys*len("user:000000")), "bytes count keys and values")
	}
	last := load[len(load)-1]
	assert.InDelta(t, 1, float64(last.Bytes)/float64(last.Total)*keys/float64(last.Keys), 0.25,
		"the total estimates the bytes Load reads: %+v", last)
}
