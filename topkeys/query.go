package topkeys

import (
	"cmp"
	"slices"
	"time"
	"unsafe"
)

// Query selects what Top reports.
type Query struct {
	Now     int64         // Unix ns: the window ends at now
	Window  time.Duration // covered as the current bucket and the Window/BucketWidth before it
	Outcome Outcome
	// Sources restricts the count to these sources; empty means all.
	// Counts of one key from several sources are added up.
	Sources []Source
	// Accept, when set, keeps only the keys it accepts (truncated tells
	// that key is the first MaxKeyLen bytes of a longer one).
	Accept func(key []byte, truncated bool) bool
	// Count is how many keys to report, the most counted first.
	Count int
}

// Entry is one key of a Top result.
type Entry struct {
	Key       string
	Count     uint64
	Truncated bool // Key is the first MaxKeyLen bytes of a longer key
}

// Result is what Top reports.
type Result struct {
	Entries []Entry // by Count descending, then Key
	// Decisions is the exact number of decisions of the outcome and the
	// sources in the window.
	Decisions uint64
	// MaxError bounds every reported count's distance from the true count
	// (see the package comment): the largest, over the shards, of the sum
	// of the smallest counters of its full summaries in the window.
	MaxError uint64
	// From and To are the covered interval, Unix ns: from the start of
	// the oldest bucket to now.
	From, To int64
}

// Top returns the keys with the most decisions of q.Outcome by q.Sources
// over q.Window. It locks one shard at a time, so decisions recorded
// meanwhile may be partly counted.
func (r *Recorder) Top(q Query) Result {
	first, last := r.span(q.Now, min(q.Window, r.opt.MaxWindow))
	res := Result{From: first * r.width, To: q.Now}
	want := r.sourceFilter(q.Sources)
	type id struct {
		key       string
		truncated bool
	}
	counts := map[id]uint64{}
	for i := range r.shards {
		sh := &r.shards[i]
		var shardErr uint64
		sh.mu.Lock()
		for j := range sh.buckets {
			b := &sh.buckets[j]
			if b.epoch < first || b.epoch > last {
				continue
			}
			for src, t := range b.totals {
				if want(Source(src)) {
					res.Decisions += t[q.Outcome&1]
				}
			}
			sm := &b.byOut[q.Outcome&1]
			shardErr += sm.min()
			for k := range sm.slots {
				sl := &sm.slots[k]
				if !want(sl.src) || (q.Accept != nil && !q.Accept(sl.key, sl.truncated)) {
					continue
				}
				counts[id{string(sl.key), sl.truncated}] += sm.counts[k]
			}
		}
		sh.mu.Unlock()
		res.MaxError = max(res.MaxError, shardErr)
	}
	res.Entries = make([]Entry, 0, len(counts))
	for k, n := range counts {
		res.Entries = append(res.Entries, Entry{Key: k.key, Count: n, Truncated: k.truncated})
	}
	slices.SortFunc(res.Entries, func(a, b Entry) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		return boolCompare(a.Truncated, b.Truncated)
	})
	if q.Count >= 0 && len(res.Entries) > q.Count {
		res.Entries = res.Entries[:q.Count]
	}
	return res
}

func boolCompare(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// sourceFilter returns whether a source is among srcs (all when empty).
func (r *Recorder) sourceFilter(srcs []Source) func(Source) bool {
	if len(srcs) == 0 {
		return func(Source) bool { return true }
	}
	return func(s Source) bool { return slices.Contains(srcs, s) }
}

// Series is one source's decisions per bucket.
type Series struct {
	Kind    Kind
	Name    string
	Allowed []uint64 // one per bucket, oldest first
	Limited []uint64
}

// Rates are the decisions of every source per bucket over a window.
type Rates struct {
	// Start is the start of the oldest bucket (Unix ns); bucket i covers
	// [Start + i·Width, Start + (i+1)·Width). The last bucket is the
	// current one, still filling at Now.
	Start int64
	Now   int64
	Width time.Duration
	// Series has one entry per source with a decision in the window,
	// commands first, then policies, each sorted by name.
	Series []Series
}

// Rates returns every source's exact decision counts per bucket over the
// window ending at now (at most MaxWindow).
func (r *Recorder) Rates(now int64, window time.Duration) Rates {
	first, last := r.span(now, min(window, r.opt.MaxWindow))
	n := int(last - first + 1)
	names := r.sources.Load().names
	series := make([]Series, len(names))
	seen := make([]bool, len(names))
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		for j := range sh.buckets {
			b := &sh.buckets[j]
			if b.epoch < first || b.epoch > last {
				continue
			}
			at := int(b.epoch - first)
			for src, t := range b.totals {
				if src >= len(series) || t == [2]uint64{} {
					continue
				}
				s := &series[src]
				if !seen[src] {
					seen[src] = true
					s.Kind, s.Name = names[src].kind, names[src].name
					s.Allowed, s.Limited = make([]uint64, n), make([]uint64, n)
				}
				s.Allowed[at] += t[Allowed]
				s.Limited[at] += t[Limited]
			}
		}
		sh.mu.Unlock()
	}
	out := Rates{Start: first * r.width, Now: now, Width: r.opt.BucketWidth}
	for src, s := range series {
		if seen[src] {
			out.Series = append(out.Series, s)
		}
	}
	slices.SortFunc(out.Series, func(a, b Series) int {
		if c := cmp.Compare(a.Kind, b.Kind); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	return out
}

// counterBytes is what one counter costs beside its key: the count, the
// slot and at most 4 bytes of index.
const counterBytes = 8 + int64(unsafe.Sizeof(slot{})) + 4

// MaxMemory is the most bytes Memory can report: every counter of every
// summary in use with a key of MaxKeyLen bytes (rounded up to 16), and
// every shard's bucket counting MaxSources sources.
func (r *Recorder) MaxMemory() int64 {
	buckets := int64(r.opt.Shards) * r.nbucket
	keyBytes := int64(r.opt.MaxKeyLen+15) &^ 15
	return buckets*2*int64(r.opt.Capacity)*(counterBytes+keyBytes) + buckets*int64(r.opt.MaxSources)*16
}

// Memory is the bytes the summaries and totals hold now (their capacity,
// not the Go allocator's overhead).
func (r *Recorder) Memory() int64 {
	var n int64
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		for j := range sh.buckets {
			b := &sh.buckets[j]
			n += int64(cap(b.totals)) * 16
			for k := range b.byOut {
				sm := &b.byOut[k]
				n += int64(cap(sm.counts))*8 + int64(cap(sm.slots))*int64(unsafe.Sizeof(slot{})) + int64(len(sm.index))*2
				for _, sl := range sm.slots[:cap(sm.slots)] {
					n += int64(cap(sl.key))
				}
			}
		}
		sh.mu.Unlock()
	}
	return n
}
