// Package topkeys owns the approximate count of rate-limit decisions by key
// over the last minutes: which keys were refused (or admitted) most, for
// THROTTLE.TOP and the status page, and the number of decisions of each
// command and policy, for the status page's charts.
//
// # Structure
//
// Time is cut into buckets of Options.BucketWidth (10 s); a ring keeps the
// buckets of the last Options.MaxWindow (300 s) plus the current one. Keys
// are spread over Options.Shards (16) shards by hash, each under its own
// mutex, and every shard holds, per bucket and per outcome (allowed,
// limited), a space-saving summary of Options.Capacity (32) counters. An
// item is a key together with its source (the command, or the policy, that
// decided). [Recorder.Top] merges the summaries of the buckets a window
// covers; [Recorder.Rates] reads the per-source totals of each bucket
// (exact for decisions recorded one by one, see Sampler).
//
// # Error bound
//
// Over a window, a key's reported count c and its recorded count t (its
// decisions, or their weighted sample: see below) satisfy |c − t| ≤ E,
// where E is the sum, over the window's buckets, of the smallest counter
// of the key's shard's summary when that summary is full (0 when it is
// not). Each such smallest counter is at most the bucket's
// decisions in that shard divided by Capacity, so E ≤ n/Capacity where n is
// the decisions of that outcome in the window that fell in the key's shard
// (about N/(Shards·Capacity) for N decisions spread evenly: N/512 by
// default). [Result.MaxError] reports E, the largest over the shards. A key
// with more than 2E decisions more than the key ranked below it is ranked
// correctly. Keys longer than Options.MaxKeyLen (128) bytes are counted
// under their first MaxKeyLen bytes and flagged as truncated.
//
// # Memory
//
// Bounded by [Recorder.MaxMemory]: Shards × (MaxWindow/BucketWidth + 1) ×
// 2 × Capacity counters of at most 52 + MaxKeyLen bytes each (count, slot
// and index entries, and the key), 5.7 MB with the defaults and 128-byte
// keys (2.7 MB with 32-byte keys); plus 16 bytes per source, bucket and
// shard for the totals, at most 2 MB with MaxSources 256 and a few KB with
// a few policies: 7.75 MB in all at most. Summaries are allocated as
// buckets fill, so an idle server holds almost none of it.
//
// # Cost and sampling
//
// Recording a decision hashes the key, takes one shard's mutex and, for a
// key already counted, adds to its counter; it allocates nothing. A new key
// that replaces another scans the summary's counts for the smallest and
// reuses the slot's key buffer, allocating only when the new key is longer
// than any the slot held. That is still a few cache misses, so busy
// connections are sampled ([Sampler]): each connection's first
// ExactPerBucket (1024) decisions of a bucket are recorded one by one, and
// past them each with probability 1/SampleEvery (1/16) and weight 16.
// Counts stay unbiased; a key's decisions from busy connections add a
// sampling error of about √(16·t) for t of them (one standard deviation:
// 4% of 10,000) to the bound above. Passing over a decision is three
// comparisons. BenchmarkTopKeysCost in package commands measures the whole
// cost on THROTTLE through the network.
package topkeys

