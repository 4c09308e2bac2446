package persistence

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/record"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testRecords are n records of varied sizes, some spanning several blocks,
// each of them distinct.
func testRecords(n int, seed uint64) [][]byte {
	rng := rand.New(rand.NewPCG(seed, seed))
	out := make([][]byte, n)
	for i := range out {
		size := 1 + rng.IntN(200)
		if i%10 == 3 {
			size = 2*logBlockSize + rng.IntN(logBlockSize)
		}
		b := make([]byte, size)
		for j := range b {
			b[j] = byte(rng.IntN(255) + 1)
		}
		copy(b, fmt.Sprintf("#%d#", i))
		out[i] = b
	}
	return out
}

// writeLog writes recs in Pebble's legacy record format (the journal's and
// the MANIFEST's) and returns the file and each record's offset.
func writeLog(t *testing.T, recs [][]byte) ([]byte, []int64) {
	t.Helper()
	var buf bytes.Buffer
	w := record.NewWriter(&buf)
	offs := make([]int64, len(recs))
	for i, r := range recs {
		_, err := w.WriteRecord(r)
		require.NoError(t, err)
		offs[i], err = w.LastRecordOffset()
		require.NoError(t, err)
	}
	require.NoError(t, w.Close())
	return buf.Bytes(), offs
}

// lockedBuffer is a bytes.Buffer Pebble's log writer can flush into from
// its goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// writeWAL writes recs as Pebble's write-ahead log number num writes them
// (the recyclable format).
func writeWAL(t *testing.T, num uint64, recs [][]byte) []byte {
	t.Helper()
	var buf lockedBuffer
	w := record.NewLogWriter(&buf, pebble.FileNum(num), record.LogWriterConfig{QueueSemChan: make(chan struct{}, 1024)})
	for _, r := range recs {
		_, err := w.WriteRecord(r)
		require.NoError(t, err)
	}
	require.NoError(t, w.Close())
	return buf.b.Bytes()
}

// scanBytes scans b and returns the records read.
func scanBytes(t *testing.T, b []byte, logNum uint32, recyclable bool) ([][]byte, logScan) {
	t.Helper()
	var got [][]byte
	sc, err := scanLog(bytes.NewReader(b), logNum, recyclable, func(rec []byte) error {
		got = append(got, bytes.Clone(rec))
		return nil
	})
	require.NoError(t, err)
	return got, sc
}

// pebbleReads is what Pebble's own reader returns from b before it stops.
func pebbleReads(b []byte, logNum uint64) [][]byte {
	r := record.NewReader(bytes.NewReader(b), pebble.FileNum(logNum))
	var out [][]byte
	for {
		rr, err := r.Next()
		if err != nil {
			return out
		}
		rec, err := io.ReadAll(rr)
		if err != nil {
			return out
		}
		out = append(out, rec)
	}
}

func without(recs [][]byte, drop ...int) [][]byte {
	var out [][]byte
	for i, r := range recs {
		if !contains(drop, i) {
			out = append(out, r)
		}
	}
	return out
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestScanLogReadsWhatPebbleWrites: undamaged files, as Pebble's writers
// write them (the legacy and the recyclable format, followed by the zeros
// of preallocation or not), read whole and agree with Pebble's reader.
func TestScanLogReadsWhatPebbleWrites(t *testing.T) {
	recs := testRecords(300, 1)
	legacy, _ := writeLog(t, recs)
	wal := writeWAL(t, 7, recs)
	for _, c := range []struct {
		name       string
		file       []byte
		num        uint32
		recyclable bool
	}{
		{"journal", legacy, 0, false},
		{"journal, preallocated", append(bytes.Clone(legacy), make([]byte, 5*logBlockSize+123)...), 0, false},
		{"wal", wal, 7, true},
		{"wal, preallocated", append(bytes.Clone(wal), make([]byte, 3*logBlockSize)...), 7, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, sc := scanBytes(t, c.file, c.num, c.recyclable)
			assert.Equal(t, recs, got)
			assert.Equal(t, pebbleReads(c.file, uint64(c.num)), got)
			assert.False(t, sc.damaged(), "%+v", sc)
			assert.Equal(t, len(recs), sc.records)
		})
	}
	t.Run("empty", func(t *testing.T) {
		got, sc := scanBytes(t, nil, 0, false)
		assert.Empty(t, got)
		assert.False(t, sc.damaged())
	})
}

