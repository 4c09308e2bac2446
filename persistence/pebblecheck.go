package persistence

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/record"
	"github.com/cockroachdb/pebble/sstable"
)

// Pebble v1.1.5 takes several kinds of damage for an earlier state without
// a word, and panics on one. Before opening it the store checks what Pebble
// would misread:
//
//   - a missing marker file: without marker.format-version.* or
//     marker.manifest.* Pebble takes the directory for a new database (or
//     panics), so a directory holding Pebble's files without them is
//     refused, naming the file;
//   - the current MANIFEST (the list of sstables): Pebble reads up to the
//     first bad record and would delete, as obsolete, the sstables listed
//     after it; records readable after damage are refused;
//   - every sstable's block checksums: a compaction reads a damaged block
//     as the end of the table (with v1.1.5 one flipped byte cost the
//     block's keys, and the file, when a compaction at Open rewrote it);
//   - the newest write-ahead log: Pebble replays it up to the first bad
//     record and drops the rest; records readable after damage are refused
//     unless Options.AcceptCorruption (Pebble's older logs must end clean:
//     their damage is Pebble's own error, mapped to the same refusal);
//   - the newest OPTIONS file: it holds settings, no state, so one Pebble
//     cannot parse is moved aside (logged) and Pebble writes a new one.
//
// A torn tail of the MANIFEST or the newest log is how a crash leaves
// them; Pebble reads what precedes it, as it should. A panic in Open is
// returned as an error. The folds flush to sstables before their journal
// segments are removed, so the write-ahead log never holds the only copy
// of a change: these checks matter most for directories written before
// that, and as a guard.

// pebbleOptions are the options the store opens Pebble with.
func (s *Store) pebbleOptions(opts Options) *pebble.Options {
	return &pebble.Options{
		FS:                 s.fs,
		Lock:               s.lock,
		Logger:             pebbleLogger{opts.Logger},
		EventListener:      s.eventListener(),
		FormatMajorVersion: pebble.FormatNewest,
		MemTableSize:       opts.MemTableSize,
		// Pebble's default lets the manifest grow to 128 MiB before it is
		// rewritten; constant churn appends to it on every flush.
		MaxManifestFileSize: 8 << 20,
	}
}

// openPebble checks Pebble's files and opens it.
func (s *Store) openPebble(opts Options) (*pebble.DB, error) {
	names, err := s.fs.List(s.dir)
	if err != nil {
		return nil, fmt.Errorf("read data dir %s: %w", s.dir, err)
	}
	slices.Sort(names)
	manifest, err := s.checkPebbleFiles(names)
	if err != nil {
		return nil, err
	}
	db, err := openGuarded(s.dir, s.pebbleOptions(opts))
	if err != nil && isLogDamage(err) {
		// An older write-ahead log that does not end clean.
		if err := s.judgeOlderLogs(names); err != nil {
			return nil, err
		}
		db, err = openGuarded(s.dir, s.pebbleOptions(opts))
	}
	switch {
	case err != nil && s.tornManifest != "":
		return nil, fmt.Errorf("open data dir %s: %w; %s", s.dir, err, s.tornManifest)
	case err != nil && manifest != "":
		return nil, fmt.Errorf("open data dir %s (its current MANIFEST, the list of Pebble's files, is %s): %w", s.dir, s.fs.PathBase(manifest), err)
	case err != nil:
		return nil, fmt.Errorf("open data dir %s: %w", s.dir, err)
	}
	return db, nil
}

// openGuarded is pebble.Open, with a panic returned as an error.
func openGuarded(dir string, opts *pebble.Options) (db *pebble.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("pebble panicked opening the directory: %v", r)
		}
	}()
	return pebble.Open(dir, opts)
}

// isLogDamage reports whether err is Pebble's refusal of a damaged
// write-ahead log.
func isLogDamage(err error) bool {
	return errors.Is(err, record.ErrInvalidChunk) || errors.Is(err, record.ErrZeroedChunk) ||
		errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "replaying WAL")
}

// checkPebbleFiles runs the checks before Pebble opens (see above) and
// returns the path of the current MANIFEST, "" in a new directory.
func (s *Store) checkPebbleFiles(names []string) (string, error) {
	desc, err := pebble.Peek(s.dir, s.fs)
	if err != nil {
		return "", fmt.Errorf("read data dir %s: %w", s.dir, err)
	}
	if err := s.checkMarkers(names, desc); err != nil || !desc.Exists {
		return "", err
	}
	if err := s.checkManifest(desc.ManifestFilename); err != nil {
		return "", err
	}
	for _, n := range names {
		if strings.HasSuffix(n, ".sst") {
			if err := s.checkTable(n); err != nil {
				return "", err
			}
		}
	}
	if err := s.checkNewestLog(names); err != nil {
		return "", err
	}
	return desc.ManifestFilename, s.checkOptionsFile(names)
}

