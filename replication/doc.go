// Package replication owns the copies of the keyspace on other servers: the
// primary side, which ships the keyspace's change stream to replicas, and
// the replica side, which follows a primary and applies it.
//
// # The stream
//
// The keyspace emits every change, in order, to its Journal; the [Backlog]
// is one of those journals (next to persistence, through keyspace.Tee). It
// encodes each change as a record (stream.go) into a buffer of blocks and
// counts offsets in bytes of that encoding, as Redis's master_repl_offset
// counts bytes of its command stream. Record runs under the changed key's
// shard lock: it copies a few dozen bytes into a reused block and never
// waits on the network. Heartbeats (the primary's wall clock, every
// second) and GETACKs (from WAIT) are records of the same stream.
//
// # Primary
//
// A replica connects to the ordinary RESP port and speaks Redis's
// handshake: AUTH (--masterauth, --masteruser), PING, REPLCONF
// listening-port, REPLCONF ip-address (with --replica-announce-ip; the
// primary then names the replica by it), REPLCONF capa psync2, PSYNC
// replid offset. The command
// layer hands the connection to [Node.ServeReplica], which answers
// +CONTINUE and streams from the backlog when the backlog still holds what
// the replica lacks (a partial resync), and +FULLRESYNC replid offset, a
// snapshot ($len, then Set records) and the stream from that offset
// otherwise. Replicas acknowledge with REPLCONF ACK offset every second
// and on GETACK; [Node.Wait] (WAIT) counts the replicas whose
// acknowledgement covers the offset at its call.
//
// The snapshot is taken shard by shard with keyspace.Range while the
// stream goes on. Its offset is the backlog's end read before the first
// shard is locked, so each shard's part of the snapshot already holds
// every change before that offset, and possibly some after it. The replica
// applies the snapshot and then the stream from that offset: a change
// already in the snapshot is applied again. That is harmless because every
// change carries the whole state of its key and kind (a Set its value and
// expiry, a Delete its absence, a Flush everything): replaying a key's
// changes in order from any earlier point ends in the state its last
// change set. Nothing is lost (every change after the offset is streamed)
// and nothing is applied out of order (a key's changes are streamed in the
// order they happened, under its shard lock). No lock is held across
// shards, so a full resync never stalls the primary.
//
// # Replica
//
// A replica (ReplicaOf) follows its primary in the background: it
// connects, resynchronises, applies each record with keyspace.Apply (so
// its own persistence, if any, journals the same changes in order),
// appends the bytes it applied to its own backlog, so that its offsets are
// its primary's and its own replicas can follow it, and reconnects with
// backoff (100 ms doubling to 5 s) when the link fails. Promote (REPLICAOF
// NO ONE) stops it after the record being applied and makes it a primary
// with a new replication ID, keeping the old one as its second so that the
// other replicas, and the old primary, can continue from it.
package replication
