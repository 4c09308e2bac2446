package persistence

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble"
	"github.com/sluicehq/sluice/keyspace"
	"github.com/stretchr/testify/require"
)

// The corruption matrix: a data directory written by a real Store, each
// kind of file in it damaged in each way, and what Open and Load make of
// it.

// corruptedDir is a data directory as a crash left it, with every kind of
// file the matrix damages, and the state acknowledged before the crash.
type corruptedDir struct {
	dir   string
	acked map[id]state
}

// writeCrashedDir runs a real Store in Always mode: a first part of the
// state is folded and flushed to an sstable, a second folded into Pebble's
// log only, a third fills a journal segment whose fold the test holds
// back, and a fourth waits in the segment after it. The directory is
// copied while the fold is held, as a kill -9 would leave it.
func writeCrashedDir(t *testing.T) corruptedDir {
	t.Helper()
	dir := t.TempDir()
	hold := make(chan struct{})
	held := make(chan struct{})
	folds := 0 // the folder's: the first two folds go through
	s := openWith(t, Options{Dir: dir, Mode: Always, FoldBytes: 64 << 10, foldGate: func() {
		if folds++; folds > 2 {
			close(held)
			<-hold
		}
	}})
	t.Cleanup(func() { close(hold) })
	m := newModel(s)
	write := func(prefix string, n int) {
		for i := range n {
			key := fmt.Sprintf("%s%d", prefix, i)
			m.tat(key, epoch+int64(i+1)*sec)
			if i%5 == 0 {
				m.set(keyspace.Window, key, epoch+int64(i+1)*sec, "w-"+key)
			}
			if i%7 == 0 {
				m.set(keyspace.Lease, key, epoch+int64(i+1)*sec, "l-"+key)
			}
			if i%20 == 19 {
				require.NoError(t, s.Wait()) // a record of about 20 changes
			}
		}
		require.NoError(t, s.Wait())
	}
	write("sst:", 200)
	require.NoError(t, s.foldNow())
	require.NoError(t, s.db.Flush())
	write("wal:", 200)
	m.del(keyspace.GCRA, "sst:3")
	m.advance("sst:4", epoch)
	require.NoError(t, s.Wait())
	require.NoError(t, s.foldNow())
	write("older:", 3000) // more than a segment: its fold is held
	<-held
	write("newest:", 50)
	require.GreaterOrEqual(t, len(journalSegments(t, s)), 2)
	return corruptedDir{dir: copyDir(t, dir), acked: m.snapshot()}
}

// A damage is one way a file goes bad.
type damage string

const (
	flipByte     damage = "flip a byte"
	truncateHalf damage = "truncate to half"
	removeFile   damage = "delete"
)

// contentLen is how much of b is written: up to its last non-zero byte
// (journal segments and Pebble's log are preallocated with zeros).
func contentLen(b []byte) int {
	return len(bytes.TrimRight(b, "\x00"))
}

// damageFile damages the file at path: flips every bit of the byte in the
// middle of its content, truncates it to half its content, or removes it.
// It reports false when there was nothing to damage (an empty file).
func damageFile(t *testing.T, path string, d damage) bool {
	t.Helper()
	if d == removeFile {
		require.NoError(t, os.Remove(path))
		return true
	}
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	n := contentLen(b)
	if n == 0 {
		return false
	}
	if d == truncateHalf {
		require.NoError(t, os.Truncate(path, int64(n/2)))
		return true
	}
	b[n/2] ^= 0xff
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return true
}

// damageStamp damages the layout version in Pebble's key space.
func damageStamp(t *testing.T, dir string, d damage) bool {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{Logger: pebbleLogger{quiet()}})
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()
	v, closer, err := db.Get([]byte(metaFormat))
	require.NoError(t, err)
	stamp := slices.Clone(v)
	require.NoError(t, closer.Close())
	switch d {
	case removeFile:
		require.NoError(t, db.Delete([]byte(metaFormat), pebble.Sync))
	case truncateHalf:
		require.NoError(t, db.Set([]byte(metaFormat), stamp[:len(stamp)/2], pebble.Sync))
	case flipByte:
		stamp[len(stamp)/2] ^= 0xff
		require.NoError(t, db.Set([]byte(metaFormat), stamp, pebble.Sync))
	}
	return true
}

// fileMatching is the file in dir (relative to it) whose name match
// picks; last picks the last in name order (the newest), else the first.
func fileMatching(t *testing.T, dir string, match func(name string) bool, last bool) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		if !e.IsDir() && match(e.Name()) {
			names = append(names, e.Name())
		}
	}
	require.NotEmpty(t, names, "no such file in %s", dir)
	if last {
		return filepath.Join(dir, names[len(names)-1])
	}
	return filepath.Join(dir, names[0])
}

// A damagedFile is one kind of file of the matrix.
type damagedFile struct {
	kind string
	// damage damages that file in dir and returns its name as an error
	// should name it, and whether there was anything to damage.
	damage func(t *testing.T, dir string, d damage) (name string, did bool)
}

