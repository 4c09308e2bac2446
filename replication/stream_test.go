package replication

import (
	"bytes"
	"testing"

	"github.com/sluicehq/sluice/keyspace"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var sampleChanges = []keyspace.Change{
	{Op: keyspace.Set, Kind: keyspace.GCRA, Key: []byte("user:1"), Expires: 1893456000000000000},
	{Op: keyspace.Set, Kind: keyspace.Window, Key: []byte("w"), Expires: 7, Value: []byte{1, 2, 3}},
	{Op: keyspace.Set, Kind: keyspace.Lease, Key: bytes.Repeat([]byte("k"), 300), Expires: -1, Value: bytes.Repeat([]byte{9}, 200)},
	{Op: keyspace.Delete, Kind: keyspace.Lease, Key: []byte("gone")},
	{Op: keyspace.Set, Kind: keyspace.GCRA, Key: []byte{}, Expires: 1},
	{Op: keyspace.Set, Kind: keyspace.Counter, Key: []byte("c"), Expires: 9, Value: []byte{0, 0, 0, 0, 0, 0, 0, 3}},
	{Op: keyspace.Delete, Kind: keyspace.Log, Key: []byte("l")},
	{Op: keyspace.Flush},
}

// TestRecordsRoundTrip: every change decodes to itself, every proper
// prefix of a record asks for more bytes, and heartbeats and GETACKs are
// records too.
func TestRecordsRoundTrip(t *testing.T) {
	var stream []byte
	for _, c := range sampleChanges {
		rec := appendChange(nil, c)
		for i := range len(rec) {
			_, n, err := decodeRecord(rec[:i])
			require.NoError(t, err)
			require.Zero(t, n, "a prefix of %d bytes of %v", i, c)
		}
		got, n, err := decodeRecord(rec)
		require.NoError(t, err)
		require.Equal(t, len(rec), n)
		if c.Value == nil && got.change.Value != nil {
			got.change.Value = nil
		}
		assert.Equal(t, c.Op, got.change.Op)
		assert.Equal(t, c.Kind, got.change.Kind)
		assert.Equal(t, string(c.Key), string(got.change.Key))
		assert.Equal(t, c.Expires, got.change.Expires)
		assert.Equal(t, string(c.Value), string(got.change.Value))
		stream = append(stream, rec...)
	}
	stream = appendPing(stream, 12345)
	stream = append(stream, tagGetAck)
	var tags []byte
	for len(stream) > 0 {
		rec, n, err := decodeRecord(stream)
		require.NoError(t, err)
		require.Positive(t, n)
		tags = append(tags, rec.tag)
		if rec.tag == tagPing {
			assert.Equal(t, int64(12345), rec.clock)
		}
		stream = stream[n:]
	}
	assert.Equal(t, "SSSDSSDFPA", string(tags))
}

// TestDecodeRefusesCorruption: unknown tags and kinds and absurd lengths
// are errors, not requests for more bytes.
func TestDecodeRefusesCorruption(t *testing.T) {
	for _, b := range [][]byte{
		{'X'},
		{tagSet, 0, 0},
		{tagDelete, 9, 0},
		{tagSet, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		{tagSet, 1, 0x80, 0x80, 0x80, 0x80, 0x40}, // 2^34: above maxField
	} {
		_, _, err := decodeRecord(b)
		assert.ErrorIs(t, err, errCorrupt, "%q", b)
	}
}

// FuzzDecodeRecord: decoding never panics, never claims more bytes than
// it was given, and what it decodes encodes back to the same bytes.
func FuzzDecodeRecord(f *testing.F) {
	for _, c := range sampleChanges {
		f.Add(appendChange(nil, c))
	}
	f.Add(appendPing(nil, -1))
	f.Add([]byte{tagGetAck})
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, n, err := decodeRecord(b)
		if err != nil || n == 0 {
			return
		}
		require.LessOrEqual(t, n, len(b))
		switch rec.tag {
		case tagSet, tagDelete, tagFlush:
			// A uvarint may be written with redundant bytes; compare
			// decoded values instead of bytes then.
			again, m, err := decodeRecord(appendChange(nil, rec.change))
			require.NoError(t, err)
			require.Positive(t, m)
			require.Equal(t, rec.change.Op, again.change.Op)
			require.Equal(t, string(rec.change.Key), string(again.change.Key))
			require.Equal(t, string(rec.change.Value), string(again.change.Value))
			require.Equal(t, rec.change.Expires, again.change.Expires)
		}
	})
}
