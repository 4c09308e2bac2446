package topkeys

import "math"

// The sampling of busy connections (see Sampler).
const (
	// ExactPerBucket is how many decisions of one connection per bucket
	// are recorded one by one.
	ExactPerBucket = 1024
	// SampleEvery is the sampling of a connection's decisions past
	// ExactPerBucket in a bucket: one in SampleEvery (at random) is
	// recorded, with weight SampleEvery. A power of two.
	SampleEvery = 16
)

// Sampler decides which decisions of one connection are recorded: the first
// ExactPerBucket of each bucket one by one, so that a connection making
// fewer than 100 decisions a second (10 s buckets) is counted exactly, and
// past that each with probability 1/SampleEvery, independently, counting
// SampleEvery. Busy connections so pay a sixteenth of the cost; the counts
// stay unbiased, and a key's sampled part of t decisions is off by about
// √(SampleEvery·t) (one standard deviation: 4% of 10,000, 1.3% of 100,000)
// on top of the sketch's bound. The zero value is ready; a Sampler is not
// safe for concurrent use (one per connection).
type Sampler struct {
	from, to int64  // the bucket counted in n, Unix ns
	n        int    // decisions of the bucket so far
	skip     int    // decisions to pass over before the next sampled one
	rng      uint64 // xorshift64* state; 0 until first used
}

// RecordSampled records one decision of src on key at now through the
// sampler s: exactly, sampled with a weight, or not at all (see Sampler).
func (r *Recorder) RecordSampled(s *Sampler, src Source, key []byte, o Outcome, now int64) {
	if w := s.Next(r, now); w > 0 {
		r.RecordN(src, key, o, now, w)
	}
}

// Next returns the weight to record the connection's next decision at now
// with (see RecordN): 1 while it is within ExactPerBucket, then
// SampleEvery or 0 (not recorded). A decision naming several keys takes one
// weight for all.
func (s *Sampler) Next(r *Recorder, now int64) uint64 {
	if s.Pass(now) {
		return 0
	}
	return s.next(r, now)
}

// Pass is Next's common case on its own, small enough to be inlined: it
// reports whether the decision at now is passed over (Next would return
// 0). When it returns false, call Next.
func (s *Sampler) Pass(now int64) bool {
	if s.skip > 0 && now >= s.from && now < s.to {
		s.skip--
		return true
	}
	return false
}

// next is Next past Pass: a new bucket, a decision within
// ExactPerBucket, or the sampled decision, after which it draws how many
// to pass over next, from the geometric law of independent 1/SampleEvery
// trials.
func (s *Sampler) next(r *Recorder, now int64) uint64 {
	if now < s.from || now >= s.to {
		e := r.epochOf(now)
		s.from, s.to, s.n, s.skip = e*r.width, (e+1)*r.width, 0, 0
	}
	if s.n < ExactPerBucket {
		s.n++
		return 1
	}
	if s.rng == 0 {
		s.rng = uint64(now) | 1
	}
	s.rng ^= s.rng >> 12
	s.rng ^= s.rng << 25
	s.rng ^= s.rng >> 27
	u := float64((s.rng*0x2545f4914f6cdd1d)>>11+1) / (1 << 53) // in (0, 1]
	s.skip = int(math.Log(u) / math.Log1p(-1.0/SampleEvery))
	return SampleEvery
}
