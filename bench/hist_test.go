package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestBucketBounds checks that every value lands in a bucket whose bounds
// contain it, that buckets are contiguous, and that a bucket is never wider
// than 1/histSubCount of its values.
func TestBucketBounds(t *testing.T) {
	prevHi := int64(-1)
	for i := 0; i < histBuckets-1; i++ {
		lo, hi := bucketBounds(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevHi)
		}
		if lo >= 2*histSubCount && float64(hi-lo+1) > float64(lo)/histSubCount {
			t.Fatalf("bucket %d [%d, %d] wider than 1/%d of its values", i, lo, hi, histSubCount)
		}
		for _, v := range []int64{lo, hi, lo + (hi-lo)/2} {
			if got := bucketOf(v); got != i {
				t.Fatalf("bucketOf(%d) = %d, want %d", v, got, i)
			}
		}
		prevHi = hi
	}
	if got := bucketOf(math.MaxInt64); got != histBuckets-1 {
		t.Fatalf("bucketOf(MaxInt64) = %d, want the last bucket", got)
	}
	if got := bucketOf(-5); got != 0 {
		t.Fatalf("bucketOf(-5) = %d, want 0", got)
	}
}

func TestHistogramSmallValuesExact(t *testing.T) {
	var h Histogram
	for v := int64(1); v <= 100; v++ {
		h.Record(v)
	}
	for _, c := range []struct {
		q    float64
		want int64
	}{{0.01, 1}, {0.5, 50}, {0.99, 99}, {0.999, 100}, {1, 100}} {
		if got := h.Quantile(c.q); got != c.want {
			t.Errorf("Quantile(%g) = %d, want %d", c.q, got, c.want)
		}
	}
	if h.Count() != 100 || h.Min() != 1 || h.Max() != 100 || h.Mean() != 50.5 {
		t.Errorf("count %d min %d max %d mean %g", h.Count(), h.Min(), h.Max(), h.Mean())
	}
}

// TestHistogramQuantilesMatchSorted compares quantiles with the exact order
// statistics of random latencies spanning microseconds to seconds.
func TestHistogramQuantilesMatchSorted(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	vals := make([]int64, 100_000)
	var h Histogram
	for i := range vals {
		vals[i] = int64(math.Exp(r.Float64()*math.Log(5e9))) + 1000 // 1 µs .. 5 s, log-uniform
		h.Record(vals[i])
	}
	slices.Sort(vals)
	for _, q := range []float64{0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 1} {
		exact := vals[int(math.Ceil(q*float64(len(vals))))-1]
		got := h.Quantile(q)
		if got < exact || float64(got-exact) > float64(exact)/histSubCount {
			t.Errorf("Quantile(%g) = %d, exact %d: outside [exact, exact*(1+1/%d)]", q, got, exact, histSubCount)
		}
	}
}

func TestHistogramMerge(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var all, a, b Histogram
	for i := 0; i < 10_000; i++ {
		v := r.Int64N(50_000_000)
		all.Record(v)
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
	}
	var merged Histogram
	merged.Merge(&a)
	merged.Merge(&b)
	merged.Merge(&Histogram{}) // merging an empty histogram changes nothing
	if merged.counts != all.counts || merged.Count() != all.Count() || merged.Min() != all.Min() || merged.Max() != all.Max() {
		t.Fatal("merging the parts differs from recording everything in one histogram")
	}
	if math.Abs(merged.Mean()-all.Mean()) > 1e-6*all.Mean() {
		t.Fatalf("mean %g, want %g", merged.Mean(), all.Mean())
	}
}

func TestHistogramEmptyAndClamped(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Mean() != 0 || h.Count() != 0 {
		t.Fatal("empty histogram should report zeros")
	}
	h.Record(-3) // a clock step backwards counts as 0
	h.Record(1 << 50)
	if h.Min() != 0 || h.Max() != 1<<50 {
		t.Fatalf("min %d max %d", h.Min(), h.Max())
	}
	if got := h.Quantile(1); got != 1<<50 {
		t.Fatalf("Quantile(1) = %d, want the true max %d", got, int64(1<<50))
	}
}

func TestHistogramRecordDoesNotAllocate(t *testing.T) {
	h := new(Histogram)
	if n := testing.AllocsPerRun(1000, func() { h.Record(123_456) }); n != 0 {
		t.Fatalf("Record allocates %v times", n)
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	b.ReportAllocs()
	h := new(Histogram)
	for i := 0; b.Loop(); i++ {
		h.Record(int64(i&0xfffff) * 97)
	}
}