import (
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Outcome is what a decision was.
type Outcome uint8

// The outcomes of a decision.
const (
	Allowed Outcome = iota
	Limited
)

// String names the outcome as THROTTLE.TOP and metrics do.
func (o Outcome) String() string {
	if o == Limited {
		return "limited"
	}
	return "allowed"
}

// Kind tells what a source is.
type Kind uint8

// The kinds of source.
const (
	Command Kind = iota // a command deciding on keys it names (THROTTLE...)
	Policy              // a named policy (POLICY.THROTTLE)
)

// String names the kind.
func (k Kind) String() string {
	if k == Policy {
		return "policy"
	}
	return "command"
}

// Source is what made a decision: a command or a policy, registered with
// [Recorder.Source].
type Source uint16

// Options size a Recorder; the zero value of a field means its default.
type Options struct {
	// Shards is the number of independently locked shards, rounded up
	// to a power of two. Default 16.
	Shards int
	// Capacity is the counters of one summary (per shard, bucket and
	// outcome), at most 4096. Default 32.
	Capacity int
	// BucketWidth is the time one bucket covers. Default 10s.
	BucketWidth time.Duration
	// MaxWindow is the longest window Top and Rates accept; the ring
	// keeps MaxWindow/BucketWidth buckets plus the current one.
	// Default 300s.
	MaxWindow time.Duration
	// MaxKeyLen is the most bytes of a key kept. Default 128.
	MaxKeyLen int
	// MaxSources is the most sources; decisions of sources registered
	// past it are recorded under the source "other". Default 256.
	MaxSources int
}

// The defaults of Options.
const (
	DefaultShards      = 16
	DefaultCapacity    = 32
	DefaultBucketWidth = 10 * time.Second
	DefaultMaxWindow   = 300 * time.Second
	DefaultMaxKeyLen   = 128
	DefaultMaxSources  = 256
)

func (o Options) withDefaults() Options {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.Shards, DefaultShards)
	def(&o.Capacity, DefaultCapacity)
	def(&o.MaxKeyLen, DefaultMaxKeyLen)
	def(&o.MaxSources, DefaultMaxSources)
	o.Capacity = min(o.Capacity, 4096)
	o.MaxSources = min(o.MaxSources, math.MaxUint16)
	o.Shards = 1 << bitsFor(o.Shards)
	if o.BucketWidth <= 0 {
		o.BucketWidth = DefaultBucketWidth
	}
	if o.MaxWindow <= 0 {
		o.MaxWindow = DefaultMaxWindow
	}
	o.MaxWindow = max(o.MaxWindow, o.BucketWidth)
	return o
}

// bitsFor is the smallest b with 1<<b >= n.
func bitsFor(n int) int {
	b := 0
	for 1<<b < n {
		b++
	}
	return b
}

// Recorder counts decisions by key. Its methods are safe for concurrent
// use.
type Recorder struct {
	opt     Options
	seed    maphash.Seed
	width   int64 // BucketWidth in ns
	nbucket int64
	shift   uint // hash >> shift picks the shard
	shards  []shard

	srcMu   sync.Mutex                  // serialises registration
	sources atomic.Pointer[sourceTable] // copy on write
}

// sourceTable is the registered sources; never modified once published.
type sourceTable struct {
	ids   map[sourceName]Source
	names []sourceName // by Source
}

type sourceName struct {
	kind Kind
	name string
}

// shard is one lock's worth of buckets.
type shard struct {
	mu      sync.Mutex
	buckets []bucket // the ring
	// cur is the bucket last recorded into, covering [curFrom, curTo):
	// Record finds it with two comparisons instead of two divisions.
	cur            *bucket
	curFrom, curTo int64
	_              [72]byte // 128 bytes a shard: neighbours' mutexes on other cache lines
}

// bucket is one BucketWidth of one shard.
type bucket struct {
	epoch  int64      // now / width of the time it covers; math.MinInt64 unused
	byOut  [2]summary // by Outcome; allocated on first use
	totals [][2]uint64
}

// New returns an empty Recorder sized by o.
func New(o Options) *Recorder {
	o = o.withDefaults()
	r := &Recorder{
		opt:     o,
		seed:    maphash.MakeSeed(),
		width:   int64(o.BucketWidth),
		nbucket: int64(o.MaxWindow/o.BucketWidth) + 1,
		shift:   uint(64 - bitsFor(o.Shards)),
		shards:  make([]shard, o.Shards),
	}
	for i := range r.shards {
		r.shards[i].buckets = make([]bucket, r.nbucket)
		for j := range r.shards[i].buckets {
			r.shards[i].buckets[j].epoch = math.MinInt64
		}
	}
	t := &sourceTable{ids: map[sourceName]Source{{Command, "other"}: 0}, names: []sourceName{{Command, "other"}}}
	r.sources.Store(t)
	return r
}

// Options returns the sizes in effect, defaults filled in.
func (r *Recorder) Options() Options { return r.opt }

