package gcra

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/sluicehq/sluice/internal/vectors"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// manualClock is the fake clock the tests drive.
type manualClock struct{ ns int64 }

func (c *manualClock) Now() int64 { return c.ns }

func reply(r Result) []int64 {
	limited := int64(0)
	if r.Limited {
		limited = 1
	}
	return []int64{limited, r.Limit, r.Remaining, Seconds(r.RetryAfter), Seconds(r.ResetAfter)}
}

func loadVectors(t *testing.T) vectors.File {
	t.Helper()
	wd, err := os.Getwd()
	require.NoError(t, err)
	p, err := vectors.Path(wd)
	require.NoError(t, err)
	f, err := vectors.Load(p)
	require.NoError(t, err)
	require.Len(t, f.Rows, 89)
	return f
}

// TestVectors drives every reference row through a Table and a fake clock.
func TestVectors(t *testing.T) {
	f := loadVectors(t)
	clock := &manualClock{}
	tbl := NewTable(4, nil)
	for i, row := range f.Rows {
		clock.ns = f.EpochNs + row.TNs
		l, q, err := vectorLimit(row.Args[2:])
		var r Result
		if err == nil {
			r, err = tbl.Throttle([]byte(row.Args[1]), clock.Now(), l, q)
		}
		if row.Expect == nil {
			require.Error(t, err, "row %d %v", i, row.Args)
			continue
		}
		require.NoError(t, err, "row %d %v", i, row.Args)
		assert.Equal(t, row.Expect, reply(r), "row %d %s %v (%s)", i, row.Scenario, row.Args, row.Note)
	}
}

// vectorLimit reads a vector row's max_burst, count, period and optional
// quantity (the rows' integers are plain base-10; package commands parses
// THROTTLE's arguments, and tests every row end to end).
func vectorLimit(args []string) (Limit, int64, error) {
	if len(args) != 3 && len(args) != 4 {
		return Limit{}, 0, fmt.Errorf("%d arguments", len(args))
	}
	v := [4]int64{3: 1}
	for i, a := range args {
		n, err := strconv.ParseInt(a, 10, 64)
		if err != nil {
			return Limit{}, 0, err
		}
		v[i] = n
	}
	l, err := NewLimit(v[0], v[1], v[2])
	return l, v[3], err
}

// TestVectorsCopy keeps gcra/testdata's copy identical to shared/spec.
func TestVectorsCopy(t *testing.T) {
	shared := filepath.Join("..", "..", "shared", "spec", "throttle-vectors.json")
	want, err := os.ReadFile(shared)
	if err != nil {
		t.Skipf("shared/spec is not beside the repository (%v); nothing to compare", err)
	}
	got, err := os.ReadFile(filepath.Join("testdata", "throttle-vectors.json"))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want, got), "gcra/testdata/throttle-vectors.json differs from shared/spec: copy it again")
}

func TestSeconds(t *testing.T) {
	for _, c := range []struct{ ns, want int64 }{
		{-1, -1}, {0, 0}, {500_000, 0}, {999_999, 0}, {1_000_000, 1}, {999_500_000, 1},
		{1e9, 1}, {1e9 + 999_999, 1}, {9_001_000_000, 10}, {10e9, 10}, {math.MaxInt64, 9223372037},
	} {
		assert.Equal(t, c.want, Seconds(c.ns), "Seconds(%d)", c.ns)
	}
}

func TestNewLimitErrors(t *testing.T) {
	for _, c := range []struct {
		burst, count, period int64
		err                  error
	}{
		{-1, 1, 1, ErrNegativeBurst},
		{0, 0, 1, ErrCount},
		{0, -1, 1, ErrCount},
		{0, 1, 0, ErrPeriod},
		{0, 1, -1, ErrPeriod},
		{0, 1, math.MaxInt64, ErrOverflow},
		{0, 1, 120000000000, ErrOverflow},
		{math.MaxInt64, 1, 1, ErrOverflow},
		{math.MaxInt64 / 2, 1, 1, ErrOverflow},
		{0, 2_000_000_000, 1, ErrZeroRate},
		{0, math.MaxInt64, 9_000_000_000, ErrZeroRate},
	} {
		_, err := NewLimit(c.burst, c.count, c.period)
		assert.ErrorIs(t, err, c.err, "%d %d %d", c.burst, c.count, c.period)
	}
	l, err := NewLimit(15, 30, 60)
	require.NoError(t, err)
	assert.Equal(t, int64(16), l.Max())
	assert.Equal(t, int64(2e9), l.Interval())
	assert.Equal(t, int64(32e9), l.Tolerance())
}

// TestDecideOverflow: arithmetic that would wrap is an error, never a wrong answer.
func TestDecideOverflow(t *testing.T) {
	l, err := NewLimit(0, 1, 9_000_000_000) // T = 9e18 ns
	require.NoError(t, err)
	_, _, err = Decide(0, 1e18, l, 2)
	assert.ErrorIs(t, err, ErrOverflow)
	_, _, err = Decide(0, 1e18, l, math.MinInt64)
	assert.ErrorIs(t, err, ErrOverflow)
	_, _, err = Decide(0, 1e18, l, 1) // tat = now + 9e18 overflows
	assert.ErrorIs(t, err, ErrOverflow)
}

