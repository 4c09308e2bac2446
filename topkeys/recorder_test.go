package topkeys

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const t0 = int64(1893456000000000000) // 2030-01-01, on a bucket boundary

// zipfKeys draws n keys from a Zipf law over universe keys, "user:<rank>".
func zipfKeys(seed uint64, s float64, universe, n int) []string {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	z := rand.NewZipf(rng, s, 1, uint64(universe-1))
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("user:%d", z.Uint64())
	}
	return out
}

// TestTopZipfModel records a Zipf stream of refusals spread over three
// minutes and checks Top against the exact counts of the same window: every
// reported count within MaxError of the truth, MaxError within the stated
// bound (decisions of the outcome in the window / Capacity), and the true
// top 10 reported in order wherever the gaps between them exceed 2·MaxError.
func TestTopZipfModel(t *testing.T) {
	for _, tc := range []struct {
		s        float64
		universe int
	}{{1.1, 100000}, {1.3, 10000}, {2, 1000}} {
		t.Run(fmt.Sprintf("s=%v/keys=%d", tc.s, tc.universe), func(t *testing.T) {
			r := New(Options{})
			src := r.Source(Command, "throttle")
			keys := zipfKeys(uint64(tc.universe), tc.s, tc.universe, 300000)
			// 300,000 refusals over 180 s, plus admissions of other keys
			// that must not count.
			step := int64(180*time.Second) / int64(len(keys))
			var now int64
			for i, k := range keys {
				now = t0 + int64(i)*step
				r.Record(src, []byte(k), Limited, now)
				r.Record(src, []byte("admitted:"+k), Allowed, now)
			}
			res := r.Top(Query{Now: now, Window: 120 * time.Second, Outcome: Limited, Count: 10})
			require.Len(t, res.Entries, 10)
			// The window: the current bucket (170 s to 180 s) and the 12 before.
			require.Equal(t, t0+int64(50*time.Second), res.From)
			truth := map[string]uint64{}
			for i, k := range keys {
				if t0+int64(i)*step >= res.From {
					truth[k]++
				}
			}
			var inWindow uint64
			for _, n := range truth {
				inWindow += n
			}
			assert.Equal(t, inWindow, res.Decisions, "decisions are exact")
			assert.LessOrEqual(t, res.MaxError, inWindow/uint64(r.Options().Capacity), "the stated bound")
			for _, e := range res.Entries {
				assert.False(t, strings.HasPrefix(e.Key, "admitted:"), "an admission in the refusals' top")
				diff := int64(e.Count) - int64(truth[e.Key])
				assert.LessOrEqual(t, max(diff, -diff), int64(res.MaxError), "%s: reported %d, true %d", e.Key, e.Count, truth[e.Key])
			}
			want := topOf(truth, 11)
			for i := range 10 {
				if want[i].Count-want[i+1].Count > 2*res.MaxError && (i == 0 || want[i-1].Count-want[i].Count > 2*res.MaxError) {
					assert.Equal(t, want[i].Key, res.Entries[i].Key, "rank %d", i+1)
				}
				if want[i].Count-want[10].Count > 2*res.MaxError {
					assert.True(t, slices.ContainsFunc(res.Entries, func(e Entry) bool { return e.Key == want[i].Key }),
						"true rank %d (%s, %d) missing from %v (max error %d)", i+1, want[i].Key, want[i].Count, res.Entries, res.MaxError)
				}
			}
			t.Logf("decisions %d, max error %d (%.3f%%), top %v", res.Decisions, res.MaxError,
				100*float64(res.MaxError)/float64(res.Decisions), res.Entries[:3])
		})
	}
}

// topOf is the model's answer: the n most counted keys.
func topOf(counts map[string]uint64, n int) []Entry {
	var out []Entry
	for k, c := range counts {
		out = append(out, Entry{Key: k, Count: c})
	}
	slices.SortFunc(out, func(a, b Entry) int {
		if a.Count != b.Count {
			return int(b.Count) - int(a.Count)
		}
		return strings.Compare(a.Key, b.Key)
	})
	return out[:min(n, len(out))]
}

