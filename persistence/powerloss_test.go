package persistence

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/sluicehq/sluice/keyspace"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPowerLossKeepsWhatWasAcknowledged cuts the power, again and again, on
// a file system that then forgets everything not synced: file data and
// directory entries alike (Pebble's strict in-memory file system). What a
// reply could rely on must survive each cut: in Always mode every change
// whose Wait returned, in EverySec and No modes every change recorded
// before a Sync returned. And nothing is invented: a state on restart is
// one the model really had. Every kind of state is set, deleted and now
// and then flushed; a small FoldBytes makes segments rotate and fold many
// times between cuts, so the cut also lands amid folds.
func TestPowerLossKeepsWhatWasAcknowledged(t *testing.T) {
	for _, mode := range []Mode{Always, EverySec, No} {
		t.Run(mode.String(), func(t *testing.T) {
			fs := vfs.NewStrictMem()
			const dir = "/srv/sluice-data"
			rng := rand.New(rand.NewPCG(1, uint64(mode)))
			kinds := []keyspace.Kind{keyspace.GCRA, keyspace.Window, keyspace.Lease, keyspace.Counter, keyspace.Log}
			// change moves a random state forward (its value names its
			// expiry, so a restored state shows whether the model had it).
			change := func(m *model) {
				key := fmt.Sprintf("key:%03d", rng.IntN(200))
				kind := kinds[rng.IntN(len(kinds))]
				if kind == keyspace.GCRA {
					m.advance(key, epoch)
					return
				}
				expires := max(m.snapshot()[id{kind, key}].expires, epoch) + sec
				m.set(kind, key, expires, strconv.FormatInt(expires, 10))
			}
			var restored map[id]state
			for cut := range 4 {
				s, err := Open(Options{Dir: dir, Mode: mode, Logger: quiet(), FoldBytes: 8 << 10, fs: fs})
				require.NoError(t, err, "cut %d: open after the power cut", cut)
				m := newModel(s)
				_, err = s.Load(m, epoch)
				require.NoError(t, err)
				if restored != nil {
					assert.Equal(t, restored, m.snapshot(), "cut %d: the state loaded is not what survived", cut)
				}

				// acked is the state a client may rely on: after a Wait
				// (Always) or a Sync. The loop ends right after one, and
				// later changes only move states forward.
				var acked map[id]state
				for i := 0; acked == nil || i < 1500 || s.Stats().Folds == 0; i++ {
					require.Less(t, i, 100_000, "cut %d: no fold", cut)
					acked = nil
					switch r := rng.IntN(1000); {
					case r == 0:
						m.flush()
					case r < 20:
						m.del(kinds[rng.IntN(len(kinds))], fmt.Sprintf("key:%03d", rng.IntN(200)))
					default:
						change(m)
					}
					switch {
					case mode == Always:
						require.NoError(t, s.Wait())
						acked = m.snapshot()
					case i%100 == 99:
						require.NoError(t, s.Sync())
						acked = m.snapshot()
					}
				}
				// Changes after the last acknowledgement, which a cut may
				// lose (except in Always mode, where none is left).
				if mode != Always {
					for range 200 {
						change(m)
					}
				}
				final := m.snapshot()

				// The cut: nothing written from now on reaches the disk,
				// and what was not synced before it is forgotten.
				fs.SetIgnoreSyncs(true)
				_ = s.Close()
				fs.ResetToSyncedState()
				fs.SetIgnoreSyncs(false)

				restored, _ = reloadWith(t, Options{Dir: dir, Mode: mode, fs: fs}, epoch)
				if mode == Always {
					require.Equal(t, final, restored, "cut %d: an acknowledged change was lost", cut)
					continue
				}
				for k, st := range acked {
					assert.GreaterOrEqual(t, restored[k].expires, st.expires, "cut %d: %v lost a synced change", cut, k)
				}
				for k, st := range restored {
					_, wasAcked := acked[k]
					assert.True(t, wasAcked || final[k] != state{}, "cut %d: %v came back from nowhere", cut, k)
					assert.LessOrEqual(t, st.expires, final[k].expires, "cut %d: %v is ahead of the model", cut, k)
					if k.kind != keyspace.GCRA {
						assert.Equal(t, strconv.FormatInt(st.expires, 10), st.value, "cut %d: %v holds a value it never had", cut, k)
					}
				}
			}
		})
	}
}
