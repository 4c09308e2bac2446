package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sluicehq/sluice/client/sluicetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// start serves the example over real HTTP on loopback, backed by an
// in-process Sluice with its clock frozen.
func start(t *testing.T, cfg config) (*sluicetest.Server, *httptest.Server) {
	t.Helper()
	sl := sluicetest.Start(t)
	sl.FreezeClock(t, sluicetest.Epoch)
	rdb := redis.NewClient(&redis.Options{Addr: sl.Addr, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	if cfg.apiKeys == nil {
		cfg.apiKeys = map[string]string{"demo-key": "demo"}
	}
	h, err := newHandler(cfg, rdb)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return sl, srv
}

func get(t *testing.T, srv *httptest.Server, path string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(body)
}

func TestAnonymous(t *testing.T) {
	sl, srv := start(t, config{})
	resp, body := get(t, srv, "/")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.JSONEq(t, `{"hello":"anonymous"}`, body)
	assert.Equal(t, "50", resp.Header.Get("X-RateLimit-Limit"))
	assert.Equal(t, "49", resp.Header.Get("X-RateLimit-Remaining"))
	assert.Equal(t, "72", resp.Header.Get("X-RateLimit-Reset"))
	assert.Equal(t, `"anon";q=50;w=3600`, resp.Header.Get("RateLimit-Policy"))
	assert.Equal(t, `"anon";r=49;t=72`, resp.Header.Get("RateLimit"))

	for i := 2; i <= 50; i++ {
		resp, _ = get(t, srv, "/items")
		require.Equal(t, http.StatusOK, resp.StatusCode, "request %d", i)
	}
	resp, _ = get(t, srv, "/items")
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assert.Equal(t, "72", resp.Header.Get("Retry-After"))
	assert.Equal(t, `"anon";r=0;t=3600`, resp.Header.Get("RateLimit"))

	sl.FreezeClock(t, sluicetest.Epoch+int64(72*time.Second))
	resp, _ = get(t, srv, "/")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestAPIKey(t *testing.T) {
	_, srv := start(t, config{})
	resp, body := get(t, srv, "/", "X-API-Key", "demo-key")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.JSONEq(t, `{"hello":"demo"}`, body)
	assert.Equal(t, "500", resp.Header.Get("X-RateLimit-Limit"))
	assert.Equal(t, `"user";q=5000;w=3600`, resp.Header.Get("RateLimit-Policy"))
	assert.Equal(t, `"user";r=499;t=1`, resp.Header.Get("RateLimit"))

	// A wrong key is refused, after it was counted as anonymous.
	resp, _ = get(t, srv, "/", "X-API-Key", "guess")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Equal(t, `"anon";r=49;t=72`, resp.Header.Get("RateLimit"))
	resp, _ = get(t, srv, "/")
	assert.Equal(t, `"anon";r=48;t=144`, resp.Header.Get("RateLimit"))
}

// The test client connects from 127.0.0.1; trusting it as a proxy makes
// X-Forwarded-For the client address.
func TestTrustedProxy(t *testing.T) {
	_, srv := start(t, config{trustedProxies: "127.0.0.1/32"})
	for _, ip := range []string{"203.0.113.1", "203.0.113.2"} {
		resp, _ := get(t, srv, "/", "X-Forwarded-For", "6.6.6.6, "+ip)
		assert.Equal(t, "49", resp.Header.Get("X-RateLimit-Remaining"), ip)
	}
	_, untrusted := start(t, config{})
	for _, want := range []string{"49", "48"} {
		resp, _ := get(t, untrusted, "/", "X-Forwarded-For", "203.0.113."+want)
		assert.Equal(t, want, resp.Header.Get("X-RateLimit-Remaining"))
	}
}

func TestSluiceDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	for _, failClosed := range []bool{false, true} {
		rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		t.Cleanup(func() { _ = rdb.Close() })
		h, err := newHandler(config{failClosed: failClosed, timeout: time.Second}, rdb)
		require.NoError(t, err)
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		h.ServeHTTP(w, r)
		if failClosed {
			assert.Equal(t, http.StatusServiceUnavailable, w.Code)
		} else {
			assert.Equal(t, http.StatusOK, w.Code)
			assert.Empty(t, w.Header().Get("RateLimit"))
		}
	}
}

func TestConfigErrors(t *testing.T) {
	_, err := parseKeys("a:b, c")
	assert.Error(t, err)
	keys, err := parseKeys("a:b, c:d,")
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"a": "b", "c": "d"}, keys)
	_, err = newHandler(config{trustedProxies: "not-a-cidr"}, nil)
	assert.Error(t, err)
}