// randomLimit draws limits across several orders of magnitude.
func randomLimit(rng *rand.Rand) (Limit, int64, int64, int64) {
	burst := rng.Int64N(50)
	count := 1 + rng.Int64N(1000)
	period := 1 + rng.Int64N(3600)
	l, err := NewLimit(burst, count, period)
	if err != nil {
		panic(err)
	}
	return l, burst, count, period
}

// TestProperties checks invariants over random request sequences.
func TestProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 2000; iter++ {
		l, _, _, _ := randomLimit(rng)
		now := int64(1893456000000000000)
		tat := int64(0)
		for step := 0; step < 50; step++ {
			now += rng.Int64N(l.Tolerance()/4 + 1)
			q := rng.Int64N(l.Max()+3) - 1 // -1 .. limit+1
			// Peeking never changes state and agrees with the next request's view.
			peekTAT, peek, err := Decide(tat, now, l, 0)
			require.NoError(t, err)
			assert.Equal(t, max(tat, now), max(peekTAT, now), "peek changed state")
			newTAT, r, err := Decide(tat, now, l, q)
			require.NoError(t, err)
			assert.LessOrEqual(t, r.Remaining, l.Max(), "remaining above limit")
			assert.GreaterOrEqual(t, r.Remaining, int64(0))
			assert.LessOrEqual(t, newTAT-now, l.Tolerance(), "capacity below zero")
			assert.GreaterOrEqual(t, newTAT, now, "refund past full capacity")
			assert.Equal(t, peek.Remaining >= q || q <= 0, !r.Limited,
				"admits exactly when the quantity fits: remaining %d q %d", peek.Remaining, q)
			if r.Limited {
				assert.Equal(t, max(tat, now), newTAT, "a refusal changed state")
			}
			tat = newTAT
		}
	}
}

// TestTableModel compares the table with a plain map under random operations,
// growth, shrinking, sweeps and deletes.
func TestTableModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	tbl := NewTable(2, nil)
	model := map[string]int64{}
	l, err := NewLimit(3, 1, 1)
	require.NoError(t, err)
	now := int64(1e18)
	keys := make([][]byte, 3000)
	for i := range keys {
		keys[i] = []byte{byte(i), byte(i >> 8), 0, 0xff}[:1+i%4]
		keys[i] = append(keys[i], []byte(string(rune('a'+i%26)))...)
		keys[i] = append(keys[i], byte(i%7), byte(i/7))
	}
	for step := 0; step < 60000; step++ {
		k := keys[rng.IntN(len(keys))]
		switch op := rng.IntN(20); {
		case op < 14:
			tat := model[string(k)]
			wantTAT, want, err := Decide(tat, now, l, 1)
			require.NoError(t, err)
			got, err := tbl.Throttle(k, now, l, 1)
			require.NoError(t, err)
			require.Equal(t, want, got)
			if wantTAT > now {
				model[string(k)] = wantTAT
			} else {
				delete(model, string(k))
			}
		case op < 16:
			_, live := tbl.Get(k, now)
			require.Equal(t, model[string(k)] > now, live)
			require.Equal(t, model[string(k)] > now, tbl.Delete(k, now))
			delete(model, string(k))
		case op < 17:
			tbl.Sweep(now, 64)
		case op < 19:
			now += rng.Int64N(3e8)
		default:
			tat, ok := tbl.Get(k, now)
			if m := model[string(k)]; m > now {
				require.True(t, ok)
				require.Equal(t, m, tat)
			} else {
				require.False(t, ok)
			}
		}
	}
	// A full sweep far in the future reclaims everything; slots shrink back.
	tbl.Sweep(now+1e12, 1<<30)
	st := tbl.Stats()
	assert.Equal(t, 0, st.Keys)
	assert.LessOrEqual(t, st.Slots, 2*minSlots*2)
}

// TestSweepIncremental: each Sweep call looks at a bounded number of slots,
// and repeated calls reclaim every expired key while live ones stay.
func TestSweepIncremental(t *testing.T) {
	tbl := NewTable(1, nil)
	now := int64(1e18)
	short, _ := NewLimit(0, 1, 1)
	long, _ := NewLimit(0, 1, 3600)
	for i := 0; i < 10000; i++ {
		l := short
		if i%10 == 0 {
			l = long
		}
		_, err := tbl.Throttle([]byte{byte(i), byte(i >> 8), 'k'}, now, l, 1)
		require.NoError(t, err)
	}
	require.Equal(t, 10000, tbl.Len())
	later := now + 2e9
	removed := tbl.Sweep(later, 100)
	assert.LessOrEqual(t, removed, 100, "one call must stay within its budget")
	for calls := 0; calls < 1000 && tbl.Len() > 1000; calls++ {
		tbl.Sweep(later, 100)
	}
	assert.Equal(t, 1000, tbl.Len())
	for i := 0; i < 10000; i += 10 {
		_, ok := tbl.Get([]byte{byte(i), byte(i >> 8), 'k'}, later)
		require.True(t, ok, "live key %d was swept", i)
	}
	st := tbl.Stats()
	assert.Equal(t, uint64(9000), st.Reclaimed)
	assert.LessOrEqual(t, st.Slots, 8*1000, "slots shrink as keys go (17434 at the peak)")
}

