package client_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sluicehq/sluice/client"
	"github.com/sluicehq/sluice/client/sluicetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every go-redis client flavour is a Doer.
var (
	_ client.Doer = (*redis.Client)(nil)
	_ client.Doer = (*redis.ClusterClient)(nil)
	_ client.Doer = (*redis.Ring)(nil)
	_ client.Doer = (*redis.Conn)(nil)
	_ client.Doer = redis.UniversalClient(nil)
)

func newRedis(t *testing.T, addr string, proto int) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr, Protocol: proto, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func allowed(limit, remaining int64, reset time.Duration) client.Result {
	return client.Result{Limit: limit, Remaining: remaining, ResetAfter: reset}
}

func TestThrottleReadmeExample(t *testing.T) {
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("RESP%d", proto), func(t *testing.T) {
			srv := sluicetest.Start(t)
			srv.FreezeClock(t, sluicetest.Epoch)
			sl := client.New(newRedis(t, srv.Addr, proto))
			ctx := context.Background()
			l := client.Limit{Burst: 15, Count: 30, Period: time.Minute}

			res, err := sl.Throttle(ctx, "user123", l, 1)
			require.NoError(t, err)
			assert.Equal(t, allowed(16, 15, 2*time.Second), res)
			res, err = sl.Throttle(ctx, "user123", l, 1)
			require.NoError(t, err)
			assert.Equal(t, allowed(16, 14, 4*time.Second), res)
		})
	}
}

// TestThrottleBurstExhaustion: 5 at once, then one every 6 s.
func TestThrottleBurstExhaustion(t *testing.T) {
	srv := sluicetest.Start(t)
	srv.FreezeClock(t, sluicetest.Epoch)
	// A UniversalClient works as well as a *redis.Client.
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{srv.Addr}, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	sl := client.New(rdb)
	ctx := context.Background()
	l := client.Limit{Burst: 4, Count: 10, Period: time.Minute} // limit 5, one per 6 s

	for i := int64(1); i <= 5; i++ {
		res, err := sl.Throttle(ctx, "burst", l, 1)
		require.NoError(t, err)
		assert.Equal(t, allowed(5, 5-i, time.Duration(6*i)*time.Second), res, "call %d", i)
	}
	refused := client.Result{Limited: true, Limit: 5, RetryAfter: 6 * time.Second, ResetAfter: 30 * time.Second}
	res, err := sl.Throttle(ctx, "burst", l, 1)
	require.NoError(t, err)
	assert.Equal(t, refused, res)

	// Peeking charges nothing; more than the limit can never fit.
	res, err = sl.Throttle(ctx, "burst", l, 0)
	require.NoError(t, err)
	assert.Equal(t, allowed(5, 0, 30*time.Second), res)
	res, err = sl.Throttle(ctx, "burst", l, 6)
	require.NoError(t, err)
	assert.Equal(t, client.Result{Limited: true, Limit: 5, RetryAfter: -time.Second, ResetAfter: 30 * time.Second}, res)

	srv.FreezeClock(t, sluicetest.Epoch+int64(6*time.Second))
	res, err = sl.Throttle(ctx, "burst", l, 1)
	require.NoError(t, err)
	assert.Equal(t, allowed(5, 0, 30*time.Second), res)
	res, err = sl.Throttle(ctx, "burst", l, 1)
	require.NoError(t, err)
	assert.Equal(t, refused, res)

	// A refund gives one back.
	res, err = sl.Throttle(ctx, "burst", l, -1)
	require.NoError(t, err)
	assert.Equal(t, allowed(5, 1, 24*time.Second), res)
}

func TestLimitValidate(t *testing.T) {
	for _, tc := range []struct {
		l  client.Limit
		ok bool
	}{
		{client.Limit{Burst: 0, Count: 1, Period: time.Second}, true},
		{client.Limit{Burst: 499, Count: 5000, Period: time.Hour}, true},
		{client.Limit{Burst: -1, Count: 1, Period: time.Second}, false},
		{client.Limit{Burst: 0, Count: 0, Period: time.Second}, false},
		{client.Limit{Burst: 0, Count: 1, Period: 0}, false},
		{client.Limit{Burst: 0, Count: 1, Period: 999 * time.Millisecond}, false},
		{client.Limit{Burst: 0, Count: 1, Period: 1500 * time.Millisecond}, false},
		{client.Limit{Burst: 0, Count: 1, Period: -time.Second}, false},
	} {
		err := tc.l.Validate()
		if tc.ok {
			assert.NoError(t, err, "%+v", tc.l)
		} else {
			assert.ErrorIs(t, err, client.ErrInvalidLimit, "%+v", tc.l)
		}
	}
}

// An invalid limit is refused before anything is sent.
func TestThrottleInvalidLimitSendsNothing(t *testing.T) {
	d := &fakeDoer{}
	_, err := client.New(d).Throttle(context.Background(), "k", client.Limit{Count: 1, Period: 1500 * time.Millisecond}, 1)
	assert.ErrorIs(t, err, client.ErrInvalidLimit)
	assert.Zero(t, d.calls)
}

func TestThrottleServerError(t *testing.T) {
	srv := sluicetest.Start(t)
	sl := client.New(newRedis(t, srv.Addr, 3))
	_, err := sl.Throttle(context.Background(), "k", client.Limit{Burst: 1 << 62, Count: 1, Period: time.Second}, 1)
	var rerr redis.Error
	require.ErrorAs(t, err, &rerr)
	assert.Contains(t, err.Error(), "ERR ")
}

type fakeDoer struct {
	val   any
	calls int
}

func (f *fakeDoer) Do(ctx context.Context, args ...any) *redis.Cmd {
	f.calls++
	cmd := redis.NewCmd(ctx, args...)
	cmd.SetVal(f.val)
	return cmd
}

func TestThrottleMalformedReply(t *testing.T) {
	l := client.Limit{Count: 1, Period: time.Second}
	for _, v := range []any{
		"OK",
		[]any{int64(0), int64(1), int64(1), int64(-1)},
		[]any{int64(0), int64(1), int64(1), int64(-1), "0"},
	} {
		_, err := client.New(&fakeDoer{val: v}).Throttle(context.Background(), "k", l, 1)
		assert.Error(t, err, "%#v", v)
	}
	res, err := client.New(&fakeDoer{val: []any{int64(1), int64(1), int64(0), int64(7), int64(9)}}).Throttle(context.Background(), "k", l, 1)
	require.NoError(t, err)
	assert.Equal(t, client.Result{Limited: true, Limit: 1, RetryAfter: 7 * time.Second, ResetAfter: 9 * time.Second}, res)
}

func TestThrottleUnreachable(t *testing.T) {
	rdb := newRedis(t, closedAddr(t), 3)
	_, err := client.New(rdb).Throttle(context.Background(), "k", client.Limit{Count: 1, Period: time.Second}, 1)
	require.Error(t, err)
	assert.False(t, errors.Is(err, client.ErrInvalidLimit))
}
