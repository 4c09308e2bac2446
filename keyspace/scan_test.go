package keyspace

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sluicehq/sluice/gcra"
	"github.com/sluicehq/sluice/window"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scanAll runs a whole scan with count per step, calling between after
// every step, and returns how many times each key came back and the kinds
// seen.
func scanAll(t *testing.T, ks *Keyspace, count int, now int64, between func()) (map[string]int, map[string]Kinds) {
	t.Helper()
	seen, kinds := map[string]int{}, map[string]Kinds{}
	cursor := uint64(0)
	for steps := 0; ; steps++ {
		require.Less(t, steps, 1_000_000, "the scan ends")
		var batch []Entry
		batch, cursor = ks.Scan(cursor, count, now, nil)
		for _, e := range batch {
			seen[string(e.Key)]++
			kinds[string(e.Key)] |= e.Kinds
		}
		if cursor == 0 {
			return seen, kinds
		}
		if between != nil {
			between()
		}
	}
}

func gcraLimit(t testing.TB) gcra.Limit {
	t.Helper()
	l, err := gcra.NewLimit(10, 1, 3600)
	require.NoError(t, err)
	return l
}

// TestScanEveryKindOnce: every key name comes back exactly once, with every
// kind it holds, whatever the count and the number of shards; expired
// state does not come back.
func TestScanEveryKindOnce(t *testing.T) {
	for _, shards := range []int{1, 4, 64} {
		for _, count := range []int{1, 10, 1000} {
			ks := New(shards, nil)
			now := epoch
			want := map[string]Kinds{}
			for i := range 500 {
				k := fmt.Sprintf("k%d", i)
				var kinds Kinds
				if i%2 == 0 {
					_, err := ks.Throttle([]byte(k), now, gcraLimit(t), 1)
					require.NoError(t, err)
					kinds = kinds.With(GCRA)
				}
				if i%3 == 0 {
					ks.Take(window.Sliding, []byte(k), now, windowLimit(t, 5, 60), 1)
					kinds = kinds.With(Window)
				}
				if i%5 == 0 {
					_, err := ks.Acquire([]byte(k), now, 3, 60*sec)
					require.NoError(t, err)
					kinds = kinds.With(Lease)
				}
				if kinds != 0 {
					want[k] = kinds
				}
			}
			_, err := ks.Throttle([]byte("short"), now, gcraLimit(t), 1) // a TAT an hour ahead
			require.NoError(t, err)
			later := now + 30*sec // the leases (60 s) and windows (two periods) still matter
			_, err = ks.Throttle([]byte("short"), now, gcraLimit(t), 0)
			require.NoError(t, err)
			seen, kinds := scanAll(t, ks, count, later, nil)
			want["short"] = Kinds(0).With(GCRA)
			assert.Equal(t, want, kinds, "shards %d count %d", shards, count)
			for k, n := range seen {
				assert.Equal(t, 1, n, "key %s returned %d times (shards %d count %d)", k, n, shards, count)
			}
			// Past every expiry nothing comes back, though nothing was swept.
			seen, _ = scanAll(t, ks, count, now+2*3600*sec, nil)
			assert.Empty(t, seen)
		}
	}
}