// Source returns the id of the source named name of kind k, registering it
// the first time. Past MaxSources it returns the id of "other". Lookups of
// registered sources do not lock or allocate.
func (r *Recorder) Source(k Kind, name string) Source {
	if id, ok := r.sources.Load().ids[sourceName{k, name}]; ok {
		return id
	}
	r.srcMu.Lock()
	defer r.srcMu.Unlock()
	old := r.sources.Load()
	if id, ok := old.ids[sourceName{k, name}]; ok {
		return id
	}
	if len(old.names) >= r.opt.MaxSources {
		return 0
	}
	t := &sourceTable{ids: make(map[sourceName]Source, len(old.ids)+1), names: append(old.names[:len(old.names):len(old.names)], sourceName{k, name})}
	for n, id := range old.ids {
		t.ids[n] = id
	}
	id := Source(len(old.names))
	t.ids[sourceName{k, name}] = id
	r.sources.Store(t)
	return id
}

// Lookup returns the id of a registered source, without registering it.
func (r *Recorder) Lookup(k Kind, name string) (Source, bool) {
	id, ok := r.sources.Load().ids[sourceName{k, name}]
	return id, ok
}

// shardOf returns the shard of hash h.
func (r *Recorder) shardOf(h uint64) *shard {
	return &r.shards[(h>>r.shift)&uint64(len(r.shards)-1)]
}

// hash is the item's hash: the key's, mixed with its source.
func (r *Recorder) hash(src Source, key []byte) uint64 {
	return maphash.Bytes(r.seed, key) ^ (uint64(src)+1)*0x9e3779b97f4a7c15
}

// Record counts one decision of src on key at now (Unix ns).
func (r *Recorder) Record(src Source, key []byte, o Outcome, now int64) {
	r.RecordN(src, key, o, now, 1)
}

// RecordN counts w decisions of src on key at now (Unix ns): a sampled
// decision standing for w.
func (r *Recorder) RecordN(src Source, key []byte, o Outcome, now int64, w uint64) {
	truncated := len(key) > r.opt.MaxKeyLen
	if truncated {
		key = key[:r.opt.MaxKeyLen]
	}
	h := r.hash(src, key)
	sh := r.shardOf(h)
	sh.mu.Lock()
	b := r.bucketAt(sh, now)
	if int(src) >= len(b.totals) {
		b.totals = growTotals(b.totals, int(src)+1, r.opt.MaxSources)
	}
	b.totals[src][o&1] += w
	sm := &b.byOut[o&1]
	if sm.index == nil {
		*sm = newSummary(r.opt.Capacity)
	}
	sm.add(h, src, key, truncated, w)
	sh.mu.Unlock()
}

// epochOf is the bucket number of now, rounding down.
func (r *Recorder) epochOf(now int64) int64 {
	e := now / r.width
	if now < 0 && now%r.width != 0 {
		e--
	}
	return e
}

// bucketAt returns sh's bucket for now, emptied first when it held an
// older (or, after the clock moved back, a newer) time. The caller holds
// sh.mu.
func (r *Recorder) bucketAt(sh *shard, now int64) *bucket {
	if now >= sh.curFrom && now < sh.curTo {
		return sh.cur
	}
	e := r.epochOf(now)
	i := e % r.nbucket
	if i < 0 {
		i += r.nbucket
	}
	b := &sh.buckets[i]
	if b.epoch != e {
		b.epoch = e
		b.byOut[0].reset()
		b.byOut[1].reset()
		clear(b.totals)
	}
	sh.cur, sh.curFrom, sh.curTo = b, e*r.width, (e+1)*r.width
	return b
}

// span returns the bucket numbers a window ending at now covers: the
// current bucket and the window/BucketWidth (rounded up) before it, at
// most the ring.
func (r *Recorder) span(now int64, window time.Duration) (first, last int64) {
	last = r.epochOf(now)
	n := (int64(window) + r.width - 1) / r.width
	n = min(max(n, 0), r.nbucket-1)
	return last - n, last
}

// growTotals lengthens totals to n, allocating at most max entries.
func growTotals(totals [][2]uint64, n, most int) [][2]uint64 {
	if n <= cap(totals) {
		return totals[:n]
	}
	grown := make([][2]uint64, n, min(max(n, 2*cap(totals)), most))
	copy(grown, totals)
	return grown
}
