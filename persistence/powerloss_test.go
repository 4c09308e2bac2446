package persistence

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/sluicehq/sluice/gcra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPowerLossKeepsWhatWasAcknowledged cuts the power, again and again, on
// a file system that then forgets everything not synced: file data and
// directory entries alike (Pebble's strict in-memory file system). What a
// reply could rely on must survive each cut: in Always mode every change
// whose Wait returned, in EverySec and No modes every change recorded
// before a Sync returned. And nothing is invented: a key's TAT on restart
// is one the table really had. A small FoldBytes makes segments rotate and
// fold many times between cuts, so the cut also lands amid folds.
func TestPowerLossKeepsWhatWasAcknowledged(t *testing.T) {
	for _, mode := range []Mode{Always, EverySec, No} {
		t.Run(mode.String(), func(t *testing.T) {
			fs := vfs.NewStrictMem()
			const dir = "/srv/sluice-data"
			rng := rand.New(rand.NewPCG(1, uint64(mode)))
			roomy := mustLimit(1e6, 1, 1) // never limited: each request moves its key's TAT
			var restored map[string]int64
			for cut := range 4 {
				s, err := Open(Options{Dir: dir, Mode: mode, Logger: quiet(), FoldBytes: 8 << 10, fs: fs})
				require.NoError(t, err, "cut %d: open after the power cut", cut)
				tb := gcra.NewTable(8, s)
				_, err = s.Load(tb, epoch)
				require.NoError(t, err)
				if restored != nil {
					assert.Equal(t, restored, snapshot(tb, epoch), "cut %d: the table loaded is not what survived", cut)
				}

				// acked is the state a client may rely on: after a Wait
				// (Always) or a Sync. The loop ends right after one, and
				// later changes only move keys forward.
				var acked map[string]int64
				for i := 0; acked == nil || i < 1500 || s.Stats().Folds == 0; i++ {
					require.Less(t, i, 100_000, "cut %d: no fold", cut)
					acked = nil
					key := fmt.Appendf(nil, "key:%03d", rng.IntN(200))
					if rng.IntN(50) == 0 {
						tb.Delete(key, epoch)
					} else {
						_, err := tb.Throttle(key, epoch, roomy, 1)
						require.NoError(t, err)
					}
					switch {
					case mode == Always:
						require.NoError(t, s.Wait())
						acked = snapshot(tb, epoch)
					case i%100 == 99:
						require.NoError(t, s.Sync())
						acked = snapshot(tb, epoch)
					}
				}
				// Changes after the last acknowledgement, which a cut may
				// lose (except in Always mode, where none is left).
				if mode != Always {
					for range 200 {
						_, err := tb.Throttle(fmt.Appendf(nil, "key:%03d", rng.IntN(200)), epoch, roomy, 1)
						require.NoError(t, err)
					}
				}
				final := snapshot(tb, epoch)

				// The cut: nothing written from now on reaches the disk,
				// and what was not synced before it is forgotten.
				fs.SetIgnoreSyncs(true)
				_ = s.Close()
				fs.ResetToSyncedState()
				fs.SetIgnoreSyncs(false)

				s, err = Open(Options{Dir: dir, Mode: mode, Logger: quiet(), fs: fs})
				require.NoError(t, err, "cut %d: open after the power cut", cut)
				got := gcra.NewTable(8, nil)
				_, err = s.Load(got, epoch)
				require.NoError(t, err)
				restored = snapshot(got, epoch)
				require.NoError(t, s.Close())

				if mode == Always {
					require.Equal(t, final, restored, "cut %d: an acknowledged change was lost", cut)
					continue
				}
				for k, tat := range acked {
					assert.GreaterOrEqual(t, restored[k], tat, "cut %d: %s lost a synced change", cut, k)
				}
				for k, tat := range restored {
					_, wasAcked := acked[k]
					assert.True(t, wasAcked || final[k] != 0, "cut %d: %s came back from nowhere", cut, k)
					assert.LessOrEqual(t, tat, final[k], "cut %d: %s is ahead of the table", cut, k)
				}
			}
		})
	}
}
