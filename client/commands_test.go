package client_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sluicehq/sluice/client"
	"github.com/sluicehq/sluice/client/sluicetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEveryCommand: each method against a real server with a frozen
// clock, in RESP2 and RESP3 (maps and nulls differ between them).
func TestEveryCommand(t *testing.T) {
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("RESP%d", proto), func(t *testing.T) {
			srv := sluicetest.Start(t, sluicetest.PolicyFile("testdata/policies.toml"))
			srv.FreezeClock(t, sluicetest.Epoch)
			sl := client.New(newRedis(t, srv.Addr, proto))
			ctx := context.Background()

			perSecond := client.Limit{Burst: 9, Count: 10, Period: time.Second}
			perDay := client.Limit{Burst: 999, Count: 1000, Period: 24 * time.Hour}
			checks := []client.Check{{Key: "u:s", Limit: perSecond}, {Key: "u:d", Limit: perDay}}
			m, err := sl.ThrottleMulti(ctx, checks, 10)
			require.NoError(t, err)
			assert.False(t, m.Limited)
			assert.Equal(t, []int64{0, 990}, []int64{m.Each[0].Remaining, m.Each[1].Remaining})
			m, err = sl.ThrottleMulti(ctx, checks, 1)
			require.NoError(t, err)
			assert.True(t, m.Limited)
			assert.Equal(t, time.Second, m.RetryAfter)
			_, err = sl.ThrottleMulti(ctx, nil, 1)
			assert.ErrorIs(t, err, client.ErrInvalidLimit)

			w := client.Window{Count: 2, Period: 10 * time.Second, Algorithm: client.Fixed}
			for range 2 {
				r, err := sl.ThrottleWindow(ctx, "w", w, 1)
				require.NoError(t, err)
				assert.False(t, r.Limited)
			}
			r, err := sl.ThrottleWindow(ctx, "w", w, 1)
			require.NoError(t, err)
			assert.Equal(t, client.Result{Limited: true, Limit: 2, RetryAfter: 10 * time.Second, ResetAfter: 10 * time.Second}, r)
			_, err = sl.ThrottleWindow(ctx, "w", client.Window{Count: 1, Period: time.Second, Algorithm: "leaky"}, 1)
			assert.ErrorIs(t, err, client.ErrInvalidLimit)

			names, err := sl.PolicyList(ctx)
			require.NoError(t, err)
			assert.Equal(t, []string{"anon", "api"}, names)
			p, ok, err := sl.PolicyGet(ctx, "api")
			require.NoError(t, err)
			assert.True(t, ok)
			assert.Equal(t, client.Policy{Name: "api", Algorithm: "gcra", Limit: "10/second; 1000/day",
				Overrides: map[string]string{"tenant:acme": "100/second; 100000/day"}}, p)
			_, ok, err = sl.PolicyGet(ctx, "none")
			require.NoError(t, err)
			assert.False(t, ok)
			pr, err := sl.PolicyThrottle(ctx, "api", "user:1", 1)
			require.NoError(t, err)
			assert.Equal(t, client.PolicyResult{
				Result:          client.Result{Limit: 10, Remaining: 9, ResetAfter: 87 * time.Second}, // the longest reset
				RateLimitPolicy: `"api-1s";q=10;w=1, "api-86400s";q=1000;w=86400`,
				RateLimit:       `"api-1s";r=9;t=1, "api-86400s";r=999;t=87`,
			}, pr)
			_, err = sl.PolicyThrottle(ctx, "none", "k", 1)
			assert.ErrorContains(t, err, "no such policy 'none'")

			l, err := sl.LeaseAcquire(ctx, "db", 1, time.Second)
			require.NoError(t, err)
			assert.Equal(t, client.Lease{Acquired: true, Max: 1, InFlight: 1, FreeAfter: time.Second, ID: l.ID}, l)
			refused, err := sl.LeaseAcquire(ctx, "db", 1, time.Second)
			require.NoError(t, err)
			assert.Equal(t, client.Lease{Max: 1, InFlight: 1, FreeAfter: time.Second, ID: -1}, refused)
			ok, n, err := sl.LeaseRenew(ctx, "db", l.ID, 5*time.Second)
			require.NoError(t, err)
			assert.Equal(t, []any{true, int64(1)}, []any{ok, n})
			ok, n, err = sl.LeaseRelease(ctx, "db", l.ID)
			require.NoError(t, err)
			assert.Equal(t, []any{true, int64(0)}, []any{ok, n})
			_, err = sl.LeaseAcquire(ctx, "db", 1, time.Microsecond)
			assert.ErrorIs(t, err, client.ErrInvalidLimit)

			c, err := sl.CounterIncrBy(ctx, "c", 3, time.Minute, false)
			require.NoError(t, err)
			assert.Equal(t, client.Counter{Value: 3, TTL: time.Minute}, c)
			c, err = sl.CounterGet(ctx, "none")
			require.NoError(t, err)
			assert.Equal(t, client.Counter{}, c)

			r, err = sl.SlidingLogAcquire(ctx, "log", 2, time.Second, 2)
			require.NoError(t, err)
			assert.Equal(t, client.Result{Limit: 2, ResetAfter: time.Second}, r)
			r, err = sl.SlidingLogAcquire(ctx, "log", 2, time.Second, 1)
			require.NoError(t, err)
			assert.Equal(t, client.Result{Limited: true, Limit: 2, RetryAfter: time.Second, ResetAfter: time.Second}, r)
			r, err = sl.SlidingLogAcquire(ctx, "log", 2, time.Second, 3)
			require.NoError(t, err)
			assert.Negative(t, r.RetryAfter, "never fits")
			lw, err := sl.SlidingLogGet(ctx, "log", time.Second)
			require.NoError(t, err)
			assert.Equal(t, client.LogWindow{Count: 2, NextLeaves: time.Second, AllLeave: time.Second}, lw)
		})
	}
}