// TestTopWindows: a window covers the current bucket and the
// Window/BucketWidth before it; older buckets, and buckets reused by the
// ring, are not counted.
func TestTopWindows(t *testing.T) {
	r := New(Options{})
	src := r.Source(Command, "throttle")
	sec := int64(time.Second)
	r.Record(src, []byte("old"), Limited, t0)              // bucket 0
	r.Record(src, []byte("mid"), Limited, t0+25*sec)       // bucket 2
	r.Record(src, []byte("new"), Limited, t0+65*sec)       // bucket 6
	r.Record(src, []byte("new"), Limited, t0+69*sec+sec-1) // bucket 6
	top := func(now int64, w time.Duration) map[string]uint64 {
		out := map[string]uint64{}
		for _, e := range r.Top(Query{Now: now, Window: w, Outcome: Limited, Count: 100}).Entries {
			out[e.Key] = e.Count
		}
		return out
	}
	now := t0 + 69*sec
	assert.Equal(t, map[string]uint64{"new": 2}, top(now, 0), "window 0: the current bucket")
	assert.Equal(t, map[string]uint64{"new": 2}, top(now, 10*time.Second))
	assert.Equal(t, map[string]uint64{"new": 2, "mid": 1}, top(now, 40*time.Second), "buckets 2..6")
	assert.Equal(t, map[string]uint64{"new": 2, "mid": 1}, top(now, 31*time.Second), "rounded up to whole buckets")
	assert.Equal(t, map[string]uint64{"new": 2, "mid": 1, "old": 1}, top(now, 60*time.Second))
	assert.Equal(t, map[string]uint64{"new": 2, "mid": 1, "old": 1}, top(now, time.Hour), "capped at MaxWindow")
	assert.Empty(t, top(now+310*sec, 300*time.Second), "past the ring")
	// 31 buckets later the ring reuses bucket 0's slot; the window
	// (buckets 1 to 31) no longer covers "old".
	r.Record(src, []byte("later"), Limited, t0+310*sec)
	assert.Equal(t, map[string]uint64{"later": 1, "mid": 1, "new": 2}, top(t0+310*sec, 300*time.Second))
	// A clock moved back empties the slot it lands on rather than mixing
	// times: slot 0 held bucket 31, and now holds bucket 0 again.
	r.Record(src, []byte("back"), Limited, t0+5*sec)
	assert.Equal(t, map[string]uint64{"back": 1, "old": 1}, top(t0+5*sec, 0), "old was recorded in bucket 0 by a shard that reused nothing")
	assert.Equal(t, map[string]uint64{"back": 1, "mid": 1, "new": 2, "old": 1}, top(t0+69*sec, time.Minute),
		"the buckets between are kept, and so is bucket 0 in the shards that recorded nothing since")
}

// TestTopSourcesAndFilter: counts are per source and added up over the
// sources asked for; Accept hides keys before Count is applied; keys past
// MaxKeyLen are counted under their prefix and flagged.
func TestTopSourcesAndFilter(t *testing.T) {
	r := New(Options{MaxKeyLen: 8})
	th := r.Source(Command, "throttle")
	api := r.Source(Policy, "api")
	same := r.Source(Policy, "throttle") // a policy may share a command's name
	require.NotEqual(t, th, same)
	assert.Equal(t, api, r.Source(Policy, "api"), "registered once")
	for range 3 {
		r.Record(th, []byte("a"), Limited, t0)
	}
	for range 2 {
		r.Record(api, []byte("a"), Limited, t0)
		r.Record(api, []byte("tenant:b"), Limited, t0)
	}
	r.Record(same, []byte("c"), Limited, t0)
	r.Record(th, []byte("0123456789"), Limited, t0)
	r.Record(th, []byte("01234567xx"), Limited, t0)
	q := Query{Now: t0, Window: time.Minute, Outcome: Limited, Count: 10}
	assert.Equal(t, []Entry{{Key: "a", Count: 5}, {Key: "01234567", Count: 2, Truncated: true}, {Key: "tenant:b", Count: 2}, {Key: "c", Count: 1}},
		r.Top(q).Entries)
	q.Sources = []Source{api}
	res := r.Top(q)
	assert.Equal(t, []Entry{{Key: "a", Count: 2}, {Key: "tenant:b", Count: 2}}, res.Entries)
	assert.Equal(t, uint64(4), res.Decisions)
	q.Accept = func(k []byte, truncated bool) bool { return strings.HasPrefix(string(k), "tenant:") }
	q.Count = 1
	assert.Equal(t, []Entry{{Key: "tenant:b", Count: 2}}, r.Top(q).Entries)
	q.Sources, q.Outcome = nil, Allowed
	assert.Empty(t, r.Top(q).Entries)

	rates := r.Rates(t0, time.Minute)
	require.Len(t, rates.Series, 3, "sources with decisions in the window")
	assert.Equal(t, "throttle", rates.Series[0].Name)
	assert.Equal(t, Command, rates.Series[0].Kind)
	assert.Equal(t, uint64(5), rates.Series[0].Limited[len(rates.Series[0].Limited)-1])
	assert.Equal(t, []string{"throttle", "api", "throttle"}, []string{rates.Series[0].Name, rates.Series[1].Name, rates.Series[2].Name})
	assert.Equal(t, t0-int64(time.Minute), rates.Start)
	assert.Len(t, rates.Series[0].Allowed, 7)
}

