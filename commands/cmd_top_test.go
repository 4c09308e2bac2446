package commands

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/sluicehq/sluice/acl"
	"github.com/sluicehq/sluice/topkeys"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// topPair is one [key, count] of THROTTLE.TOP.
type topPair struct {
	Key   string
	Count int64
}

// top runs THROTTLE.TOP with args and decodes its pairs.
func top(t *testing.T, c interface {
	Do(context.Context, ...any) *redis.Cmd
}, args ...any) []topPair {
	t.Helper()
	v, err := c.Do(context.Background(), append([]any{"THROTTLE.TOP"}, args...)...).Result()
	require.NoError(t, err)
	arr, ok := v.([]any)
	require.True(t, ok, "reply %#v is not an array", v)
	out := []topPair{}
	for _, x := range arr {
		pair, ok := x.([]any)
		require.True(t, ok && len(pair) == 2, "element %#v is not a pair", x)
		out = append(out, topPair{pair[0].(string), pair[1].(int64)})
	}
	return out
}

// TestThrottleTopZipf drives a Zipf stream of THROTTLE requests through the
// real server on one connection, notes every refusal from the replies (the
// model), and checks THROTTLE.TOP COUNT 10 against it: each reported count
// within the stated error (the sketch's bound, the window's refusals /
// counters per summary, plus four standard deviations of the sampling of a
// busy connection, √(8·t)), the keys the model ranks top 10 with a clear
// margin all present, in RESP2 and RESP3 alike. The sampler draws from the
// frozen clock, so the run is the same every time.
func TestThrottleTopZipf(t *testing.T) {
	ts := startServer(t, true)
	c := ts.client(t, 3)
	ctx := context.Background()
	setClock(t, c, epoch)
	rng := rand.New(rand.NewPCG(22, 7))
	z := rand.NewZipf(rng, 1.2, 1, 4999)
	refused := map[string]int64{}
	var total int64
	const n, batch = 40000, 500
	for done := 0; done < n; done += batch {
		p := c.Pipeline()
		cmds := make([]*redis.Cmd, batch)
		keys := make([]string, batch)
		for i := range batch {
			keys[i] = fmt.Sprintf("ip:10.0.%d", z.Uint64())
			cmds[i] = p.Do(ctx, "THROTTLE", keys[i], 4, 1, 60) // 5 at once, then refused (frozen clock)
		}
		_, err := p.Exec(ctx)
		require.NoError(t, err)
		for i, cmd := range cmds {
			r, err := cmd.Int64Slice()
			require.NoError(t, err)
			if r[0] == 1 {
				refused[keys[i]]++
				total++
			}
		}
	}
	bound := total / int64(topkeys.DefaultCapacity)
	sampling := func(n int64) int64 { return int64(4 * math.Sqrt(float64(topkeys.SampleEvery*n))) }
	want := make([]topPair, 0, len(refused))
	for k, v := range refused {
		want = append(want, topPair{k, v})
	}
	slices.SortFunc(want, func(a, b topPair) int { return int(b.Count - a.Count) })
	for _, proto := range []int{2, 3} {
		got := top(t, ts.client(t, proto), "COUNT", 10)
		require.Len(t, got, 10)
		for _, e := range got {
			diff := e.Count - refused[e.Key]
			assert.LessOrEqual(t, max(diff, -diff), bound+sampling(refused[e.Key]), "%s: reported %d, true %d", e.Key, e.Count, refused[e.Key])
		}
		for i := range 10 {
			if want[i].Count-want[10].Count > 2*bound+sampling(want[i].Count)+sampling(want[10].Count) {
				assert.True(t, slices.ContainsFunc(got, func(p topPair) bool { return p.Key == want[i].Key }), "true rank %d %v missing", i+1, want[i])
			}
		}
		assert.Equal(t, want[0].Key, got[0].Key)
		t.Logf("RESP%d: refusals %d, stated bound %d; top 3 %v, true %v", proto, total, bound, got[:3], want[:3])
	}
	res := ts.srv.TopKeys().Top(topkeys.Query{Now: epoch, Window: 60e9, Outcome: topkeys.Limited, Count: 10})
	assert.InDelta(t, total, res.Decisions, float64(sampling(total)), "the sampled refusals add up to about the true number")
	assert.LessOrEqual(t, ts.srv.TopKeys().Memory(), ts.srv.TopKeys().MaxMemory())
}

