package commands

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLeaseCommands(t *testing.T) {
	ts := startServer(t, true)
	c := ts.client(t, 3)
	ctx := context.Background()
	setClock(t, c, epoch)
	a := call(t, c, "LEASE.ACQUIRE", "db", 2, 1000)
	assert.Equal(t, []int64{0, 2, 1, 0}, a[:4])
	id1 := a[4]
	setClock(t, c, epoch+250e6)
	b := call(t, c, "LEASE.ACQUIRE", "db", 2, 1000)
	assert.Equal(t, []int64{0, 2, 2, 750}, b[:4], "full: the first lease frees a slot in 750 ms")
	assert.Equal(t, []int64{1, 2, 2, 750, -1}, call(t, c, "LEASE.ACQUIRE", "db", 2, 1000))
	assert.Equal(t, []int64{1, 2}, call(t, c, "LEASE.RENEW", "db", id1, 5000))
	assert.Equal(t, []int64{1, 2, 2, 1000, -1}, call(t, c, "LEASE.ACQUIRE", "db", 2, 1000))
	// The second lease is never released: it expires at its TTL.
	setClock(t, c, epoch+1250e6)
	assert.Equal(t, []int64{0, 1}, call(t, c, "LEASE.RENEW", "db", b[4], 1000), "expired")
	assert.Equal(t, []int64{0, 3, 2, 0}, call(t, c, "LEASE.ACQUIRE", "db", 3, 1000)[:4])
	assert.Equal(t, []int64{1, 1}, call(t, c, "LEASE.RELEASE", "db", id1))
	assert.Equal(t, []int64{0, 1}, call(t, c, "LEASE.RELEASE", "db", id1))

	setClock(t, c, epoch+10e9)
	assert.Equal(t, 1, ts.keys.Sweep(ts.srv.Clock().Now(), 1<<30))
	assert.Zero(t, ts.keys.Stats().Leases)

	for _, tc := range []struct {
		args []any
		want string
	}{
		{[]any{"LEASE.ACQUIRE", "k", 0, 10}, "ERR invalid max: must be >= 1"},
		{[]any{"LEASE.ACQUIRE", "k", 1, 0}, "ERR invalid ttl: must be >= 1 millisecond and at most 2^40 ms"},
		{[]any{"LEASE.ACQUIRE", "k", "x", 10}, "ERR value is not an integer or out of range"},
		{[]any{"LEASE.ACQUIRE", "k", 1}, "ERR wrong number of arguments for 'lease.acquire' command"},
		{[]any{"LEASE.RELEASE", "k", "x"}, "ERR value is not an integer or out of range"},
		{[]any{"LEASE.RENEW", "k", 1, -5}, "ERR invalid ttl: must be >= 1 millisecond and at most 2^40 ms"},
	} {
		err := c.Do(ctx, tc.args...).Err()
		require.Error(t, err, "%v", tc.args)
		assert.Equal(t, tc.want, err.Error(), "%v", tc.args)
	}
}

// TestLeaseBoundOverTCP: many connections acquire, hold and release leases
// on one key at a frozen instant; no more than max are ever held at once,
// and every acquired lease is released.
func TestLeaseBoundOverTCP(t *testing.T) {
	ts := startServer(t, true)
	setClock(t, ts.client(t, 2), epoch)
	const goroutines, calls, max = 24, 40, 4
	var held, peak, acquired atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", ts.addr)
			if !assert.NoError(t, err) {
				return
			}
			defer conn.Close()
			r := bufio.NewReader(conn)
			for i := 0; i < calls; i++ {
				fmt.Fprintf(conn, "LEASE.ACQUIRE pool %d 60000\r\n", max)
				reply := readReply(t, r)
				if strings.HasPrefix(reply, "*5\r\n:1\r\n") {
					continue
				}
				if !assert.True(t, strings.HasPrefix(reply, "*5\r\n:0\r\n"), reply) {
					return
				}
				lines := strings.Split(reply, "\r\n")
				id, err := strconv.ParseInt(strings.TrimPrefix(lines[5], ":"), 10, 64)
				require.NoError(t, err)
				acquired.Add(1)
				h := held.Add(1)
				for p := peak.Load(); h > p && !peak.CompareAndSwap(p, h); p = peak.Load() {
				}
				held.Add(-1)
				fmt.Fprintf(conn, "LEASE.RELEASE pool %d\r\n", id)
				assert.True(t, strings.HasPrefix(readReply(t, r), "*2\r\n:1\r\n"))
			}
		}()
	}
	wg.Wait()
	assert.LessOrEqual(t, peak.Load(), int64(max))
	assert.Positive(t, acquired.Load())
	assert.Zero(t, ts.keys.InFlight([]byte("pool"), epoch))
}

// TestLeaseIDsCannotBeGuessed: a client that holds a lease cannot release
// or renew another client's lease on the same key by trying the IDs next
// to its own (a counter made that a one-try attack), and its own ID tells
// it nothing of how many leases others took.
func TestLeaseIDsCannotBeGuessed(t *testing.T) {
	ts := startServer(t, true)
	mine := call(t, ts.client(t, 2), "LEASE.ACQUIRE", "shared", 10, 60000)[4]
	theirs := call(t, ts.client(t, 2), "LEASE.ACQUIRE", "shared", 10, 60000)[4]
	require.NotEqual(t, mine, theirs)
	attacker := ts.client(t, 2)
	for d := int64(-100); d <= 100; d++ {
		if guess := mine + d; d != 0 && guess != theirs {
			assert.Equal(t, []int64{0, 2}, call(t, attacker, "LEASE.RELEASE", "shared", guess), "guess %d", guess)
			assert.Equal(t, []int64{0, 2}, call(t, attacker, "LEASE.RENEW", "shared", guess, 1), "guess %d", guess)
		}
	}
	assert.Greater(t, max(mine, theirs), int64(1)<<32, "IDs are not small counters")
}
