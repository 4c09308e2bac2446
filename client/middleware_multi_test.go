package client_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/sluicehq/sluice/client"
	"github.com/sluicehq/sluice/client/sluicetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMiddlewareSeveralLimits: one rule, two limits charged together
// (THROTTLE.MULTI): a request refused by one limit is charged to neither,
// and the fields list both limits.
func TestMiddlewareSeveralLimits(t *testing.T) {
	srv, sl := frozenServer(t)
	perSecond := client.Limit{Burst: 1, Count: 2, Period: time.Second}
	perMinute := client.Limit{Burst: 4, Count: 5, Period: time.Minute}
	m, err := client.NewMiddleware(client.MiddlewareConfig{Client: sl, Rules: []client.Rule{
		{Name: "api", Limits: []client.Limit{perSecond, perMinute}, Key: client.ClientIP()},
	}})
	require.NoError(t, err)
	h := m.Wrap(http.HandlerFunc(ok))

	w := get(h, "192.0.2.1:1")
	assert.Equal(t, map[string]string{
		"X-RateLimit-Limit":     "2",
		"X-RateLimit-Remaining": "1",
		"X-RateLimit-Reset":     "12",
		"RateLimit-Policy":      `"api-1s";q=2;w=1, "api-60s";q=5;w=60`,
		"RateLimit":             `"api-1s";r=1;t=1, "api-60s";r=4;t=12`,
	}, rateHeaders(w))
	var codes []int
	for s := range 4 {
		srv.FreezeClock(t, sluicetest.Epoch+int64(s)*int64(time.Second))
		for range 2 {
			codes = append(codes, get(h, "192.0.2.1:1").Code)
		}
	}
	// 2 a second until the minute's 5 are spent: refusals charge nothing,
	// so the minute limit holds exactly 5.
	assert.Equal(t, []int{200, 429, 200, 200, 200, 429, 429, 429}, codes)
	w = get(h, "192.0.2.1:1")
	assert.Equal(t, http.StatusTooManyRequests, w.Code)
	assert.Equal(t, `"api-1s";r=2;t=0, "api-60s";r=0;t=57`, w.Header().Get("RateLimit"))
	assert.Equal(t, "9", w.Header().Get("Retry-After"), "the minute limit frees one 12 s after the first")
}

// TestMiddlewarePolicy: a rule naming a server policy charges its limits
// (and honours its per-key overrides); the fields are the server's.
func TestMiddlewarePolicy(t *testing.T) {
	srv := sluicetest.Start(t, sluicetest.PolicyFile("testdata/policies.toml"))
	srv.FreezeClock(t, sluicetest.Epoch)
	sl := client.New(newRedis(t, srv.Addr, 3))
	m, err := client.NewMiddleware(client.MiddlewareConfig{Client: sl, Rules: []client.Rule{
		{Name: "tenant", Policy: "api", Key: client.Header("X-Tenant")},
		{Name: "anon", Policy: "anon", Key: client.ClientIP()},
	}})
	require.NoError(t, err)
	h := m.Wrap(http.HandlerFunc(ok))

	w := get(h, "192.0.2.1:1", "X-Tenant", "tenant:acme")
	assert.Equal(t, map[string]string{
		"X-RateLimit-Limit":     "100",
		"X-RateLimit-Remaining": "99",
		"X-RateLimit-Reset":     "1",
		"RateLimit-Policy":      `"api-1s";q=100;w=1, "api-86400s";q=100000;w=86400`,
		"RateLimit":             `"api-1s";r=99;t=1, "api-86400s";r=99999;t=1`,
	}, rateHeaders(w), "tenant:acme's override")
	for i := range 50 {
		require.Equal(t, http.StatusOK, get(h, "192.0.2.9:1").Code, i)
	}
	w = get(h, "192.0.2.9:1")
	assert.Equal(t, http.StatusTooManyRequests, w.Code)
	assert.Equal(t, `"anon";r=0;t=3600`, w.Header().Get("RateLimit"), "the fixed window of the anon policy")
	assert.Equal(t, "3600", w.Header().Get("Retry-After"))
}
