package persistence

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/sluicehq/sluice/keyspace"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPendingLogRoundTrip appends changes of every op and kind — including
// keys and values larger than a chunk — and decodes them back in order,
// over several take/recycle cycles that reuse chunks.
func TestPendingLogRoundTrip(t *testing.T) {
	var p pendingLog
	var spare [][]byte
	kinds := []keyspace.Kind{keyspace.GCRA, keyspace.Window, keyspace.Lease, keyspace.Counter, keyspace.Log}
	for round := range 3 {
		var want []keyspace.Change
		for i := range 5000 {
			c := keyspace.Change{Op: keyspace.Set, Kind: kinds[i%len(kinds)], Created: i%2 == 0,
				Key: fmt.Appendf(nil, "r%d-k%d", round, i), Expires: int64(i)<<40 | int64(i+1)}
			switch {
			case i%1000 == 999:
				c.Key = bytes.Repeat([]byte{'x'}, chunkSize+i) // bigger than a chunk
			case i%1000 == 998:
				c.Value = bytes.Repeat([]byte{'v'}, chunkSize+i)
			case i%7 == 0:
				c = keyspace.Change{Op: keyspace.Delete, Kind: c.Kind, Key: c.Key}
			case i%501 == 0:
				c = keyspace.Change{Op: keyspace.Flush}
			case c.Kind != keyspace.GCRA:
				c.Value = fmt.Appendf(nil, "value %d", i)
			}
			p.append(c, kindCode(c.Kind))
			want = append(want, c)
		}
		require.Positive(t, p.size)
		chunks := p.take(spare)
		assert.Zero(t, p.size)
		var got []keyspace.Change
		for _, chunk := range chunks {
			require.NoError(t, decode(chunk, func(c keyspace.Change) error {
				if len(c.Key) == 0 {
					c.Key = nil
				}
				if len(c.Value) == 0 {
					c.Value = nil
				}
				got = append(got, c)
				return nil
			}))
		}
		assert.Equal(t, want, got)
		p.recycle(chunks)
		spare = chunks[:0]
		assert.LessOrEqual(t, len(p.free), maxFreeChunks)
	}
}

// TestDecodeRefusesWhatItCannotRead: a record that does not decode is an
// error, never a panic or a change made up.
func TestDecodeRefusesWhatItCannotRead(t *testing.T) {
	full := encode(keyspace.Change{Op: keyspace.Set, Kind: keyspace.Window, Key: []byte("key"), Expires: epoch, Value: []byte("value")})[0]
	for n := 1; n < len(full); n++ {
		err := decode(full[:n], func(keyspace.Change) error { return nil })
		assert.ErrorIs(t, err, errCorrupt, "truncated to %d bytes", n)
	}
	for _, b := range [][]byte{{0x7f}, {opDelete | createdFlag, 'g', 0}, {opSet, 'x', 0}} {
		assert.ErrorIs(t, decode(b, func(keyspace.Change) error { return nil }), errCorrupt, "%x", b)
	}
}

// TestRecordAllocatesNothing: in steady state (the writer taking the log
// and giving the chunks back) Record allocates nothing, whatever the kind.
func TestRecordAllocatesNothing(t *testing.T) {
	s := &Store{maxPending: 1 << 30, kick: make(chan struct{}, 1)}
	s.room.L = &s.mu
	key, value := []byte("user:12345"), []byte("some counters")
	changes := []keyspace.Change{
		{Op: keyspace.Set, Kind: keyspace.GCRA, Key: key, Expires: epoch},
		{Op: keyspace.Set, Kind: keyspace.Window, Created: true, Key: key, Expires: epoch, Value: value},
		{Op: keyspace.Delete, Kind: keyspace.Lease, Key: key},
		{Op: keyspace.Flush},
	}
	var spare [][]byte
	i := 0
	allocs := testing.AllocsPerRun(100_000, func() {
		s.Record(changes[i%len(changes)])
		if i++; s.pending.size > 4*chunkSize { // as the writer would
			chunks, _ := s.take(spare)
			s.give(chunks)
			spare = chunks[:0]
		}
	})
	assert.Zero(t, allocs)
	assert.EqualValues(t, 100_001, s.Recorded())
}

func TestRecordRefusesAnUnknownChange(t *testing.T) {
	s := &Store{maxPending: 1 << 30, kick: make(chan struct{}, 1)}
	s.room.L = &s.mu
	assert.PanicsWithValue(t, "persistence: a change of unknown kind 9", func() {
		s.Record(keyspace.Change{Op: keyspace.Set, Kind: 9, Key: []byte("k")})
	})
	assert.PanicsWithValue(t, "persistence: a change with unknown op 0", func() {
		s.Record(keyspace.Change{})
	})
	assert.Zero(t, s.Recorded())
}
