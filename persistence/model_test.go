package persistence

import (
	"io"
	"log/slog"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/keyspace"
	"github.com/stretchr/testify/require"
)

const epoch = int64(1893456000000000000) // 2030-01-01

// sec is a second in Unix nanoseconds.
const sec = int64(time.Second)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// open opens dir with small memtables, closed when the test ends.
func open(t testing.TB, dir string, mode Mode) *Store {
	t.Helper()
	return openWith(t, Options{Dir: dir, Mode: mode})
}

// openWith opens opts (quiet, small memtables unless set), closed when the
// test ends.
func openWith(t testing.TB, opts Options) *Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet()
	}
	if opts.MemTableSize == 0 {
		opts.MemTableSize = 4 << 20
	}
	s, err := Open(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// id names one piece of state: a key's state of one kind.
type id struct {
	kind keyspace.Kind
	key  string
}

// state is a piece of state as the model holds it.
type state struct {
	expires int64
	value   string
}

// model is a small keyspace for tests: every kind of state of every key,
// behind one lock (its only shard), journalling each change to j as the
// real keyspace does, and a Restorer.
type model struct {
	mu sync.Mutex
	j  keyspace.Journal // nil: journals nothing
	m  map[id]state
}

func newModel(j keyspace.Journal) *model { return &model{j: j, m: map[id]state{}} }

// set gives key state of kind, journalled as Created when the key held
// none of that kind.
func (m *model) set(kind keyspace.Kind, key string, expires int64, value string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, had := m.m[id{kind, key}]
	m.m[id{kind, key}] = state{expires, value}
	if m.j != nil {
		m.j.Record(keyspace.Change{Op: keyspace.Set, Kind: kind, Created: !had, Key: []byte(key), Expires: expires, Value: []byte(value)})
	}
}

// tat sets key's GCRA state.
func (m *model) tat(key string, tat int64) { m.set(keyspace.GCRA, key, tat, "") }

// advance moves key's GCRA state a second on (from now if it has none): a
// THROTTLE that is never limited.
func (m *model) advance(key string, now int64) {
	m.mu.Lock()
	tat := max(m.m[id{keyspace.GCRA, key}].expires, now) + sec
	m.mu.Unlock()
	m.tat(key, tat)
}

// del removes key's state of kind, journalling it if there was one.
func (m *model) del(kind keyspace.Kind, key string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.m[id{kind, key}]; !ok {
		return false
	}
	delete(m.m, id{kind, key})
	if m.j != nil {
		m.j.Record(keyspace.Change{Op: keyspace.Delete, Kind: kind, Key: []byte(key)})
	}
	return true
}

// flush removes everything (FLUSHALL).
func (m *model) flush() {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.m)
	if m.j != nil {
		m.j.Record(keyspace.Change{Op: keyspace.Flush})
	}
}

// sweep deletes the state that expired by now, as the expiry sweep does.
func (m *model) sweep(now int64) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for k, st := range m.m {
		if st.expires <= now {
			delete(m.m, k)
			if m.j != nil {
				m.j.Record(keyspace.Change{Op: keyspace.Delete, Kind: k.kind, Key: []byte(k.key)})
			}
			n++
		}
	}
	return n
}

// Restore implements Restorer: it applies c without journalling it.
func (m *model) Restore(c keyspace.Change, now int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch c.Op {
	case keyspace.Set:
		m.m[id{c.Kind, string(c.Key)}] = state{c.Expires, string(c.Value)}
	case keyspace.Delete:
		delete(m.m, id{c.Kind, string(c.Key)})
	case keyspace.Flush:
		clear(m.m)
	}
	return nil
}

// snapshot is all the model holds.
func (m *model) snapshot() map[id]state {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.m)
}

// reload opens dir again and loads it into a fresh model at now.
func reload(t *testing.T, dir string, now int64) (map[id]state, Recovery) {
	t.Helper()
	return reloadWith(t, Options{Dir: dir, Mode: EverySec}, now)
}

// reloadWith opens opts again and loads it into a fresh model at now.
func reloadWith(t *testing.T, opts Options, now int64) (map[id]state, Recovery) {
	t.Helper()
	opts.Logger = quiet()
	s, err := Open(opts)
	require.NoError(t, err)
	m := newModel(nil)
	rec, err := s.Load(m, now)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	return m.snapshot(), rec
}

// gcraOnly lists the GCRA state of a snapshot by key.
func gcraOnly(st map[id]state) map[string]int64 {
	out := map[string]int64{}
	for k, v := range st {
		if k.kind == keyspace.GCRA {
			out[k.key] = v.expires
		}
	}
	return out
}
