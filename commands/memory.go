package commands

import (
	"runtime/metrics"
)

// Bounds on what one call may make the server hold, defaults of the Config
// fields of the same names.
const (
	// DefaultMaxMultiLimits is how many limits one THROTTLE.MULTI (and one
	// policy) may check at once: every shard they touch stays locked while
	// they are decided.
	DefaultMaxMultiLimits = 64
	// DefaultMaxLeasesPerKey is the largest max LEASE.ACQUIRE accepts, so
	// the most leases one key holds: each lease call on the key costs time
	// in proportion, and journals the key's whole set (16 bytes a lease,
	// 16 KiB at this bound).
	DefaultMaxLeasesPerKey = 1024
)

// Memory is what the server holds, as INFO's memory section and the
// metrics report it, and as --maxmemory counts it.
type Memory struct {
	// Used is Heap plus OffHeap: INFO's used_memory.
	Used int64
	// Heap is the Go heap's objects, live or not yet collected (connection
	// buffers, window counters, leases, small TAT tables...).
	Heap int64
	// OffHeap is the keyspace's TAT tables mapped outside the Go heap.
	OffHeap int64
	// GoTotal is all memory the Go runtime has mapped (heap, stacks,
	// free pages not yet returned): the process's size besides OffHeap.
	GoTotal int64
	// Max is the maxmemory bound; 0 means none.
	Max int64
}

// SampleMemory reads the Go heap's size for the maxmemory check, which
// adds the keyspace's off-heap bytes (counted exactly as they change) to
// the last sample. The server calls it on every sweep step (every 100 ms
// by default); reading the runtime's figures does not stop the world.
func (s *Server) SampleMemory() { s.Memory() }

// Memory reads the memory figures now (and refreshes the sample the
// maxmemory check uses).
func (s *Server) Memory() Memory {
	samples := [2]metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/total:bytes"}}
	metrics.Read(samples[:])
	m := Memory{
		Heap:    int64(samples[0].Value.Uint64()),
		GoTotal: int64(samples[1].Value.Uint64()),
		OffHeap: s.keys.OffHeapBytes(),
		Max:     s.cfg.MaxMemory,
	}
	m.Used = m.Heap + m.OffHeap
	s.heapSample.Store(m.Heap)
	return m
}

// overMemory reports whether used memory is over maxmemory, with the Go
// heap as last sampled and the off-heap tables as they are now: two atomic
// loads, for commands flagged denyoom when a bound is set.
func (s *Server) overMemory() bool {
	return s.heapSample.Load()+s.keys.OffHeapBytes() > s.cfg.MaxMemory
}
