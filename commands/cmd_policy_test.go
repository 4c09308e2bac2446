package commands

import (
	"context"
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/sluicehq/sluice/policy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testPolicies = `
[policies.anon]
limit = "50/hour"

[policies.api]
limit = "2/second; 3/minute"
overrides = { "tenant:acme" = "100/second" }

[policies.fixed]
limit = "2/second; 3/minute"
algorithm = "fixed-window"

[policies.sliding]
limit = "10/minute"
algorithm = "sliding-window"
`

func startPolicyServer(t *testing.T) *testServer {
	t.Helper()
	ts := startServer(t, true)
	set, err := policy.Parse([]byte(testPolicies))
	require.NoError(t, err)
	ts.srv.SetPolicies(set)
	return ts
}

// mixed reads an array of integers followed by strings.
func mixed(t *testing.T, c *redis.Client, args ...any) ([]int64, []string) {
	t.Helper()
	v, err := do(c, args...)
	require.NoError(t, err)
	arr, ok := v.([]any)
	require.True(t, ok, "reply %#v is not an array", v)
	var ns []int64
	var ss []string
	for _, x := range arr {
		switch x := x.(type) {
		case int64:
			ns = append(ns, x)
		case string:
			ss = append(ss, x)
		default:
			t.Fatalf("unexpected element %#v", x)
		}
	}
	return ns, ss
}

func TestPolicyThrottleHeaders(t *testing.T) {
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("RESP%d", proto), func(t *testing.T) {
			ts := startPolicyServer(t)
			c := ts.client(t, proto)
			setClock(t, c, epoch)
			ns, ss := mixed(t, c, "POLICY.THROTTLE", "anon", "ip:1", "HEADERS")
			assert.Equal(t, []int64{0, 50, 49, -1, 72}, ns)
			assert.Equal(t, []string{`"anon";q=50;w=3600`, `"anon";r=49;t=72`}, ss)
			// The state is GCRA state in the table, under a derived key.
			assert.Equal(t, []int64{0, 50, 49, -1, 72}, call(t, c, "THROTTLE", "policy:anon:0:ip:1", 49, 50, 3600, 0))
			assert.Equal(t, []int64{0, 50, 47, -1, 216}, call(t, c, "POLICY.THROTTLE", "anon", "ip:1", 2))
			assert.Equal(t, []int64{0, 50, 47, -1, 216}, call(t, c, "POLICY.THROTTLE", "anon", "ip:1", 0))
		})
	}
}

func TestPolicyThrottleMultiAndOverride(t *testing.T) {
	ts := startPolicyServer(t)
	c := ts.client(t, 3)
	setClock(t, c, epoch)
	// "2/second; 3/minute" with GCRA: bursts of 2 and of 3.
	assert.Equal(t, []int64{0, 2, 1, -1, 20}, call(t, c, "POLICY.THROTTLE", "api", "u"))
	assert.Equal(t, []int64{0, 2, 0, -1, 40}, call(t, c, "POLICY.THROTTLE", "api", "u"))
	ns, ss := mixed(t, c, "POLICY.THROTTLE", "api", "u", "HEADERS")
	assert.Equal(t, []int64{1, 2, 0, 1, 40}, ns)
	assert.Equal(t, []string{`"api-1s";q=2;w=1, "api-60s";q=3;w=60`, `"api-1s";r=0;t=1, "api-60s";r=1;t=40`}, ss)
	// The tenant with an override has its own, higher limit.
	for i := 0; i < 100; i++ {
		r := call(t, c, "POLICY.THROTTLE", "api", "tenant:acme")
		require.Equal(t, int64(0), r[0], "call %d", i)
	}
	assert.Equal(t, int64(1), call(t, c, "POLICY.THROTTLE", "api", "tenant:acme")[0])
}

func TestPolicyThrottleWindows(t *testing.T) {
	ts := startPolicyServer(t)
	c := ts.client(t, 3)
	setClock(t, c, epoch+500_000_000)
	assert.Equal(t, []int64{0, 2, 1, -1, 60}, call(t, c, "POLICY.THROTTLE", "fixed", "u"))
	assert.Equal(t, []int64{0, 2, 0, -1, 60}, call(t, c, "POLICY.THROTTLE", "fixed", "u"))
	ns, ss := mixed(t, c, "POLICY.THROTTLE", "fixed", "u", "HEADERS")
	assert.Equal(t, []int64{1, 2, 0, 1, 60}, ns)
	assert.Equal(t, []string{`"fixed-1s";q=2;w=1, "fixed-60s";q=3;w=60`, `"fixed-1s";r=0;t=1, "fixed-60s";r=1;t=60`}, ss)
	setClock(t, c, epoch+1_000_000_000) // the next one-second window
	assert.Equal(t, []int64{0, 3, 0, -1, 59}, call(t, c, "POLICY.THROTTLE", "fixed", "u"))
	assert.Equal(t, []int64{1, 3, 0, 59, 59}, call(t, c, "POLICY.THROTTLE", "fixed", "u"))

	setClock(t, c, epoch)
	assert.Equal(t, []int64{0, 10, 0, -1, 120}, call(t, c, "POLICY.THROTTLE", "sliding", "u", 10))
	setClock(t, c, epoch+90e9) // half the previous window still weighs: 5 of 10
	assert.Equal(t, []int64{0, 10, 4, -1, 90}, call(t, c, "POLICY.THROTTLE", "sliding", "u"))
}

func TestPolicyCommandsErrorsAndIntrospection(t *testing.T) {
	ts := startPolicyServer(t)
	c := ts.client(t, 3)
	ctx := context.Background()
	for _, tc := range []struct {
		args []any
		want string
	}{
		{[]any{"POLICY.THROTTLE", "nope", "k"}, "ERR no such policy 'nope'"},
		{[]any{"POLICY.THROTTLE", "anon", "k", "x"}, "ERR value is not an integer or out of range"},
		{[]any{"POLICY.THROTTLE", "anon", "k", 1, "x"}, "ERR syntax error"},
		{[]any{"POLICY.THROTTLE", "anon", "k", "HEADERS", 1}, "ERR syntax error"},
		{[]any{"POLICY.THROTTLE", "anon"}, "ERR wrong number of arguments for 'policy.throttle' command"},
		{[]any{"POLICY.GET"}, "ERR wrong number of arguments for 'policy.get' command"},
	} {
		err := c.Do(ctx, tc.args...).Err()
		require.Error(t, err, "%v", tc.args)
		assert.Equal(t, tc.want, err.Error(), "%v", tc.args)
	}
	names, err := c.Do(ctx, "POLICY.LIST").StringSlice()
	require.NoError(t, err)
	assert.Equal(t, []string{"anon", "api", "fixed", "sliding"}, names)
	got, err := c.Do(ctx, "POLICY.GET", "api").Result()
	require.NoError(t, err)
	assert.Equal(t, map[any]any{"name": "api", "algorithm": "gcra", "limit": "2/second; 3/minute",
		"overrides": map[any]any{"tenant:acme": "100/second"}}, got)
	_, err = c.Do(ctx, "POLICY.GET", "nope").Result()
	assert.ErrorIs(t, err, redisNil)
	keys, err := c.CommandGetKeys(ctx, "POLICY.THROTTLE", "anon", "ip:1", "HEADERS").Result()
	require.NoError(t, err)
	assert.Equal(t, []string{"ip:1"}, keys)

	// Reloading swaps the set; nil removes every policy.
	ts.srv.SetPolicies(nil)
	names, err = c.Do(ctx, "POLICY.LIST").StringSlice()
	require.NoError(t, err)
	assert.Empty(t, names)
}