// TestScanLogReadsPastDamage: one bad byte costs the record holding it,
// not the records after it (Pebble's reader stops there); what follows the
// damage tells a torn tail from corruption.
func TestScanLogReadsPastDamage(t *testing.T) {
	recs := testRecords(300, 2)
	file, offs := writeLog(t, recs)
	small := 150 // a record of one chunk
	require.Less(t, len(recs[small]), 200)
	big := 153 // a record spanning blocks
	require.Greater(t, len(recs[big]), 2*logBlockSize)

	t.Run("payload of a small record", func(t *testing.T) {
		b := bytes.Clone(file)
		b[offs[small]+legacyHeaderSize+2] ^= 1
		got, sc := scanBytes(t, b, 0, false)
		assert.Equal(t, without(recs, small), got)
		assert.Equal(t, offs[small], sc.damageAt)
		assert.Equal(t, 1, sc.lost)
		assert.False(t, sc.uncounted)
		assert.Equal(t, len(recs)-small-1, sc.after)
		assert.False(t, sc.tornTail())
		assert.Len(t, pebbleReads(b, 0), small, "Pebble's reader stops at the damage")
	})
	t.Run("middle piece of a record spanning blocks", func(t *testing.T) {
		b := bytes.Clone(file)
		second := (offs[big]/logBlockSize+1)*logBlockSize + legacyHeaderSize + 100
		b[second] ^= 1
		got, sc := scanBytes(t, b, 0, false)
		assert.Equal(t, without(recs, big), got)
		assert.Equal(t, offs[big], sc.damageAt)
		assert.Equal(t, 1, sc.lost)
		assert.Equal(t, len(recs)-big-1, sc.after)
	})
	for _, flip := range []byte{0x80, 0x04} {
		t.Run(fmt.Sprintf("a length in a header ^%#x", flip), func(t *testing.T) {
			b := bytes.Clone(file)
			b[offs[small]+4] ^= flip // the chunk runs past its block, or a little too far
			got, sc := scanBytes(t, b, 0, false)
			assert.Equal(t, without(recs, small), got, "reading resumes at the next chunk that passes its checksum")
			assert.True(t, sc.uncounted, "the length cannot say where the damage ends")
			assert.Equal(t, "at least 1", sc.lostText())
			assert.Equal(t, offs[small], sc.damageAt)
			assert.Equal(t, len(recs)-small-1, sc.after)
			assert.False(t, sc.tornTail())
		})
	}
	t.Run("a page of zeros", func(t *testing.T) {
		b := bytes.Clone(file)
		page := offs[small] &^ 4095
		copy(b[page:page+4096], make([]byte, 4096))
		_, sc := scanBytes(t, b, 0, false)
		assert.LessOrEqual(t, sc.damageAt, offs[small])
		assert.Positive(t, sc.after)
		assert.False(t, sc.tornTail())
	})
	t.Run("truncated inside a record: a torn tail", func(t *testing.T) {
		cut := offs[small] + 3
		got, sc := scanBytes(t, file[:cut], 0, false)
		assert.Equal(t, recs[:small], got)
		assert.Equal(t, offs[small], sc.damageAt)
		assert.True(t, sc.tornTail())
		assert.True(t, sc.cut)
	})
	t.Run("the last record torn, zeros after", func(t *testing.T) {
		last := len(recs) - 1
		b := append(bytes.Clone(file), make([]byte, logBlockSize)...)
		b[offs[last]+legacyHeaderSize] ^= 1
		got, sc := scanBytes(t, b, 0, false)
		assert.Equal(t, recs[:last], got)
		assert.True(t, sc.tornTail())
		assert.False(t, sc.cut, "torn in place, the zeros of the preallocation after it")
		assert.Equal(t, 1, sc.lost)
	})
	t.Run("garbage in the zeros after the end", func(t *testing.T) {
		b := append(bytes.Clone(file), make([]byte, 2*logBlockSize)...)
		b[len(b)-logBlockSize/2] = 0x5a
		got, sc := scanBytes(t, b, 0, false)
		assert.Equal(t, recs, got)
		assert.True(t, sc.tornTail(), "unreadable bytes, nothing readable after them")
	})
}

// TestScanLogRecycledWAL: a write-ahead log written over a recycled file
// ends at the first chunk of the file's previous life, as for Pebble, with
// no corruption reported; damage within it is found as in the journal.
func TestScanLogRecycledWAL(t *testing.T) {
	old := writeWAL(t, 3, testRecords(400, 3))
	recs := testRecords(100, 4)
	current := writeWAL(t, 9, recs)
	require.Greater(t, len(old), len(current))
	file := bytes.Clone(old)
	copy(file, current)
	got, sc := scanBytes(t, file, 9, true)
	assert.Equal(t, recs, got)
	assert.Equal(t, pebbleReads(file, 9), got)
	assert.False(t, sc.damaged() && !sc.tornTail(), "no corruption: %+v", sc)

	file[len(current)/2] ^= 1
	got, sc = scanBytes(t, file, 9, true)
	assert.True(t, sc.damaged())
	assert.Positive(t, sc.after)
	assert.Equal(t, recs[len(recs)-1], got[len(got)-1])
}

