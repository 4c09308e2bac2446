package main

import (
	"math"
	"math/bits"
)

// The histogram is log-linear, like HdrHistogram: each power-of-two range of
// values is split into 2^histSubBits equal sub-buckets, so every recorded value
// is known to within 1/2^histSubBits (0.8%) of itself, whatever its magnitude.
// Values below 2^(histSubBits+1) get one bucket each and are exact.
const (
	histSubBits  = 7
	histSubCount = 1 << histSubBits
	// histMaxBits bounds the values kept apart: below 2^41 ns (about 36
	// minutes); anything larger is counted in the last bucket.
	histMaxBits = 41
	histBuckets = (histMaxBits-histSubBits-1)<<histSubBits + 2*histSubCount
)

// Histogram counts latencies in nanoseconds in log-linear buckets. It is not
// safe for concurrent use: the load generator gives every connection its own
// and merges them with [Histogram.Merge] once the run is over, so the hot loop
// takes no lock. The zero value is an empty histogram ready to use.
type Histogram struct {
	counts [histBuckets]uint64
	total  uint64
	min    int64
	max    int64
	sum    float64
}

// bucketOf returns the bucket index of a value (negative values count as 0).
func bucketOf(v int64) int {
	if v < 0 {
		v = 0
	}
	u := uint64(v)
	e := bits.Len64(u) - histSubBits - 1
	if e < 0 {
		e = 0
	}
	i := e<<histSubBits + int(u>>uint(e))
	if i >= histBuckets {
		return histBuckets - 1
	}
	return i
}

// bucketBounds returns the smallest and largest value counted in bucket i.
func bucketBounds(i int) (lo, hi int64) {
	e := i>>histSubBits - 1
	if e < 0 {
		e = 0
	}
	sub := int64(i - e<<histSubBits)
	lo = sub << uint(e)
	hi = lo + int64(1)<<uint(e) - 1
	if i == histBuckets-1 {
		hi = math.MaxInt64
	}
	return lo, hi
}

// Record adds one value in nanoseconds.
func (h *Histogram) Record(v int64) {
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)]++
	if h.total == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.total++
	h.sum += float64(v)
}

// Merge adds every value recorded in o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.total == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.total == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.total += o.total
	h.sum += o.sum
}

// Count returns how many values were recorded.
func (h *Histogram) Count() uint64 { return h.total }

// Min returns the smallest recorded value, or 0 when empty.
func (h *Histogram) Min() int64 { return h.min }

// Max returns the largest recorded value, or 0 when empty.
func (h *Histogram) Max() int64 { return h.max }

// Mean returns the arithmetic mean of the recorded values, or 0 when empty.
func (h *Histogram) Mean() float64 {
	if h.total == 0 {
		return 0
	}
	return h.sum / float64(h.total)
}

// Quantile returns the value at quantile q (0 < q <= 1): the largest value
// that falls in the same bucket as the ceil(q*n)-th smallest recorded value,
// capped at the true maximum, as HdrHistogram's "highest equivalent value"
// does. It never under-reports by more than one bucket width (0.8%).
// An empty histogram returns 0.
func (h *Histogram) Quantile(q float64) int64 {
	if h.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	if rank < 1 {
		rank = 1
	}
	if rank > h.total {
		rank = h.total
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			_, hi := bucketBounds(i)
			if hi > h.max {
				hi = h.max
			}
			if hi < h.min {
				hi = h.min
			}
			return hi
		}
	}
	return h.max
}
