package commands

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rss is the process's resident memory from /proc, for the log ("" where
// there is no /proc).
func rss() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			return strings.Join(strings.Fields(line)[1:], " ")
		}
	}
	return ""
}

// TestMaxMemoryRefusesDenyOOM fills the keyspace with 256 KiB key names
// until --maxmemory refuses, as the attack did that took 3 GB of RSS while
// used_memory said 9.5 MB: the refusal is Redis's -OOM reply, it comes once
// the Go heap and the off-heap tables together pass the bound, commands
// that create nothing still run, and freeing memory (FLUSHALL) lifts it.
func TestMaxMemoryRefusesDenyOOM(t *testing.T) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	limit := int64(ms.HeapAlloc) + 48<<20
	ts := startServerWith(t, Config{EnableDebug: true, MaxMemory: limit})
	c := ts.client(t, 2)
	ctx := context.Background()
	setClock(t, c, epoch)
	heap := ts.srv.heapSample.Load()
	require.Less(t, heap, limit, "the server starts under its bound")

	big := bytes.Repeat([]byte("x"), 256<<10)
	var refused error
	n := 0
	for ; n < 600 && refused == nil; n++ {
		refused = c.Do(ctx, "THROTTLE", fmt.Sprintf("%d:%s", n, big), 0, 1, 3600).Err()
	}
	require.Error(t, refused, "600 keys of 256 KiB (150 MB) never passed a 48 MB bound")
	assert.Equal(t, "OOM command not allowed when used memory > 'maxmemory'.", refused.Error())
	stored := int64(n - 1)
	assert.Equal(t, stored, c.DBSize(ctx).Val(), "the refused call stored nothing")
	off := ts.keys.OffHeapBytes()
	assert.Greater(t, heap+off, limit, "refused only once over the bound")
	runtime.GC()
	m := ts.srv.Memory()
	t.Logf("maxmemory %d: refused after %d keys of 256 KiB; used_memory %d (heap %d + off-heap %d) = %.2f x maxmemory; process RSS %s",
		limit, stored, m.Used, m.Heap, m.OffHeap, float64(m.Used)/float64(limit), rss())

	for _, denied := range [][]any{
		{"THROTTLE", "new", 0, 1, 60}, {"CL.THROTTLE", "new", 0, 1, 60}, {"THROTTLE.MULTI", 1, "a", 0, 1, 60},
		{"THROTTLE.WINDOW", "w", 1, 60}, {"LEASE.ACQUIRE", "l", 1, 1000}, {"POLICY.THROTTLE", "p", "k"},
	} {
		assert.EqualError(t, c.Do(ctx, denied...).Err(), "OOM command not allowed when used memory > 'maxmemory'.", "%v", denied)
	}
	assert.Equal(t, "PONG", c.Ping(ctx).Val(), "commands that create nothing still run")
	assert.Equal(t, int64(1), c.Del(ctx, "0:"+string(big)).Val())
	info := c.Info(ctx, "memory").Val()
	assert.Contains(t, info, fmt.Sprintf("maxmemory:%d\r\n", limit))
	assert.Contains(t, info, "maxmemory_policy:noeviction\r\n")
	assert.Contains(t, info, "used_memory_offheap:")

	require.NoError(t, c.FlushAll(ctx).Err())
	assert.Zero(t, ts.keys.OffHeapBytes(), "FLUSHALL unmaps the tables")
	runtime.GC()
	ts.srv.SampleMemory()
	assert.NoError(t, c.Do(ctx, "THROTTLE", "new", 0, 1, 60).Err(), "under the bound again")
}

// TestNoMaxMemoryByDefault: without a bound nothing is refused, however
// much is used (Redis's maxmemory 0).
func TestNoMaxMemoryByDefault(t *testing.T) {
	ts := startServer(t, true)
	ts.srv.heapSample.Store(1 << 62)
	c := ts.client(t, 2)
	assert.NoError(t, c.Do(context.Background(), "THROTTLE", "k", 0, 1, 60).Err())
	assert.Contains(t, c.Info(context.Background(), "memory").Val(), "maxmemory:0\r\n")
}
