package commands

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/acl"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAuthGuardSchedule: an address fails authFreeFailures times without
// waiting; then each attempt waits its turn, the spacing doubling from
// authFirstDelay to authMaxDelay; attempts queued beyond authMaxWait are
// refused unchecked; after authForget without failure it starts afresh.
func TestAuthGuardSchedule(t *testing.T) {
	var g authGuard
	a, other := authAddr("10.0.0.1:5000"), authAddr("10.0.0.2:5000")
	now := epoch
	for i := 0; i < authFreeFailures; i++ {
		wait, ok := g.admit(a, now)
		require.True(t, ok)
		require.Zero(t, wait, "failure %d is free", i+1)
		g.finish(a, now, true)
	}
	// Sequential attempts, each arriving when the previous one was answered.
	var waits []time.Duration
	for i := 0; i < 9; i++ {
		wait, ok := g.admit(a, now)
		require.True(t, ok)
		waits = append(waits, wait)
		now += int64(wait)
		g.finish(a, now, true)
	}
	ms := time.Millisecond
	assert.Equal(t, []time.Duration{0, 10 * ms, 20 * ms, 40 * ms, 80 * ms, 160 * ms, 320 * ms, 640 * ms, 1000 * ms}, waits)
	wait, ok := g.admit(other, now)
	assert.True(t, ok)
	assert.Zero(t, wait, "another address is not slowed")
	g.finish(other, now, false)
	assert.NotContains(t, g.addrs, other, "an address without failures is not remembered")

	// Parallel attempts from the address queue one authMaxDelay apart, until
	// the queue would exceed authMaxWait.
	now += int64(time.Minute) // less than authForget
	var queued []time.Duration
	for len(queued) < 100 {
		wait, ok := g.admit(a, now)
		if !ok {
			break
		}
		queued = append(queued, wait)
	}
	assert.Equal(t, []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second, 5 * time.Second}, queued)
	for range queued {
		g.finish(a, now, true)
	}

	// Forgotten after authForget without a failure.
	wait, ok = g.admit(a, now+int64(authForget))
	assert.True(t, ok)
	assert.Zero(t, wait)
}

// TestAuthGuardBurst: many connections of a fresh address trying at once
// do not all pass as free: attempts being checked count, so the 11th and
// later wait their turns, the spacing doubling, and beyond authMaxWait
// they are refused.
func TestAuthGuardBurst(t *testing.T) {
	var g authGuard
	a := authAddr("10.0.0.1:5000")
	var queued []time.Duration
	refused := 0
	for range 30 {
		wait, ok := g.admit(a, epoch)
		if !ok {
			refused++
			continue
		}
		queued = append(queued, wait/time.Millisecond)
	}
	assert.Equal(t, []time.Duration{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10, 30, 70, 150, 310, 630, 1270, 2270, 3270, 4270}, queued)
	assert.Equal(t, 9, refused)
}

func TestAuthGuardForgetsPastMaxAddrs(t *testing.T) {
	var g authGuard
	for i := 0; i < authMaxAddrs+100; i++ {
		ip := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)
		_, ok := g.admit(ip, epoch)
		require.True(t, ok)
		g.finish(ip, epoch, true)
	}
	assert.LessOrEqual(t, len(g.addrs), authMaxAddrs)
}

func TestAuthAddr(t *testing.T) {
	assert.Equal(t, "127.0.0.1/32", authAddr("127.0.0.1:6379").String())
	assert.Equal(t, "10.1.2.3/32", authAddr("[::ffff:10.1.2.3]:1").String())
	assert.Equal(t, "2001:db8:1:2::/64", authAddr("[2001:db8:1:2:aa:bb:cc:dd]:1").String())
	assert.Equal(t, authAddr("[2001:db8:1:2::1]:1"), authAddr("[2001:db8:1:2::2]:2"), "one /64 is one address")
	assert.Equal(t, authAddr("/tmp/sock"), authAddr(""))
}

// sleepRecorder stands for time.Sleep: it records each wait and moves the
// server clock by it, so the guard sees time pass without a real sleep.
type sleepRecorder struct {
	mu    sync.Mutex
	ts    *testServer
	waits []time.Duration
}

func (r *sleepRecorder) sleep(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.waits = append(r.waits, d)
	r.ts.srv.Clock().Set(r.ts.srv.Clock().Now() + int64(d))
}

func (r *sleepRecorder) recorded() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.waits...)
}

// TestAuthFailuresAreSlowedAndCapped: over the network, a connection is
// closed after authConnFailures failed AUTHs; once its address has failed
// authFreeFailures times, every further attempt (a right password too)
// waits its turn before it is checked, the waits doubling.
func TestAuthFailuresAreSlowedAndCapped(t *testing.T) {
	rec := &sleepRecorder{}
	rec.ts = startServerWith(t, Config{Users: acl.NewUsers("right"), Sleep: rec.sleep})
	rec.ts.srv.Clock().Set(epoch)
	dial := func() (net.Conn, *bufio.Reader) {
		conn, err := net.Dial("tcp", rec.ts.addr)
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close() })
		require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
		return conn, bufio.NewReader(conn)
	}

	// One connection guessing: authConnFailures replies, then EOF. (One at
	// a time: closing with guesses still unread would reset the
	// connection, and the client could lose replies it had not read yet.)
	conn, r := dial()
	for i := 0; i < authConnFailures; i++ {
		fmt.Fprintf(conn, "AUTH guess%d\r\n", i)
		assert.Equal(t, "-"+errWrongPass+"\r\n", readReply(t, r), "reply %d", i+1)
	}
	_, err := r.ReadByte()
	assert.ErrorIs(t, err, io.EOF, "closed after %d failures", authConnFailures)
	assert.Empty(t, rec.recorded(), "the first %d failures of an address are not slowed", authFreeFailures)

	// The address has used its free failures: each attempt now waits first.
	conn, r = dial()
	for i := 0; i < 3; i++ {
		fmt.Fprint(conn, "AUTH wrong\r\n")
		assert.Equal(t, "-"+errWrongPass+"\r\n", readReply(t, r))
	}
	fmt.Fprint(conn, "AUTH right\r\nPING\r\n")
	assert.Equal(t, "+OK\r\n", readReply(t, r))
	assert.Equal(t, "+PONG\r\n", readReply(t, r))
	assert.Equal(t, []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond}, rec.recorded(),
		"the first attempt after the free ones takes its turn at once; the next ones wait 10, 20, 40 ms")
	assert.EqualValues(t, authConnFailures+3, rec.ts.srv.authFailures.Load())
}
