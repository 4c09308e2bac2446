// Package gcra owns Sluice's rate-limiting arithmetic: the Generic Cell
// Rate Algorithm as redis-cell v0.5.0 computes it (see docs/spec/throttle.md).
//
// [Decide] is a pure function of the stored theoretical arrival time (TAT),
// the current instant, the [Limit] and the quantity. It never reads a
// clock, never locks and never allocates. Package keyspace stores each
// key's TAT and calls Decide under the key's lock; all instants are Unix
// nanoseconds, read once per request by the caller and passed down.
package gcra