func TestScanLogReportsReadErrors(t *testing.T) {
	file, _ := writeLog(t, testRecords(10, 5))
	boom := errors.New("boom")
	_, err := scanLog(io.MultiReader(bytes.NewReader(file[:100]), errReader{boom}), 0, false, func([]byte) error { return nil })
	assert.ErrorIs(t, err, boom)
	_, err = scanLog(bytes.NewReader(file), 0, false, func([]byte) error { return boom })
	assert.ErrorIs(t, err, boom)
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// FuzzScanLog damages a journal of known records at the places the input
// names and scans it: scanLog never fails or panics, hands on only records
// that were written, in their order, and reads every one when nothing
// changed.
func FuzzScanLog(f *testing.F) {
	recs := testRecords(40, 9)
	var buf bytes.Buffer
	w := record.NewWriter(&buf)
	for _, r := range recs {
		_, err := w.WriteRecord(r)
		require.NoError(f, err)
	}
	require.NoError(f, w.Close())
	file := append(buf.Bytes(), make([]byte, logBlockSize/2)...) // and preallocated zeros
	f.Add([]byte{})
	f.Add([]byte{0, 100, 1})
	f.Add([]byte{0, 4, 0x80, 1, 0, 0xff})
	f.Add([]byte{0xff, 0xff, 0, 0, 7, 1, 0x20, 0, 3})
	f.Fuzz(func(t *testing.T, damage []byte) {
		b := bytes.Clone(file)
		changed := false
		for i := 0; i+2 < len(damage); i += 3 {
			pos := (int(damage[i])<<8 | int(damage[i+1])) * 7 % len(b)
			b[pos] ^= damage[i+2]
			changed = changed || damage[i+2] != 0
		}
		if len(damage) > 0 && damage[0]%5 == 0 {
			b = b[:len(b)*int(damage[len(damage)-1])/256] // cut short too
		}
		var got [][]byte
		sc, err := scanLog(bytes.NewReader(b), 0, false, func(rec []byte) error {
			got = append(got, bytes.Clone(rec))
			return nil
		})
		require.NoError(t, err)
		next := 0
		for _, g := range got {
			for next < len(recs) && !bytes.Equal(recs[next], g) {
				next++
			}
			require.Less(t, next, len(recs), "a record that was never written, or out of order")
			next++
		}
		if bytes.Equal(b, file) {
			assert.Equal(t, recs, got)
			assert.False(t, sc.damaged())
		}
		if len(got) < len(recs) {
			assert.True(t, sc.damaged() || !changed || len(b) < len(file), "records missing without damage reported")
		}
	})
}

// BenchmarkScanSegment reads a full default-size journal segment (16 MiB
// of records of about 2 KiB, then the preallocation's zeros) with scanLog,
// and with Pebble's record.Reader, which the replay used before and which
// stops at the first zeroed chunk.
//
//	go test -run '^$' -bench ScanSegment ./persistence/
func BenchmarkScanSegment(b *testing.B) {
	rec := bytes.Repeat([]byte("change:"), 300)
	var buf bytes.Buffer
	w := record.NewWriter(&buf)
	for buf.Len() < DefaultFoldBytes {
		_, err := w.WriteRecord(rec)
		require.NoError(b, err)
	}
	require.NoError(b, w.Close())
	file := append(buf.Bytes(), make([]byte, maxBatchBytes)...)
	b.Run("scanLog", func(b *testing.B) {
		b.SetBytes(int64(len(file)))
		b.ReportAllocs()
		for b.Loop() {
			_, err := scanLog(bytes.NewReader(file), 0, false, func([]byte) error { return nil })
			require.NoError(b, err)
		}
	})
	b.Run("pebble", func(b *testing.B) {
		b.SetBytes(int64(len(file)))
		b.ReportAllocs()
		var out bytes.Buffer
		for b.Loop() {
			r := record.NewReader(bytes.NewReader(file), 0)
			for {
				rr, err := r.Next()
				if err != nil {
					break
				}
				out.Reset()
				_, _ = out.ReadFrom(rr)
			}
		}
	})
}
