package persistence

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type decoded struct {
	op  byte
	key string
	tat int64
}

// TestPendingLogRoundTrip appends operations of every kind and size —
// including keys larger than a chunk — and reads them back in order, over
// several take/recycle cycles that reuse chunks.
func TestPendingLogRoundTrip(t *testing.T) {
	var p pendingLog
	var spare [][]byte
	for round := range 3 {
		var want []decoded
		for i := range 5000 {
			key := fmt.Sprintf("r%d-k%d", round, i)
			switch {
			case i%1000 == 999:
				key = string(bytes.Repeat([]byte{'x'}, chunkSize+i)) // bigger than a chunk
				p.appendSet(opSet, []byte(key), int64(i+1))
				want = append(want, decoded{opSet, key, int64(i + 1)})
			case i%7 == 0:
				p.appendDelete(opDelete, []byte(key))
				want = append(want, decoded{opDelete, key, 0})
			case i%501 == 0:
				p.appendFlush()
				want = append(want, decoded{opFlush, "", 0})
			default:
				p.appendSet(opSet, []byte(key), int64(i)<<40|int64(i))
				want = append(want, decoded{opSet, key, int64(i)<<40 | int64(i)})
			}
		}
		require.Positive(t, p.size)
		chunks := p.take(spare)
		assert.Zero(t, p.size)
		var got []decoded
		require.NoError(t, ops(chunks, func(op byte, key []byte, tat int64, _ []byte) error {
			got = append(got, decoded{op, string(key), tat})
			return nil
		}))
		assert.Equal(t, want, got)
		p.recycle(chunks)
		spare = chunks[:0]
		assert.LessOrEqual(t, len(p.free), maxFreeChunks)
	}
}
