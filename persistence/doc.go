// Package persistence owns Sluice's durable copy of the keyspace in the data
// directory (--data-dir): a journal of the keyspace's changes, folded into a
// Pebble database.
//
// The in-memory keyspace stays the source of truth for every decision; the
// [Store] consumes its change stream. It implements keyspace.Journal: the
// keyspace calls [Store.Record] with every [keyspace.Change] (a Set, a
// Delete or a Flush, of any kind of state) under the changed key's shard
// lock. Record does no I/O and never allocates in steady state: it encodes
// the change into an in-memory pending log (64 KiB chunks, reused) and gives
// it a sequence number. A single writer goroutine takes whatever
// accumulated and appends it to the journal, a segment file beside Pebble,
// as one record (split at 512 KiB when it fell far behind), so the changes
// of one key reach disk in the order they happened. Once a segment holds
// FoldBytes the writer starts the next one, and a folder goroutine folds
// the full one into Pebble: the last state of each key wins, and a key
// created and deleted within one fold costs nothing. Without a data
// directory there is no Store and the keyspace journals nothing.
//
// Files by job: options.go (Options, defaults, Mode), dir.go (directory
// safety, locking, the layout version), record.go (Record and the pending
// log, whose encoding the journal shares), writer.go (the writer, group
// commit, Wait and Sync), segment.go (journal files), logscan.go (reading
// Pebble's record format past damage), damage.go (what a start does with
// damage), pebblecheck.go (checking Pebble's files before opening it),
// fold.go (folding into Pebble), recover.go (replay at Open, Load),
// layout.go (Pebble's key space), stats.go (counters for INFO).
//
// # Layout
//
// Each kind of state has a prefix in Pebble: "g/" (GCRA), "w/" (window
// counters), "l/" (leases). A key's state of a kind is stored as prefix +
// key -> 8 bytes of big-endian Expires (absolute Unix nanoseconds, so it
// means the same after a restart) followed by the Change's Value (empty for
// GCRA). "m/format" holds the layout version (5; a directory with any other
// version is refused), "m/folded" the number of the first journal segment
// not yet folded and "m/opened" the number of the last one begun (every
// segment between them must be on disk). "a/" + name holds the auxiliary
// fields recorded with [Store.RecordAux] (a replica's replication ID and
// offset): journalled in order with the changes and folded with them, so a
// field never describes a change the directory lacks; a fold that lost
// records to accepted corruption drops them all. The journal directory holds the
// segments, numbered in order: records in Pebble's record format, each a
// run of changes in the pending log's encoding (see record.go), and any
// damaged segment kept aside as <name>.corrupt.
//
// # Guarantees
//
// Each batch is handed to the operating system as soon as it is taken
// (one write(2) to the journal), so a crash of the process alone (kill -9,
// out of memory, a panic) loses only changes recorded but not yet
// written — in EverySec and No modes the writer lets changes gather for a
// millisecond first, so about the last millisecond of decisions; in Always
// mode none that was acknowledged. The [Mode] says when a batch is on
// stable storage (fsynced), which is what a crash of the machine or a power
// loss keeps:
//
//   - [Always]: every batch is synced before the writer takes the next.
//     [Store.Wait] returns only once every change recorded before the call
//     is synced, so a reply sent after Wait never promises what a crash could
//     forget. Decisions made while a sync runs share the next one (group
//     commit), and before taking a group the writer yields to the goroutines
//     already runnable, so every request already read joins it.
//   - [EverySec]: the journal is synced within SyncInterval (one second) of
//     the first write after the previous sync, and when a full segment is
//     closed. A machine crash loses at most about the last
//     SyncInterval of changes plus the duration of one sync.
//   - [No]: the store asks for a sync only when a full segment is closed
//     (before it is folded) and at Close; the operating
//     system writes the journal back when it decides (on Linux typically
//     within 30 seconds), and a machine crash loses whatever it had not.
//
// A directory the store creates (and the journal directory) has its entry
// synced in its parent, and a segment's entry is synced before anything a
// reply waits for is written to it, so a power cut keeps the files as well
// as their contents; a test cuts the power on a file system that forgets
// everything unsynced and checks that each mode keeps what it promised.
//
// A fold is committed into Pebble, with the mark of the segments it
// covered, and flushed to an sstable before their files are removed, so
// Pebble's write-ahead log never holds the only copy of a change; Pebble
// syncs its own sstables and manifest, in every mode. In every mode a clean
// [Store.Close] writes and syncs everything recorded before it, and every
// crash is safe: a torn last journal record is skipped at replay (with a
// warning), an interrupted fold is done again, and Pebble's write-ahead log
// recovers the rest, so the data directory is never corrupted, only
// possibly behind.
//
// [Open] folds whatever journal a previous run left into Pebble;
// [Store.Load] then hands the keyspace (a [Restorer]) every state whose
// Expires is still after now and deletes from disk the ones that passed
// while Sluice was down. State the keyspace deletes (DEL, the expiry sweep,
// FLUSHALL) is deleted from Pebble when the journal holding the deletion is
// folded, and Pebble's compactions reclaim the space.
//
// # Errors
//
// [Open] refuses a path that is a file, cannot be created or written, is
// locked by another process (Pebble's LOCK file), holds files that are
// neither Pebble's nor the journal, or holds another layout version; it
// never removes anything.
//
// Damage is never read as an earlier state without a word (damage.go,
// pebblecheck.go). Journal segments are read past damage: a torn tail of
// the newest segment is folded up to the tear with a warning (unless
// Options.RefuseTruncated); any other damage, a missing segment, or
// Pebble's newest write-ahead log damaged before its end makes Open
// return an error wrapping [ErrDamaged] that names the file, unless
// Options.AcceptCorruption (then every readable record is folded and the
// loss logged at error level). A damaged MANIFEST, a missing marker file
// or a damaged sstable is refused either way. A damaged file is never
// removed: it is kept aside as <name>.corrupt. A failed journal write or sync, a failed fold or
// a failed Pebble commit at run time stops the store: it is logged and
// counted, later changes are dropped, and from then on [Store.Wait] and
// [Store.Sync] return the error in every mode, so replies stop claiming
// durability. The on-disk state stays as of the last successful write; a
// restart recovers from it.
package persistence
