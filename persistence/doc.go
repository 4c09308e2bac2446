// Package persistence owns Sluice's durable copy of the state table, kept in
// a Pebble database in the data directory (--data-dir).
//
// The in-memory gcra.Table stays the source of truth for every decision; the
// [Store] is a journal of its changes. It implements gcra.Journal: the table
// calls [Store.Record] under the key's shard lock for every change (tat 0 for
// a removal: DEL, expiry sweep, a refund back to full) and
// [Store.RecordFlush] for FLUSHALL. Record does no I/O and never allocates
// in steady state: it appends the change to an in-memory pending log (64 KiB
// chunks, reused) and gives it a sequence number. A single writer goroutine
// takes whatever accumulated and appends it to the journal, a segment file
// beside Pebble, as one record (split at 512 KiB when it fell far behind),
// so the changes of one key reach disk in the order they happened. A folder
// goroutine later folds full segments into Pebble's key space (see
// journal.go). Without a data directory
// there is no Store and the table journals nothing.
//
// # Layout
//
// Every live key is stored as "t/" + key -> its TAT, 8 bytes of big-endian
// Unix nanoseconds (absolute, so it means the same after a restart); window
// counters and leases live under "w/" and "l/". "m/format" holds the layout
// version (4; version 1, from before the journal, version 2, whose
// journal was "j/" + an entry number inside Pebble, and version 3, whose
// journal had no opForget, are upgraded in place)
// and "m/folded" the number of the first journal segment not yet folded.
// The journal directory holds the segments, numbered in order: records in
// Pebble's record format, each the pending log's encoding of one batch.
//
// # Guarantees
//
// Each batch is handed to the operating system as soon as it is committed
// (one write(2) to the journal), so a crash of the
// process alone (kill -9, out of memory, a panic) loses only changes
// recorded but not yet committed — in EverySec and No modes the writer lets
// changes gather for a millisecond first, so about the last millisecond of
// decisions; in Always mode none that was acknowledged. The [Mode] says when a batch is on stable
// storage (fsynced), which is what a crash of the machine or a power loss
// keeps:
//
//   - [Always]: every batch is synced before the writer takes the next.
//     [Store.Wait] returns only once every change recorded before the call
//     is synced, so a reply sent after Wait never promises what a crash could
//     forget. Decisions made while a sync runs share the next one (group
//     commit), and before taking a group the writer yields to the goroutines
//     already runnable, so every request already read joins it.
//     If a write fails, Wait returns the error from then on.
//   - [EverySec]: the journal is synced within SyncInterval (one second) of
//     the first write after the previous sync, and when a full segment is
//     closed. A machine crash loses at most about the last
//     SyncInterval of changes plus the duration of one sync.
//   - [No]: the store asks for a sync only when a full segment is closed
//     (before it is folded) and at Close; the operating
//     system writes the log back when it decides (on Linux typically within
//     30 seconds), and a machine crash loses whatever it had not.
//
// A directory the store creates (and the journal directory) has its entry
// synced in its parent, and a segment's entry is synced before anything a
// reply waits for is written to it, so a power cut keeps the files as well
// as their contents; a test cuts the power on a file system that forgets
// everything unsynced and checks that each mode keeps what it promised.
//
// Folds are synced into Pebble before their segments are removed, and
// Pebble syncs its own sstables and manifest, in every mode. In every mode
// a clean [Store.Close] commits and syncs everything recorded before it, and
// every crash is safe: a torn last journal record is ignored at replay and
// Pebble's write-ahead log recovers the rest, so the data directory is never
// corrupted, only possibly behind.
//
// [Open] folds whatever journal a previous run left into the key space;
// [Store.Load] then rebuilds the table: every TAT still in the future is set
// into the table; TATs that passed while Sluice was down are deleted from
// disk instead. Keys the expiry sweep removes are deleted from disk when the
// journal holding their removal is folded, and Pebble's compactions reclaim
// the space.
//
// # Errors
//
// [Open] refuses a path that is a file, cannot be created or written, is
// locked by another process (Pebble's LOCK file), or holds files that are
// neither Pebble's nor the journal; it never removes anything. A failed
// journal write or sync, or a failed fold, at run time stops the store: it is logged and
// counted, later changes are dropped, and in Always mode Wait reports the
// error so replies stop claiming durability. The on-disk state stays as of the
// last successful write; a restart recovers from it.
package persistence