type recordingJournal struct{ changes []string }

func (j *recordingJournal) Record(key []byte, tat int64) {
	j.changes = append(j.changes, string(key)+":"+map[bool]string{true: "del", false: "set"}[tat == 0])
}

func (j *recordingJournal) RecordCreate(key []byte, tat int64) {
	j.changes = append(j.changes, string(key)+":new")
}

func (j *recordingJournal) RecordForget(key []byte) {
	j.changes = append(j.changes, string(key)+":forget")
}

func (j *recordingJournal) RecordFlush() { j.changes = append(j.changes, "flush") }

// journalled returns a one-shard table journalling to a recordingJournal,
// and a limit of one request a second with no burst.
func journalled() (*recordingJournal, *Table, Limit) {
	j := &recordingJournal{}
	l, _ := NewLimit(1, 1, 1)
	return j, NewTable(1, j), l
}

func TestJournal(t *testing.T) {
	j, tbl, l := journalled()
	now := int64(1e18)
	_, _ = tbl.Throttle([]byte("a"), now, l, 1)  // new
	_, _ = tbl.Throttle([]byte("a"), now, l, 0)  // peek: no change
	_, _ = tbl.Throttle([]byte("a"), now, l, 5)  // refused: no change
	_, _ = tbl.Throttle([]byte("a"), now, l, -5) // refund to full: forget (never stored)
	_, _ = tbl.Throttle([]byte("b"), now, l, 1)  // new
	tbl.Delete([]byte("b"), now)                 // forget
	_, _ = tbl.Throttle([]byte("c"), now, l, 1)  // new
	_, _ = tbl.Throttle([]byte("c"), now, l, 1)  // set
	_, _ = tbl.Throttle([]byte("d"), now, l, 1)  // new
	_, _ = tbl.Throttle([]byte("e"), now, l, 1)  // new
	require.NoError(t, tbl.Set([]byte("f"), now+1e9, now))
	var reported []string
	tbl.Dirty(func(key []byte, _ int64) { reported = append(reported, string(key)) })
	assert.ElementsMatch(t, []string{"c", "d", "e"}, reported)
	_, ok := tbl.Current([]byte("d"))
	assert.True(t, ok)
	tbl.Sweep(now+5e9, 100) // c, d, e, f: del (reported, or stored by Set)
	tbl.Flush()             // flush
	require.Len(t, j.changes, 13)
	assert.Equal(t, []string{"a:new", "a:forget", "b:new", "b:forget", "c:new", "c:set",
		"d:new", "e:new"}, j.changes[:8])
	assert.ElementsMatch(t, []string{"c:del", "d:del", "e:del", "f:del"}, j.changes[8:12], "swept in slot order")
	assert.Equal(t, "flush", j.changes[12])
}

// TestCurrentMarksAKeyStored: a key a journal read with Current is removed
// with Record(key, 0), one it never saw with RecordForget.
func TestCurrentMarksAKeyStored(t *testing.T) {
	j, tbl, l := journalled()
	now := int64(1e18)
	_, _ = tbl.Throttle([]byte("seen"), now, l, 1)
	_, _ = tbl.Throttle([]byte("unseen"), now, l, 1)
	tat, ok := tbl.Current([]byte("seen"))
	assert.True(t, ok)
	assert.Equal(t, now+1e9, tat)
	_, ok = tbl.Current([]byte("absent"))
	assert.False(t, ok)
	tbl.Delete([]byte("seen"), now)
	tbl.Delete([]byte("unseen"), now)
	assert.Equal(t, []string{"seen:new", "unseen:new", "seen:del", "unseen:forget"}, j.changes)
}

// TestMultiJournalsCreations: THROTTLE.MULTI journals a key it creates as a
// creation, so its removal before any fold saw it is a RecordForget.
func TestMultiJournalsCreations(t *testing.T) {
	j, tbl, l := journalled()
	now := int64(1e18)
	_, _ = tbl.Throttle([]byte("old"), now, l, 1)
	checks := []Check{{Key: []byte("old"), Limit: l}, {Key: []byte("new"), Limit: l}}
	limited, err := tbl.ThrottleMulti(checks, now+1e9, 1, make([]Result, 2))
	require.NoError(t, err)
	require.False(t, limited)
	tbl.Delete([]byte("new"), now)
	assert.Equal(t, []string{"old:new", "new:new", "old:set", "new:forget"}, j.changes)
}
