package replication

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/sluicehq/sluice/keyspace"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func change(i int) keyspace.Change {
	return keyspace.Change{Op: keyspace.Set, Kind: keyspace.GCRA, Key: []byte(fmt.Sprintf("key:%d", i)), Expires: int64(i)}
}

// readAll reads everything r can read now.
func readAll(t *testing.T, r *Reader) []byte {
	t.Helper()
	var out []byte
	buf := make([]byte, 1000) // smaller than a block: reads cross blocks
	for {
		n, err := r.Read(buf)
		require.NoError(t, err)
		if n == 0 {
			return out
		}
		out = append(out, buf[:n]...)
	}
}

// TestBacklogReadsTheStream: a reader gets exactly the encoded records,
// across blocks, and offsets count their bytes.
// TestBacklogIdleUntilAReplica: a backlog records nothing until the first
// replica connects (or the node follows a primary), so a server that never
// replicates pays nothing per change.
func TestBacklogIdleUntilAReplica(t *testing.T) {
	b := NewBacklog(1<<20, 1<<20)
	b.Record(keyspace.Change{Op: keyspace.Set, Kind: keyspace.GCRA, Key: []byte("k"), Expires: 1})
	assert.Zero(t, b.Offset())
	b.activate()
	b.Record(keyspace.Change{Op: keyspace.Set, Kind: keyspace.GCRA, Key: []byte("k"), Expires: 1})
	assert.Positive(t, b.Offset())
}

func TestBacklogReadsTheStream(t *testing.T) {
	b := NewBacklog(1<<20, 1<<20)
	b.activate() // as the first replica does
	r, from, ok := b.newReader(-1)
	require.True(t, ok)
	assert.Zero(t, from)
	var want []byte
	for i := range 5000 {
		b.Record(change(i))
		want = appendChange(want, change(i))
	}
	assert.Equal(t, int64(len(want)), b.Offset())
	assert.Greater(t, len(want), 4*blockSize)
	got := readAll(t, r)
	assert.True(t, bytes.Equal(want, got))
	select {
	case <-r.Wake():
	default:
		t.Fatal("appends wake the reader")
	}
	b.setMuted(true)
	b.Record(change(1))
	assert.Equal(t, int64(len(want)), b.Offset(), "a muted backlog ignores the keyspace")
	b.appendRaw([]byte("xyz"))
	assert.Equal(t, "xyz", string(readAll(t, r)), "and mirrors its primary's bytes")
}

// TestBacklogKeepsSizeAndResumes: the backlog keeps at least its size;
// a reader can start anywhere within it and nowhere before it.
func TestBacklogKeepsSizeAndResumes(t *testing.T) {
	const size = 3 * blockSize
	b := NewBacklog(size, size)
	b.activate() // as the first replica does
	var stream []byte
	for i := range 20000 {
		b.Record(change(i))
		stream = appendChange(stream, change(i))
	}
	st := b.Status()
	assert.GreaterOrEqual(t, st.End-st.First, int64(size))
	assert.LessOrEqual(t, st.End-st.First, int64(size+blockSize))
	assert.LessOrEqual(t, st.Bytes, int64(size+2*blockSize), "blocks older than the size are given back")
	assert.False(t, b.canContinue(st.First-1))
	assert.True(t, b.canContinue(st.First))
	assert.False(t, b.canContinue(st.End+1))
	r, _, ok := b.newReader(st.End - 100)
	require.True(t, ok)
	assert.Equal(t, stream[len(stream)-100:], readAll(t, r))
}

// TestBacklogSlowReader: a reader pins what it has not read, up to the
// limit; past it, it is dropped and the memory given back.
func TestBacklogSlowReader(t *testing.T) {
	b := NewBacklog(blockSize, 8*blockSize)
	b.activate() // as the first replica does
	r, _, _ := b.newReader(-1)
	for i := 0; b.Offset() < 6*blockSize; i++ {
		b.Record(change(i))
	}
	assert.True(t, b.canContinue(0), "a reader at 0 keeps the bytes after 0")
	got := readAll(t, r)
	assert.Len(t, got, int(b.Offset()))
	for i := 0; b.Offset() < 20*blockSize; i++ {
		b.Record(change(i))
	}
	_, err := r.Read(make([]byte, 10))
	assert.ErrorIs(t, err, ErrDropped)
	assert.LessOrEqual(t, b.Status().Bytes, int64(3*blockSize))
	r.Close()
	assert.Zero(t, b.Status().Readers)
}

// TestBacklogReset: a full resync on a replica starts the stream again
// at the primary's offset and drops the readers.
func TestBacklogReset(t *testing.T) {
	b := NewBacklog(1<<20, 1<<20)
	b.activate() // as the first replica does
	r, _, _ := b.newReader(-1)
	b.Record(change(1))
	b.reset(1000)
	_, err := r.Read(make([]byte, 10))
	assert.ErrorIs(t, err, ErrDropped)
	assert.Equal(t, int64(1000), b.Offset())
	assert.True(t, b.canContinue(1000))
	assert.False(t, b.canContinue(999))
}

// TestBacklogRecordAllocatesNothing: in steady state, recording a change
// reuses the blocks it gave back.
func TestBacklogRecordAllocatesNothing(t *testing.T) {
	b := NewBacklog(4*blockSize, 4*blockSize)
	b.activate() // as the first replica does
	c := change(123456)
	for range 10000 {
		b.Record(c)
	}
	assert.Zero(t, testing.AllocsPerRun(10000, func() { b.Record(c) }))
}

// BenchmarkBacklogRecord is the cost replication adds to every change.
func BenchmarkBacklogRecord(b *testing.B) {
	bl := NewBacklog(DefaultBacklogSize, DefaultBufferLimit)
	bl.activate() // as the first replica does
	c := change(123456)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			bl.Record(c)
		}
	})
}
