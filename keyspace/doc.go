// Package keyspace owns every key Sluice holds and all of its state: GCRA
// TATs, window counters, concurrency leases, expiring counters and sliding
// logs live in one sharded table of key names, behind one lock per shard, so DEL, EXISTS, TTL, DBSIZE,
// FLUSHALL and the expiry sweep see each key as one thing whatever mix of
// state it holds.
//
// Every change to any kind of state is emitted, in order, as one [Change] to
// an optional [Journal]: this stream is what persistence writes to disk and
// what replication ships ([Tee] hands it to both). Recovery puts a stream
// back with [Keyspace.Restore]; a replica applies its primary's with
// [Keyspace.Apply], which journals what it changed. The algorithms
// themselves are pure functions in packages gcra, window, lease, counter and
// slidinglog; the keyspace locks, looks up, calls them
// with the instant the caller passes, stores the outcome and journals it.
// It never reads a clock.
package keyspace