// checkMarkers refuses a directory that holds Pebble's data without the
// marker files naming its format and current MANIFEST. (Directories of
// Pebble's oldest format name their MANIFEST in a CURRENT file instead;
// Peek finds it.)
func (s *Store) checkMarkers(names []string, desc *pebble.DBDesc) error {
	var data []string
	for _, n := range names {
		if strings.HasPrefix(n, "MANIFEST-") || strings.HasSuffix(n, ".sst") {
			data = append(data, n)
		}
	}
	has := func(prefix string) bool {
		return slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, prefix) })
	}
	found := func(path string) bool { _, err := s.fs.Stat(path); return err == nil }
	var missing string
	switch {
	case len(data) == 0:
		return nil // a new directory
	case !has("marker.format-version.") && (!desc.Exists || !found(desc.ManifestFilename)):
		missing = "marker.format-version.*"
	case !desc.Exists:
		missing = "marker.manifest.*"
	default:
		return nil
	}
	s.log.Error("persistence: Pebble's marker file is missing; refusing to start", "dir", s.dir, "missing", missing, "holds", data)
	example := fmt.Sprintf("marker.format-version.000001.%03d", uint64(pebble.FormatNewest))
	if missing == "marker.manifest.*" {
		example = "marker.manifest.000001." + lastWithPrefix(data, "MANIFEST-")
	}
	return fmt.Errorf("%w: data dir %s holds Pebble's files (%s) but no %s file, which Pebble needs to find them (it would take the directory for a new, empty database); refusing to start: restore the file (an empty file named for what it marks, e.g. %s) or move the directory aside",
		ErrDamaged, s.dir, strings.Join(data, ", "), missing, example)
}

// lastWithPrefix is the last of names starting with prefix, or prefix.
func lastWithPrefix(names []string, prefix string) string {
	out := prefix
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			out = n
		}
	}
	return out
}

// checkManifest refuses a MANIFEST with records readable after damage, and
// keeps aside one whose tail is torn (Pebble reads what precedes it and
// later deletes the file).
func (s *Store) checkManifest(path string) error {
	f, err := s.fs.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		s.log.Error("persistence: Pebble's current MANIFEST is missing; refusing to start", "file", path)
		return fmt.Errorf("%w: Pebble's current MANIFEST %s (its list of sstables, named by its marker.manifest.* file) is missing; refusing to start (no flag accepts this): restore the directory from a backup or a replica, or move it aside",
			ErrDamaged, path)
	}
	if err != nil {
		return fmt.Errorf("read data dir %s: %w", s.dir, err)
	}
	defer func() { _ = f.Close() }()
	sc, err := scanLog(f, 0, false, func([]byte) error { return nil })
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if !sc.damaged() {
		return nil
	}
	attrs := []any{"file", path, "offset", sc.damageAt, "records_lost", sc.lostText(), "records_after", sc.after}
	if sc.tornTail() {
		s.log.Warn("persistence: Pebble's MANIFEST ends in a torn record (a crash interrupted its last write); Pebble reads what precedes it",
			append(attrs, "kept_as", path+corruptExt)...)
		s.tornManifest = fmt.Sprintf("Pebble's %s ends in a torn record at offset %d (kept as %s): if it was cut short rather than torn by a crash, it lists an earlier state; restore the directory from a backup or a replica",
			path, sc.damageAt, path+corruptExt)
		return s.keepAside(s.dir, s.fs.PathBase(path))
	}
	s.log.Error("persistence: Pebble's MANIFEST is damaged; refusing to start", attrs...)
	return fmt.Errorf("%w: Pebble's %s (its list of sstables) is damaged at offset %d with %d record(s) readable after it: Pebble would read only what precedes the damage and delete the sstables listed after it; refusing to start (no flag accepts this): restore the directory from a backup or a replica, or move it aside",
		ErrDamaged, path, sc.damageAt, sc.after)
}

// checkTable verifies every block checksum of one sstable.
func (s *Store) checkTable(name string) error {
	path := s.fs.PathJoin(s.dir, name)
	f, err := s.fs.Open(path)
	if err != nil {
		return fmt.Errorf("read data dir %s: %w", s.dir, err)
	}
	readable, err := sstable.NewSimpleReadable(f)
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("read %s: %w", path, err)
	}
	r, err := sstable.NewReader(readable, sstable.ReaderOptions{})
	if err == nil {
		err = r.ValidateBlockChecksums()
		if cerr := r.Close(); err == nil {
			err = cerr
		}
	} else {
		_ = readable.Close()
	}
	if err == nil {
		return nil
	}
	s.log.Error("persistence: sstable is damaged; refusing to start", "file", path, "err", err)
	return fmt.Errorf("%w: sstable %s is damaged (%v); refusing to start (no flag accepts this: Pebble's compactions would drop the damaged blocks without a word): restore the directory from a backup or a replica, or move it aside",
		ErrDamaged, path, err)
}

// walNumber parses the name of one of Pebble's write-ahead logs.
func walNumber(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, ".log")
	if !ok || len(digits) < 6 {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	return n, err == nil
}

