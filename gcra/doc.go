// Package gcra owns Sluice's rate-limiting arithmetic and the state it keeps.
//
// The algorithm is the Generic Cell Rate Algorithm as redis-cell v0.5.0 computes
// it (see shared/spec/throttle.md): [Decide] is a pure function of the stored
// theoretical arrival time (TAT), the current instant, the [Limit] and the
// quantity. It never reads a clock, never locks and never allocates.
//
// [Table] is the sharded in-memory state: a power-of-two number of shards, each
// an open-addressing hash table behind its own mutex, holding for every key only
// its TAT. Keys live in a per-shard byte arena and slots hold no pointers, so a
// million keys cost the garbage collector nothing to scan and THROTTLE on an
// existing key allocates nothing. A key whose TAT is not after now is
// indistinguishable from a missing key; [Table.Sweep] reclaims such keys
// incrementally, a bounded number of slots per shard per call, so memory tracks
// the keys that still matter without a stop-the-world scan.
//
// Time is injected: callers read a [Clock] once per request and pass the
// instant down. All instants are Unix nanoseconds.
package gcra