func fileKind(kind string, pick func(t *testing.T, dir string) string) damagedFile {
	return damagedFile{kind, func(t *testing.T, dir string, d damage) (string, bool) {
		p := pick(t, dir)
		return filepath.Base(p), damageFile(t, p, d)
	}}
}

// markerKind is one of Pebble's marker files, empty files whose names
// carry what they mark: an error can name the kind, not the name.
func markerKind(kind string) damagedFile {
	pick := inDir(".", prefix(kind+"."), true)
	return damagedFile{kind, func(t *testing.T, dir string, d damage) (string, bool) {
		return kind + ".", damageFile(t, pick(t, dir), d)
	}}
}

func inDir(sub string, match func(string) bool, last bool) func(t *testing.T, dir string) string {
	return func(t *testing.T, dir string) string { return fileMatching(t, filepath.Join(dir, sub), match, last) }
}

func suffix(s string) func(string) bool {
	return func(n string) bool { return strings.HasSuffix(n, s) }
}
func prefix(s string) func(string) bool {
	return func(n string) bool { return strings.HasPrefix(n, s) }
}

var matrixFiles = []damagedFile{
	fileKind("journal segment (newest)", inDir(journalDir, suffix(segmentExt), true)),
	fileKind("journal segment (older)", inDir(journalDir, suffix(segmentExt), false)),
	fileKind("Pebble WAL (newest)", inDir(".", suffix(".log"), true)),
	fileKind("Pebble MANIFEST", inDir(".", prefix("MANIFEST-"), true)),
	markerKind("marker.manifest"),
	markerKind("marker.format-version"),
	fileKind("sstable", inDir(".", suffix(".sst"), true)),
	fileKind("OPTIONS", inDir(".", prefix("OPTIONS-"), true)),
	{"layout stamp (m/format)", func(t *testing.T, dir string, d damage) (string, bool) {
		return "layout version", damageStamp(t, dir, d)
	}},
}

// contents maps the hash of every file under dir to its path.
func contents(t *testing.T, dir string) map[[32]byte]string {
	t.Helper()
	out := map[[32]byte]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[sha256.Sum256(b)] = p
		return nil
	}))
	return out
}

// recoverDir opens and loads dir as the server does, turning a panic into
// an error.
func recoverDir(dir string, opts Options) (got map[id]state, logs string, err error) {
	var buf bytes.Buffer
	var mu sync.Mutex
	opts.Dir = dir
	opts.Logger = slog.New(slog.NewTextHandler(lockedWriter{&buf, &mu}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("PANIC: %v", r)
		}
		mu.Lock()
		logs = buf.String()
		mu.Unlock()
	}()
	s, err := Open(opts)
	if err != nil {
		return nil, "", err
	}
	m := newModel(nil)
	_, err = s.Load(m, epoch)
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	return m.snapshot(), "", err
}

// An expected outcome of the matrix.
type expect string

const (
	refuses   expect = "refuses"   // Open fails, naming the damaged file
	exact     expect = "exact"     // recovers exactly the acknowledged state
	salvages  expect = "salvages"  // loses only the damaged record's changes, logged at error level
	losesTail expect = "loses"     // loses what the damage hid, logged
	untouched expect = "untouched" // an empty file: nothing to damage
)

// maxSalvageLoss bounds the states one damaged record of the crashed
// directory holds (about 20 changes).
const maxSalvageLoss = 40

// The three ways of starting the matrix tries.
var matrixConfigs = []struct {
	name string
	opts Options
}{
	{"default", Options{}},
	{"accept-corruption yes", Options{AcceptCorruption: true}},
	{"load-truncated no", Options{RefuseTruncated: true}},
}

// matrixWant is what each file and damage must come to, per config. keep:
// the damaged file's bytes must outlive the attempt (under its name or
// kept aside) — every file that holds acknowledged state.
var matrixWant = []struct {
	file   string
	damage damage
	want   [3]expect
	keep   bool
}{
	{"journal segment (newest)", flipByte, [3]expect{refuses, salvages, refuses}, true},
	{"journal segment (newest)", truncateHalf, [3]expect{losesTail, losesTail, refuses}, true},
	{"journal segment (newest)", removeFile, [3]expect{refuses, losesTail, refuses}, false},
	{"journal segment (older)", flipByte, [3]expect{refuses, salvages, refuses}, true},
	{"journal segment (older)", truncateHalf, [3]expect{refuses, losesTail, refuses}, true},
	{"journal segment (older)", removeFile, [3]expect{refuses, losesTail, refuses}, false},
	// The folds flush to sstables before their segments go: the log never
	// holds the only copy of a change.
	{"Pebble WAL (newest)", flipByte, [3]expect{exact, exact, exact}, false},
	{"Pebble WAL (newest)", truncateHalf, [3]expect{exact, exact, exact}, false},
	{"Pebble WAL (newest)", removeFile, [3]expect{exact, exact, exact}, false},
	{"Pebble MANIFEST", flipByte, [3]expect{refuses, refuses, refuses}, true},
	{"Pebble MANIFEST", truncateHalf, [3]expect{refuses, refuses, refuses}, true},
	{"Pebble MANIFEST", removeFile, [3]expect{refuses, refuses, refuses}, false},
	{"marker.manifest", flipByte, [3]expect{untouched, untouched, untouched}, false},
	{"marker.manifest", truncateHalf, [3]expect{untouched, untouched, untouched}, false},
	{"marker.manifest", removeFile, [3]expect{refuses, refuses, refuses}, false},
	{"marker.format-version", flipByte, [3]expect{untouched, untouched, untouched}, false},
	{"marker.format-version", truncateHalf, [3]expect{untouched, untouched, untouched}, false},
	{"marker.format-version", removeFile, [3]expect{refuses, refuses, refuses}, false},
	{"sstable", flipByte, [3]expect{refuses, refuses, refuses}, true},
	{"sstable", truncateHalf, [3]expect{refuses, refuses, refuses}, true},
	{"sstable", removeFile, [3]expect{refuses, refuses, refuses}, false},
	// OPTIONS holds settings, no state: Pebble writes a new one.
	{"OPTIONS", flipByte, [3]expect{exact, exact, exact}, false},
	{"OPTIONS", truncateHalf, [3]expect{exact, exact, exact}, false},
	{"OPTIONS", removeFile, [3]expect{exact, exact, exact}, false},
	{"layout stamp (m/format)", flipByte, [3]expect{refuses, refuses, refuses}, false},
	{"layout stamp (m/format)", truncateHalf, [3]expect{refuses, refuses, refuses}, false},
	{"layout stamp (m/format)", removeFile, [3]expect{refuses, refuses, refuses}, false},
}