// TestThrottleTopTenants: a tenant sees only the keys its ACL key patterns
// allow, and no key cut short (its whole might not match); a user with
// every key sees all. COUNT applies after the filter.
func TestThrottleTopTenants(t *testing.T) {
	us := acl.NewUsers("adminpw")
	require.NoError(t, us.Load(strings.NewReader(tenantUsers+"user t3 on >p3 ~* +@throttle +@connection\n"), Catalog()))
	ts := startServerWith(t, Config{Users: us, EnableDebug: true})
	admin := redis.NewClient(&redis.Options{Addr: ts.addr, Password: "adminpw", MaxRetries: -1})
	t.Cleanup(func() { _ = admin.Close() })
	ctx := context.Background()
	setClock(t, admin, epoch)
	long := "t1:" + strings.Repeat("x", topkeys.DefaultMaxKeyLen)
	for key, refusals := range map[string]int{"t1:a": 3, "t2:b": 5, "t1:c": 1, long: 2, "other": 4} {
		for range refusals + 1 {
			require.NoError(t, admin.Do(ctx, "THROTTLE", key, 0, 1, 60).Err())
		}
	}
	cut := long[:topkeys.DefaultMaxKeyLen]
	assert.Equal(t, []topPair{{"t2:b", 5}, {"other", 4}, {"t1:a", 3}, {cut, 2}, {"t1:c", 1}}, top(t, admin))
	t1, t2, t3 := login(t, ts, "t1", "p1"), login(t, ts, "t2", "p2"), login(t, ts, "t3", "p3")
	assert.Equal(t, []topPair{{"t1:a", 3}, {"t1:c", 1}}, top(t, t1))
	assert.Equal(t, []topPair{{"t1:a", 3}}, top(t, t1, "COUNT", 1))
	assert.Equal(t, []topPair{{"t2:b", 5}}, top(t, t2))
	assert.Equal(t, []topPair{{"t1:a", 1}, {"t1:c", 1}}, top(t, t1, "ALLOWED"), "the cut key hidden here too")
	assert.Len(t, top(t, t3), 5, "~* sees every key, cut short or not")
}

// TestThrottleTopPolicies: POLICY name lists that policy's decisions by the
// caller's key; without POLICY they add up with the commands' decisions of
// the same key; a loaded policy never used lists nothing, one neither loaded
// nor used is an error; THROTTLE.MULTI and THROTTLE.WINDOW count too.
func TestThrottleTopPolicies(t *testing.T) {
	ts := startPolicyServer(t)
	c := ts.client(t, 2)
	ctx := context.Background()
	setClock(t, c, epoch)
	for range 5 { // api: 2/second, so 3 refusals
		require.NoError(t, c.Do(ctx, "POLICY.THROTTLE", "api", "u1").Err())
	}
	for range 3 { // 1 refusal
		require.NoError(t, c.Do(ctx, "THROTTLE", "u1", 1, 1, 60).Err())
	}
	for range 2 { // 1 refusal of u2
		require.NoError(t, c.Do(ctx, "THROTTLE.MULTI", 1, "u2", 0, 1, 60, "free", 100, 1, 1).Err())
	}
	for range 3 { // 2 refusals
		require.NoError(t, c.Do(ctx, "THROTTLE.WINDOW", "w", 1, 60).Err())
	}
	assert.Equal(t, []topPair{{"u1", 3}}, top(t, c, "POLICY", "api"))
	assert.Equal(t, []topPair{{"u1", 2}}, top(t, c, "POLICY", "api", "ALLOWED"))
	assert.Equal(t, []topPair{{"u1", 4}, {"w", 2}, {"u2", 1}}, top(t, c))
	assert.Equal(t, []topPair{}, top(t, c, "POLICY", "anon"), "loaded, never used")
	assert.EqualError(t, c.Do(ctx, "THROTTLE.TOP", "POLICY", "gone").Err(), "ERR no such policy 'gone'")
	// A policy removed by a reload still lists its decisions in the window.
	ts.srv.SetPolicies(nil)
	assert.Equal(t, []topPair{{"u1", 3}}, top(t, c, "POLICY", "api"))
}

// TestThrottleTopOff: with NoTopKeys nothing is recorded and THROTTLE.TOP
// says so.
func TestThrottleTopOff(t *testing.T) {
	ts := startServerWith(t, Config{NoTopKeys: true})
	c := ts.client(t, 2)
	require.NoError(t, c.Do(context.Background(), "THROTTLE", "k", 0, 1, 60).Err())
	assert.EqualError(t, c.Do(context.Background(), "THROTTLE.TOP").Err(), errTopKeysOff)
	assert.Nil(t, ts.srv.TopKeys())
}
