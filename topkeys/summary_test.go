package topkeys

import (
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSummaryAgainstModel checks the space-saving guarantees against exact
// counts over random streams, small enough that replacement and index
// deletion run constantly: every counted item's count c satisfies
// t ≤ c ≤ t + min, every other item occurred at most min times, the counts
// add up to the stream's length, and the index finds every counted item.
func TestSummaryAgainstModel(t *testing.T) {
	seed := maphash.MakeSeed()
	for _, capacity := range []int{1, 2, 7, 32} {
		for _, items := range []int{3, 50, 1000} {
			for _, maxWeight := range []uint64{1, 8} {
				t.Run(fmt.Sprintf("cap%d/items%d/weight%d", capacity, items, maxWeight), func(t *testing.T) {
					rng := rand.New(rand.NewPCG(uint64(capacity), uint64(items)))
					zipf := rand.NewZipf(rng, 1.2, 1, uint64(items-1))
					s := newSummary(capacity)
					truth := map[string]uint64{}
					var total uint64
					for n := 1; n <= 5000; n++ {
						k := fmt.Appendf(nil, "k%d", zipf.Uint64())
						w := 1 + rng.Uint64N(maxWeight)
						truth[string(k)] += w
						total += w
						s.add(maphash.Bytes(seed, k), 0, k, false, w)
						if n%97 == 0 || n == 5000 {
							checkSummary(t, s, truth, total)
						}
					}
				})
			}
		}
	}
}

func checkSummary(t *testing.T, s summary, truth map[string]uint64, n uint64) {
	t.Helper()
	minCount := s.min()
	require.LessOrEqual(t, minCount, n/uint64(cap(s.slots)), "the smallest count is at most n/capacity")
	var sum uint64
	counted := map[string]bool{}
	require.Equal(t, len(s.counts), len(s.slots))
	for i, sl := range s.slots {
		c := s.counts[i]
		sum += c
		tc := truth[string(sl.key)]
		require.GreaterOrEqual(t, c, tc, "%s over-counts only", sl.key)
		require.LessOrEqual(t, c-tc, minCount, "%s: error at most the smallest count", sl.key)
		counted[string(sl.key)] = true
		// The index finds it.
		mask := uint64(len(s.index) - 1)
		j := sl.hash & mask
		for s.index[j] != uint16(i+1) {
			require.NotZero(t, s.index[j], "%s not in the index", sl.key)
			j = (j + 1) & mask
		}
	}
	require.Equal(t, n, sum, "counts add up to the stream")
	for k, tc := range truth {
		if !counted[k] {
			require.LessOrEqual(t, tc, minCount, "%s not counted yet occurred more than the smallest count", k)
		}
	}
}

// TestSummaryDistinguishesSourcesAndTruncation: the same bytes from two
// sources, or once whole and once as a longer key's prefix, are two items.
func TestSummaryDistinguishesSourcesAndTruncation(t *testing.T) {
	s := newSummary(4)
	s.add(1, 0, []byte("k"), false, 1)
	s.add(1, 1, []byte("k"), false, 1)
	s.add(1, 0, []byte("k"), true, 1)
	s.add(1, 0, []byte("k"), false, 1)
	require.Len(t, s.slots, 3)
	require.Equal(t, uint64(2), s.counts[0])
}