// scanWAL scans one of Pebble's write-ahead logs.
func (s *Store) scanWAL(name string, num uint64) (logScan, error) {
	path := s.fs.PathJoin(s.dir, name)
	f, err := s.fs.Open(path)
	if err != nil {
		return logScan{}, fmt.Errorf("read data dir %s: %w", s.dir, err)
	}
	defer func() { _ = f.Close() }()
	sc, err := scanLog(f, uint32(num), true, func([]byte) error { return nil })
	if err != nil {
		return sc, fmt.Errorf("read %s: %w", path, err)
	}
	return sc, nil
}

// checkNewestLog refuses, unless told to accept it, a newest write-ahead
// log with records readable after damage, which Pebble would drop.
// Accepted, the log is kept aside before Pebble replays and removes it.
func (s *Store) checkNewestLog(names []string) error {
	var newest string
	var num uint64
	for _, n := range names {
		if v, ok := walNumber(n); ok && v >= num {
			newest, num = n, v
		}
	}
	if newest == "" {
		return nil
	}
	sc, err := s.scanWAL(newest, num)
	if err != nil {
		return err
	}
	if !sc.damaged() || sc.tornTail() {
		return nil // clean, or how a crash leaves it: Pebble reads it so
	}
	path := s.fs.PathJoin(s.dir, newest)
	attrs := []any{"file", path, "offset", sc.damageAt, "records_lost", sc.lostText(), "records_after", sc.after}
	if s.acceptCorruption {
		s.log.Error("persistence: Pebble's write-ahead log is damaged: Pebble replays what precedes the damage, the rest is lost (--journal-accept-corruption yes)",
			append(attrs, "kept_as", path+corruptExt)...)
		return s.keepAside(s.dir, newest)
	}
	s.log.Error("persistence: Pebble's write-ahead log is damaged; refusing to start", attrs...)
	return fmt.Errorf("%w: Pebble's write-ahead log %s is damaged at offset %d with %d record(s) readable after it, which Pebble would drop; refusing to start: --journal-accept-corruption yes starts with what precedes the damage and keeps the file as %s",
		ErrDamaged, path, sc.damageAt, sc.after, path+corruptExt)
}

// judgeOlderLogs explains Pebble's refusal of a damaged write-ahead log
// other than the newest, and with AcceptCorruption moves every damaged one
// aside so that Pebble opens without it.
func (s *Store) judgeOlderLogs(names []string) error {
	var damaged []string
	var newest uint64
	for _, n := range names {
		if v, ok := walNumber(n); ok {
			newest = max(newest, v)
		}
	}
	for _, n := range names {
		num, ok := walNumber(n)
		if !ok || num == newest {
			continue
		}
		sc, err := s.scanWAL(n, num)
		if err != nil {
			return err
		}
		if sc.damaged() {
			damaged = append(damaged, n)
			s.log.Error("persistence: Pebble's write-ahead log is damaged", "file", s.fs.PathJoin(s.dir, n),
				"offset", sc.damageAt, "records_lost", sc.lostText(), "records_after", sc.after)
		}
	}
	if len(damaged) == 0 {
		return nil // not what Pebble refused: its error stands
	}
	if !s.acceptCorruption {
		return fmt.Errorf("%w: Pebble's write-ahead log %s is damaged (%d damaged in all); refusing to start: --journal-accept-corruption yes moves it aside as %s and starts without its changes",
			ErrDamaged, s.fs.PathJoin(s.dir, damaged[0]), len(damaged), s.fs.PathJoin(s.dir, damaged[0])+corruptExt)
	}
	for _, n := range damaged {
		s.log.Error("persistence: moving Pebble's damaged write-ahead log aside; its changes are lost (--journal-accept-corruption yes)",
			slog.String("file", s.fs.PathJoin(s.dir, n)), slog.String("kept_as", s.fs.PathJoin(s.dir, n)+corruptExt))
		if err := s.moveAside(s.dir, n); err != nil {
			return err
		}
	}
	return nil
}

// checkOptionsFile moves aside a newest OPTIONS file Pebble cannot parse:
// it holds settings, no state, and Pebble writes a new one. One that
// parses but does not match (another comparer) is Pebble's to refuse.
func (s *Store) checkOptionsFile(names []string) error {
	name := lastWithPrefix(names, "OPTIONS-")
	if name == "OPTIONS-" {
		return nil
	}
	path := s.fs.PathJoin(s.dir, name)
	f, err := s.fs.Open(path)
	if err != nil {
		return fmt.Errorf("read data dir %s: %w", s.dir, err)
	}
	b, err := io.ReadAll(f)
	_ = f.Close()
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	err = (&pebble.Options{}).Parse(string(b), &pebble.ParseHooks{SkipUnknown: func(string, string) bool { return true }})
	if err == nil {
		return nil
	}
	s.log.Error("persistence: Pebble's OPTIONS file is damaged; moving it aside (it holds settings, no data: Pebble writes a new one)",
		"file", path, "err", err, "kept_as", path+corruptExt)
	return s.moveAside(s.dir, name)
}
