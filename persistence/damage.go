package persistence

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/cockroachdb/pebble"
)

// What the store does with a file it cannot read whole, in the spirit of
// Redis's aof-load-truncated (a torn tail is loaded, with a warning) and
// redis-check-aof --fix (corruption needs the operator's word).
//
// A journal segment is read with scanLog, which reads on past damage.
// Damage at the end of the newest segment, with nothing readable after
// it, is a torn tail: a crash interrupted the last write, so it holds only
// changes no reply waited for (Always) or made in the last moments before
// the crash (EverySec, No). Open folds what precedes it and logs a warning,
// unless told to refuse (Options.RefuseTruncated). Any other damage is
// corruption: records readable after the damage, damage in an older
// segment (the writer syncs a segment whole before beginning the next), a
// segment missing between the last fold and the last segment begun. Open
// refuses it, naming the file and the flag, unless told to accept the loss
// (Options.AcceptCorruption): then it folds every record it could read and
// logs what was lost at error level. A damaged segment is never removed:
// before its fold is committed it is linked aside as <name>.corrupt, which
// no fold reads again.
//
// Pebble's write-ahead log is checked before Pebble opens it (see
// openPebble), under the same flag; damage to the files that hold Pebble's
// structure (its MANIFEST, markers and sstables) is refused either way.

// corruptExt ends the name of a damaged file kept aside.
const corruptExt = ".corrupt"

// ErrDamaged is wrapped by Open's error when the data directory holds
// damage it was not told to accept.
var ErrDamaged = errors.New("damaged data")

// hintTruncated and hintCorrupt say what the flags would do.
const (
	hintTruncated = "with --journal-load-truncated yes (the default) the records before it are folded and the file is kept as %s"
	hintCorrupt   = "--journal-accept-corruption yes folds every record that can be read, keeps the file as %s and starts without the others"
)

// judgeSegment decides, from what scanLog found in segment n, whether its
// fold may go on. newest says it is the newest segment at Open, the only
// one whose damage can be a torn tail. It logs what was lost.
func (s *Store) judgeSegment(n uint64, sc logScan, newest bool) error {
	if !sc.damaged() {
		return nil
	}
	file := s.fs.PathJoin(s.journal, segmentName(n))
	kept := file + corruptExt
	attrs := []any{"file", file, "offset", sc.damageAt, "records_lost", sc.lostText(),
		"records_after", sc.after, "records_read", sc.records}
	switch {
	case newest && sc.tornTail() && !s.refuseTruncated && sc.cut:
		// Not a crash's doing on a preallocated segment: say it louder.
		s.log.Error("persistence: journal segment is cut short inside a record (truncated, or torn by a crash where it could not be preallocated): folding the records before it, the rest is lost",
			append(attrs, "kept_as", kept)...)
		return nil
	case newest && sc.tornTail() && !s.refuseTruncated:
		s.log.Warn("persistence: journal segment ends in a torn record (a crash interrupted its last write): folding the records before it",
			append(attrs, "kept_as", kept)...)
		return nil
	case newest && sc.tornTail():
		s.log.Error("persistence: journal segment ends in a torn record; refusing to start (--journal-load-truncated no)", attrs...)
		return fmt.Errorf("%w: journal segment %s ends in a torn record at offset %d (a crash interrupted its last write; %s record(s) lost); refusing to start with --journal-load-truncated no: "+hintTruncated,
			ErrDamaged, file, sc.damageAt, sc.lostText(), kept)
	case s.acceptCorruption:
		s.auxLost = true
		s.log.Error("persistence: journal segment is damaged: folding every record that could be read, the others are lost (--journal-accept-corruption yes)",
			append(attrs, "kept_as", kept)...)
		return nil
	}
	s.log.Error("persistence: journal segment is damaged; refusing to start", attrs...)
	where := "an older segment, synced whole before the next began"
	if sc.after > 0 {
		where = fmt.Sprintf("%d record(s) readable after it", sc.after)
	}
	return fmt.Errorf("%w: journal segment %s is damaged at offset %d (%s record(s) lost; %s); refusing to start: "+hintCorrupt,
		ErrDamaged, file, sc.damageAt, sc.lostText(), where, kept)
}

// missingSegments lists the segments from through (the first not folded)
// to opened (the last the writer began) that are not in nums.
func missingSegments(nums []uint64, through, opened uint64) []uint64 {
	var out []uint64
	for n := max(through, 1); n <= opened; n++ {
		if _, found := slices.BinarySearch(nums, n); !found {
			out = append(out, n)
		}
	}
	return out
}

// judgeMissing decides whether Open may go on without the segments missing.
func (s *Store) judgeMissing(missing []uint64) error {
	if len(missing) == 0 {
		return nil
	}
	files := make([]string, len(missing))
	for i, n := range missing {
		files[i] = s.fs.PathJoin(s.journal, segmentName(n))
	}
	if s.acceptCorruption {
		s.log.Error("persistence: journal segments are missing: their changes are lost (--journal-accept-corruption yes)", "files", files)
		return nil
	}
	s.log.Error("persistence: journal segments are missing; refusing to start", "files", files)
	return fmt.Errorf("%w: journal segment %s is missing (%d missing in all): it was written and not yet folded; refusing to start: --journal-accept-corruption yes starts without its changes",
		ErrDamaged, files[0], len(files))
}

// keepAside links name to name.corrupt (a second name for the same file,
// so that removing name later keeps its contents) and syncs the directory.
// A link left by an earlier attempt is kept.
func (s *Store) keepAside(dir, name string) error {
	path := s.fs.PathJoin(dir, name)
	if err := s.fs.Link(path, path+corruptExt); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("keep %s aside: %w", path, err)
	}
	return syncDir(s.fs, dir)
}

// moveAside renames name to name.corrupt, out of Pebble's sight.
func (s *Store) moveAside(dir, name string) error {
	path := s.fs.PathJoin(dir, name)
	if err := s.fs.Rename(path, path+corruptExt); err != nil {
		return fmt.Errorf("move %s aside: %w", path, err)
	}
	return syncDir(s.fs, dir)
}

// markOpened records, synced, that the writer began segment n.
func (s *Store) markOpened(n uint64) error {
	return guard(func() error {
		return s.db.Set([]byte(metaOpened), binary.BigEndian.AppendUint64(nil, n), pebble.Sync)
	})
}
