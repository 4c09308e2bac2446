package persistence

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
)

// The data directory holds Pebble's files and the journal directory, and
// nothing else. Open takes Pebble's LOCK file first, so two processes never
// share a directory, and refuses a directory that holds anything it does
// not recognise rather than mix its files into someone else's.

// journalDir is the journal's directory inside the data directory.
const journalDir = "journal"

// prepareDir makes sure dir is a directory, creating it (and missing
// parents) when missing. Each directory it creates has its entry synced in
// its parent, so that a power cut cannot take the data dir away with
// everything later stored in it.
func prepareDir(dir string, fs vfs.FS) error {
	st, err := fs.Stat(dir)
	switch {
	case err == nil && !st.IsDir():
		return fmt.Errorf("data dir %s is not a directory", dir)
	case err == nil:
		return nil
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("data dir %s: %w", dir, err)
	}
	// The directories to create, innermost first.
	missing := []string{dir}
	for d := fs.PathDir(dir); d != missing[len(missing)-1]; d = fs.PathDir(d) {
		if _, err := fs.Stat(d); err == nil {
			break
		}
		missing = append(missing, d)
	}
	if err := fs.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if parent := fs.PathDir(missing[i]); parent != missing[i] {
			if err := syncDir(fs, parent); err != nil {
				return fmt.Errorf("create data dir: sync %s: %w", parent, err)
			}
		}
	}
	return nil
}

// syncDir makes the entries of directory dir durable.
func syncDir(fs vfs.FS, dir string) error {
	d, err := fs.OpenDir(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// lockError explains why Pebble's LOCK file could not be taken.
func lockError(dir string, err error) error {
	var pe *os.PathError
	if !errors.As(err, &pe) && (errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) ||
		strings.Contains(err.Error(), "lock held by current process")) {
		return fmt.Errorf("data dir %s is in use by another running sluice (its LOCK file is held): %w", dir, err)
	}
	return fmt.Errorf("lock data dir %s: %w", dir, err)
}

// checkContents refuses a directory that holds anything but Pebble's files
// and the journal: pointing --data-dir at the wrong place must not mix
// Sluice's files into it.
func checkContents(dir string, fs vfs.FS, others []string) error {
	desc, err := pebble.Peek(dir, fs)
	if err != nil {
		return fmt.Errorf("read data dir %s: %w", dir, err)
	}
	if desc.Exists {
		return nil
	}
	names, err := fs.List(dir)
	if err != nil {
		return fmt.Errorf("read data dir %s: %w", dir, err)
	}
	for _, n := range names {
		if !pebbleFile(n) && !slices.Contains(others, n) {
			return fmt.Errorf("data dir %s holds %q and no Sluice data; refusing to use it (give an empty or new directory)", dir, n)
		}
	}
	return nil
}

// pebbleFile reports whether name is one Pebble (or the store: the
// journal) writes in the data directory.
func pebbleFile(name string) bool {
	switch {
	case strings.HasSuffix(name, corruptExt):
		// A damaged file the store kept aside.
		return true
	case name == "LOCK", name == "CURRENT", name == "archive", name == journalDir,
		strings.HasPrefix(name, "OPTIONS-"), strings.HasPrefix(name, "MANIFEST-"),
		strings.HasPrefix(name, "marker."), strings.HasSuffix(name, ".log"),
		strings.HasSuffix(name, ".sst"), strings.HasSuffix(name, ".dbtmp"):
		return true
	}
	return false
}

// checkLayout accepts a directory stamped with formatVersion and stamps a
// new one. It refuses a directory stamped with another version, and one
// that holds data (in Pebble or the journal) without a stamp: this package
// would misread either.
func (s *Store) checkLayout() error {
	v, closer, err := s.db.Get([]byte(metaFormat))
	switch {
	case err == nil:
		got := string(v)
		_ = closer.Close()
		if got != formatVersion {
			return fmt.Errorf("data dir %s holds layout version %q; this sluice reads only version %s (move the directory aside to start empty)",
				s.dir, got, formatVersion)
		}
		return nil
	case !errors.Is(err, pebble.ErrNotFound):
		return fmt.Errorf("read data dir %s: %w", s.dir, err)
	}
	it, err := s.db.NewIter(nil)
	if err != nil {
		return fmt.Errorf("read data dir %s: %w", s.dir, err)
	}
	holds := it.First()
	if err := it.Close(); err != nil {
		return fmt.Errorf("read data dir %s: %w", s.dir, err)
	}
	if !holds {
		names, err := s.fs.List(s.journal)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("read data dir %s: %w", s.dir, err)
		}
		holds = len(names) > 0
	}
	if holds {
		return fmt.Errorf("data dir %s holds data but no layout version; refusing to use it", s.dir)
	}
	// Flushed, as folds are: Pebble's log never holds the only copy.
	if err := guard(func() error {
		if err := s.db.Set([]byte(metaFormat), []byte(formatVersion), pebble.Sync); err != nil {
			return err
		}
		return s.db.Flush()
	}); err != nil {
		return fmt.Errorf("write data dir %s: %w", s.dir, err)
	}
	return nil
}