// TestSourcesBounded: past MaxSources, new sources share "other".
func TestSourcesBounded(t *testing.T) {
	r := New(Options{MaxSources: 3})
	a, b := r.Source(Policy, "a"), r.Source(Policy, "b")
	assert.Equal(t, []Source{1, 2}, []Source{a, b})
	assert.Equal(t, Source(0), r.Source(Policy, "c"))
	_, ok := r.Lookup(Policy, "c")
	assert.False(t, ok)
}

// TestMemoryBounded fills every summary of every bucket with distinct keys
// longer than MaxKeyLen, from every source the bound allows: Memory stays
// within MaxMemory, reaches most of it, and the Go heap grows by about as
// much (not by the number of keys seen).
func TestMemoryBounded(t *testing.T) {
	opt := Options{Shards: 4, Capacity: 16, BucketWidth: time.Second, MaxWindow: 20 * time.Second, MaxSources: 8}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := New(opt)
	var srcs []Source
	for i := range 8 {
		srcs = append(srcs, r.Source(Policy, fmt.Sprint(i)))
	}
	key := make([]byte, 200)
	for i := range 200000 {
		copy(key, fmt.Sprintf("%016d", i))
		now := t0 + int64(i%21)*int64(time.Second)
		r.Record(srcs[i%len(srcs)], key, Outcome(i/21%2), now)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	mem, bound := r.Memory(), r.MaxMemory()
	t.Logf("memory %d bytes, bound %d, heap growth %d", mem, bound, int64(after.HeapAlloc)-int64(before.HeapAlloc))
	assert.LessOrEqual(t, mem, bound)
	assert.Greater(t, mem, bound*8/10, "the bound is close to what a full recorder holds")
	assert.Less(t, int64(after.HeapAlloc)-int64(before.HeapAlloc), 2*bound, "the heap grows by the bound, not by the keys seen")

	def := New(Options{})
	t.Logf("default bound %d bytes", def.MaxMemory())
	assert.Less(t, def.MaxMemory(), int64(8e6), "the package comment's figure")
}

// TestRecordDoesNotAllocate: recording a key already counted, or a new key
// no longer than the keys its slot held, allocates nothing.
func TestRecordDoesNotAllocate(t *testing.T) {
	r := New(Options{})
	src := r.Source(Command, "throttle")
	keys := make([][]byte, 4096)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "key:%08d", i)
	}
	for _, k := range keys { // fill every slot once
		r.Record(src, k, Limited, t0)
	}
	i := 0
	allocs := testing.AllocsPerRun(10000, func() {
		r.Record(src, keys[i%len(keys)], Limited, t0)
		r.Record(src, keys[0], Allowed, t0)
		i++
	})
	assert.Zero(t, allocs)
}

func BenchmarkRecord(b *testing.B) {
	for _, name := range []string{"existing", "zipf"} {
		b.Run(name, func(b *testing.B) {
			r := New(Options{})
			src := r.Source(Command, "throttle")
			keys := zipfKeys(1, 1.1, 100000, 1<<16)
			if name == "existing" {
				keys = keys[:1]
			}
			kb := make([][]byte, len(keys))
			for i, k := range keys {
				kb[i] = []byte(k)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				r.Record(src, kb[i&(len(kb)-1)], Limited, t0)
				i++
			}
		})
	}
}

// TestShardSize: a shard fills two cache lines exactly, so neighbouring
// shards' mutexes never share one.
func TestShardSize(t *testing.T) {
	assert.Equal(t, uintptr(128), unsafe.Sizeof(shard{}))
}
