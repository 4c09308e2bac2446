package topkeys

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestSampler: the first ExactPerBucket decisions of a bucket weigh 1; past
// them about one in SampleEvery weighs SampleEvery and the rest 0, so the
// weights add up to about the number of decisions; a new bucket (or a
// clock moved back) starts exact again.
func TestSampler(t *testing.T) {
	r := New(Options{})
	var s Sampler
	var sum uint64
	const n = 200000
	for i := range n {
		w := s.Next(r, t0)
		if i < ExactPerBucket {
			assert.Equal(t, uint64(1), w, "decision %d", i)
		} else if w != 0 && w != SampleEvery {
			t.Fatalf("weight %d", w)
		}
		sum += w
	}
	sampled := float64(n - ExactPerBucket)
	assert.InDelta(t, n, float64(sum), 4*math.Sqrt(SampleEvery*sampled), "unbiased")
	assert.Equal(t, uint64(1), s.Next(r, t0+int64(10*time.Second)), "a new bucket is exact again")
	assert.Equal(t, uint64(1), s.Next(r, t0), "so is a clock moved back")
}

// BenchmarkRecordSampled is Record's cost for one busy connection, past
// its exact allowance: what THROTTLE pays under load.
func BenchmarkRecordSampled(b *testing.B) {
	r := New(Options{})
	src := r.Source(Command, "throttle")
	keys := zipfKeys(1, 1.1, 100000, 1<<16)
	kb := make([][]byte, len(keys))
	for i, k := range keys {
		kb[i] = []byte(k)
	}
	var s Sampler
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.RecordSampled(&s, src, kb[i&(len(kb)-1)], Limited, t0)
		i++
	}
}
