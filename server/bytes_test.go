package server

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBytes: sizes in Redis's units, as redis.conf writes them, and back.
func TestBytes(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "100": 100, "100b": 100, "1k": 1000, "1kb": 1024, "100mb": 100 << 20, "100MB": 100 << 20,
		"1m": 1e6, "1gb": 1 << 30, "2G": 2e9, " 64kb ": 64 << 10, "8589934591gb": (1<<33 - 1) << 30,
	} {
		var b Bytes
		require.NoError(t, b.Set(in), in)
		assert.Equal(t, want, int64(b), in)
	}
	for _, bad := range []string{"", "mb", "-1", "1.5gb", "1tb", "10 mb", "9223372036854775808", "8589934592gb"} {
		var b Bytes
		assert.Error(t, b.Set(bad), bad)
	}
	assert.Equal(t, "0", Bytes(0).String())
	assert.Equal(t, "256mb", Bytes(256<<20).String())
	assert.Equal(t, "1gb", Bytes(1<<30).String())
	assert.Equal(t, "1000", Bytes(1000).String())
	assert.Equal(t, "3kb", Bytes(3072).String())
}