// TestScanGuaranteeUnderChurn checks SCAN's guarantee against the ways the
// table moves keys: between every step, keys are added and removed in
// numbers that grow and shrink the open-addressing table (moving every
// slot) and churn the Go maps; every key present for the whole scan must
// come back, and one step never returns much more than count.
func TestScanGuaranteeUnderChurn(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, shards := range []int{1, 8} {
		ks := New(shards, nil)
		now := epoch
		stable := map[string]bool{}
		for i := range 2000 {
			k := fmt.Sprintf("stable%d", i)
			stable[k] = true
			switch i % 3 {
			case 0:
				_, err := ks.Throttle([]byte(k), now, gcraLimit(t), 1)
				require.NoError(t, err)
			case 1:
				ks.Take(window.Fixed, []byte(k), now, windowLimit(t, 5, 3600), 1)
			default:
				_, err := ks.Acquire([]byte(k), now, 3, 3600*sec)
				require.NoError(t, err)
			}
		}
		var churn []string
		step := 0
		between := func() {
			step++
			// Alternate a big wave of new keys (growth) with deleting
			// them all (shrinking), each time with new names.
			if step%2 == 1 {
				for i := range 1 + rng.IntN(3000) {
					k := fmt.Sprintf("churn%d-%d", step, i)
					churn = append(churn, k)
					switch i % 3 {
					case 0:
						_, err := ks.Throttle([]byte(k), now, gcraLimit(t), 1)
						require.NoError(t, err)
					case 1:
						ks.Take(window.Sliding, []byte(k), now, windowLimit(t, 5, 3600), 1)
					default:
						_, err := ks.Acquire([]byte(k), now, 3, 3600*sec)
						require.NoError(t, err)
					}
				}
				return
			}
			for _, k := range churn {
				ks.Delete([]byte(k), now)
			}
			churn = churn[:0]
		}
		count := 7
		seen := map[string]int{}
		cursor := uint64(0)
		for steps := 0; ; steps++ {
			require.Less(t, steps, 100_000)
			var batch []Entry
			batch, cursor = ks.Scan(cursor, count, now, nil)
			assert.LessOrEqual(t, len(batch), count+2, "a step returns about count keys")
			for _, e := range batch {
				seen[string(e.Key)]++
			}
			if cursor == 0 {
				break
			}
			between()
		}
		for k := range stable {
			assert.Equal(t, 1, seen[k], "stable key %s (shards %d)", k, shards)
		}
	}
}

// TestScanCursorPastTheEnd: a cursor past the last shard ends the scan.
func TestScanCursorPastTheEnd(t *testing.T) {
	ks := New(4, nil)
	_, err := ks.Throttle([]byte("k"), epoch, gcraLimit(t), 1)
	require.NoError(t, err)
	batch, next := ks.Scan(99<<32, 10, epoch, nil)
	assert.Empty(t, batch)
	assert.Zero(t, next)
}

// TestNthSmallest against sorting, with many duplicates.
func TestNthSmallest(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 500 {
		n := 1 + rng.IntN(200)
		tags := make([]uint32, n)
		for i := range tags {
			tags[i] = uint32(rng.IntN(1 + rng.IntN(50)))
		}
		sorted := slices.Sorted(slices.Values(tags))
		i := rng.IntN(n)
		assert.Equal(t, sorted[i], nthSmallest(tags, i))
	}
}

// TestKindsOf is TYPE's answer.
func TestKindsOf(t *testing.T) {
	ks := New(4, nil)
	assert.Equal(t, "none", ks.KindsOf([]byte("k"), epoch).String())
	_, err := ks.Throttle([]byte("k"), epoch, gcraLimit(t), 1)
	require.NoError(t, err)
	assert.Equal(t, "gcra", ks.KindsOf([]byte("k"), epoch).String())
	ks.Take(window.Fixed, []byte("k"), epoch, windowLimit(t, 5, 60), 1)
	_, err = ks.Acquire([]byte("k"), epoch, 1, sec)
	require.NoError(t, err)
	assert.Equal(t, "gcra,window,lease", ks.KindsOf([]byte("k"), epoch).String())
	assert.Equal(t, "none", ks.KindsOf([]byte("k"), epoch+3*3600*sec).String(), "expired state is no kind")
}

// BenchmarkScanStep is one SCAN step of COUNT 10 over 256 shards holding
// 1M keys (redis-cli --scan's step): its cost is one pass over a shard of
// about 4000 keys, under that shard's lock.
func BenchmarkScanStep(b *testing.B) {
	ks := New(256, nil)
	l, err := gcra.NewLimit(10, 1, 3600)
	require.NoError(b, err)
	for i := range 1_000_000 {
		_, err := ks.Throttle(fmt.Appendf(nil, "user:%d", i), epoch, l, 1)
		require.NoError(b, err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cursor := uint64(0)
	var batch []Entry
	for range b.N {
		batch, cursor = ks.Scan(cursor, 10, epoch, batch[:0])
	}
}