// TestCorruptionMatrix damages each kind of file of a data directory a
// real Store left at a crash, in each way, and starts on it with each
// configuration. Every cell must come to its expected outcome; none may
// panic, lose acknowledged state without saying so, or remove the bytes
// it could not read. The matrix is printed in the test log.
func TestCorruptionMatrix(t *testing.T) {
	base := writeCrashedDir(t)
	kinds := map[string]damagedFile{}
	for _, f := range matrixFiles {
		kinds[f.kind] = f
	}
	var table strings.Builder
	fmt.Fprintf(&table, "\n%d acknowledged states; outcome per start: %s | %s | %s\n", len(base.acked),
		matrixConfigs[0].name, matrixConfigs[1].name, matrixConfigs[2].name)
	var details strings.Builder
	for _, cell := range matrixWant {
		var cols [3]string
		for ci, cfg := range matrixConfigs {
			dir := copyDir(t, base.dir)
			name, did := kinds[cell.file].damage(t, dir, cell.damage)
			if !did {
				require.Equal(t, untouched, cell.want[ci], "%s / %s: nothing to damage", cell.file, cell.damage)
				cols[ci] = "nothing to damage (empty)"
				continue
			}
			before := contents(t, dir)
			got, logs, err := recoverDir(dir, cfg.opts)
			lost := 0
			for k, v := range base.acked {
				if got[k] != v {
					lost++
				}
			}
			for k := range got {
				_, acked := base.acked[k]
				require.True(t, acked, "%s / %s / %s: recovered %v, never acknowledged", cell.file, cell.damage, cfg.name, k)
			}
			where := fmt.Sprintf("%s / %s / %s", cell.file, cell.damage, cfg.name)
			if err != nil {
				require.NotContains(t, err.Error(), "PANIC", where)
			}
			switch cell.want[ci] {
			case refuses:
				require.Error(t, err, where)
				// Pebble names an sstable by its number.
				require.Contains(t, err.Error(), strings.TrimSuffix(name, ".sst"), "%s: the error names the file", where)
				cols[ci] = "refuses"
				fmt.Fprintf(&details, "%s: %v\n", where, err)
			case exact:
				require.NoError(t, err, where)
				require.Zero(t, lost, where)
				cols[ci] = "recovers exactly"
			case salvages, losesTail:
				require.NoError(t, err, where)
				require.Positive(t, lost, where)
				require.Contains(t, logs, name, "%s: the loss is logged, naming the file", where)
				if cell.want[ci] == salvages {
					require.LessOrEqual(t, lost, maxSalvageLoss, where)
					require.Contains(t, logs, "level=ERROR", where)
					cols[ci] = fmt.Sprintf("recovers all but the damaged record (%d lost, logged)", lost)
				} else if cell.damage == removeFile {
					cols[ci] = fmt.Sprintf("starts without the file's changes (%d lost, logged)", lost)
				} else {
					cols[ci] = fmt.Sprintf("recovers what precedes the damage (%d lost, logged)", lost)
				}
				level := "ERROR"
				if !strings.Contains(logs, "level=ERROR") {
					level = "WARN"
				}
				fmt.Fprintf(&details, "%s: %s %s\n", where, level, firstLine(logs))
			}
			if cell.keep {
				after := contents(t, dir)
				for h, p := range before {
					if filepath.Base(p) == name {
						_, kept := after[h]
						require.True(t, kept, "%s: the damaged %s was removed", where, name)
					}
				}
			}
		}
		fmt.Fprintf(&table, "%-24s %-16s %s | %s | %s\n", cell.file, cell.damage, cols[0], cols[1], cols[2])
	}
	t.Log(table.String() + "\n" + details.String())
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
