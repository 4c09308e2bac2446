package httpratesluice_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/httprate"
	"github.com/redis/go-redis/v9"
	"github.com/sluicehq/sluice/client/httpratesluice"
	"github.com/sluicehq/sluice/client/sluicetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The windows are an hour long: the tests' requests, made within a second
// or so, never straddle one of httprate's window boundaries in practice,
// and if they do the previous window's count still weighs almost fully.
const window = time.Hour

func newRedis(t *testing.T, addr string) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// clientIPKey is the README's key: the TCP peer, IPv6 by /64.
func clientIPKey(r *http.Request) (string, error) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return "", err
	}
	return httprate.CanonicalizeIP(host), nil
}

func hello(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(".")) }

func get(h http.Handler, path, remote string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.RemoteAddr = remote
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// instance is one process of a service: its own mux, its own httprate
// limiter and, with Sluice, its own connection.
func instance(counter httprate.LimitCounter, options ...httprate.Option) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", hello)
	mux.HandleFunc("/other", hello)
	options = append(options, httprate.WithLimitCounter(counter))
	return httprate.LimitBy(5, window, clientIPKey, options...)(mux)
}

// TestReadmeLimitByIP: httprate's README example (100 per minute by client
// IP, here 5 per hour) with the counter switched to Sluice.
func TestReadmeLimitByIP(t *testing.T) {
	srv := sluicetest.Start(t)
	h := instance(httpratesluice.NewCounter(newRedis(t, srv.Addr)))
	for i := range 5 {
		w := get(h, "/", "192.0.2.1:1000")
		require.Equal(t, http.StatusOK, w.Code, i)
		assert.Equal(t, fmt.Sprint(4-i), w.Header().Get("X-RateLimit-Remaining"))
	}
	w := get(h, "/", "192.0.2.1:1000")
	assert.Equal(t, http.StatusTooManyRequests, w.Code)
	assert.Equal(t, "5", w.Header().Get("X-RateLimit-Limit"))
	assert.Equal(t, "0", w.Header().Get("X-RateLimit-Remaining"))
	assert.Equal(t, "3600", w.Header().Get("Retry-After"))
	assert.Equal(t, http.StatusOK, get(h, "/", "192.0.2.2:1000").Code, "another client")
}

// TestInstancesShareOneBudget: two instances of a service, each with its
// own limiter and connection, share one budget through Sluice. With
// httprate's default in-memory counter each would allow 5 of its own.
func TestInstancesShareOneBudget(t *testing.T) {
	srv := sluicetest.Start(t)
	a := instance(httpratesluice.NewCounter(newRedis(t, srv.Addr)))
	b := instance(httpratesluice.NewCounter(newRedis(t, srv.Addr)))
	var codes []int
	for _, h := range []http.Handler{a, a, a, b, b, b, a, b} {
		codes = append(codes, get(h, "/", "192.0.2.7:1").Code)
	}
	assert.Equal(t, []int{200, 200, 200, 200, 200, 429, 429, 429}, codes)

	local := []http.Handler{instance(httprate.NewLocalLimitCounter(window)), instance(httprate.NewLocalLimitCounter(window))}
	codes = codes[:0]
	for _, h := range []http.Handler{local[0], local[0], local[0], local[1], local[1], local[1], local[0], local[1]} {
		codes = append(codes, get(h, "/", "192.0.2.7:1").Code)
	}
	assert.Equal(t, []int{200, 200, 200, 200, 200, 200, 200, 200}, codes, "in-memory counters: each instance its own budget")
}

// TestReadmeUseCases: the README's other uses, on Sluice: by IP and
// endpoint, by payload with RespondOnLimit, a custom limit response, a
// custom error response when Sluice cannot be reached, custom headers.
func TestReadmeUseCases(t *testing.T) {
	srv := sluicetest.Start(t)
	rdb := newRedis(t, srv.Addr)

	t.Run("ip and endpoint", func(t *testing.T) {
		mux := http.NewServeMux()
		mux.HandleFunc("/", hello)
		h := httprate.LimitBy(2, window, httprate.JoinKeys(clientIPKey, httprate.KeyByEndpoint),
			httprate.WithLimitCounter(httpratesluice.NewCounter(rdb)))(mux)
		codes := []int{get(h, "/a", "192.0.2.3:1").Code, get(h, "/a", "192.0.2.3:1").Code, get(h, "/a", "192.0.2.3:1").Code, get(h, "/b", "192.0.2.3:1").Code}
		assert.Equal(t, []int{200, 200, 429, 200}, codes)
	})

	t.Run("payload", func(t *testing.T) {
		login := httprate.NewRateLimiter(2, window, httprate.WithLimitCounter(httpratesluice.NewCounter(rdb)))
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var p struct{ Username string }
			if json.NewDecoder(r.Body).Decode(&p) != nil || p.Username == "" {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			if login.RespondOnLimit(w, r, p.Username) {
				return
			}
			_, _ = w.Write([]byte("welcome"))
		})
		post := func(user string) int {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(`{"Username":"`+user+`"}`)))
			return w.Code
		}
		assert.Equal(t, []int{200, 200, 429, 200}, []int{post("ann"), post("ann"), post("ann"), post("bob")})
	})

	t.Run("limit handler and headers", func(t *testing.T) {
		h := instance(httpratesluice.NewCounter(rdb),
			httprate.WithLimitHandler(func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, `{"error": "Rate-limited. Please, slow down."}`, http.StatusTooManyRequests)
			}),
			httprate.WithResponseHeaders(httprate.ResponseHeaders{Limit: "X-Quota", Remaining: "X-Quota-Left"}))
		var w *httptest.ResponseRecorder
		for range 6 {
			w = get(h, "/", "192.0.2.4:1")
		}
		assert.Equal(t, http.StatusTooManyRequests, w.Code)
		assert.Equal(t, "{\"error\": \"Rate-limited. Please, slow down.\"}\n", w.Body.String())
		assert.Equal(t, []string{"5", "0", ""}, []string{w.Header().Get("X-Quota"), w.Header().Get("X-Quota-Left"), w.Header().Get("Retry-After")})
	})

	t.Run("error handler", func(t *testing.T) {
		dead := redis.NewClient(&redis.Options{Addr: closedAddr(t), MaxRetries: -1, DialTimeout: time.Second})
		t.Cleanup(func() { _ = dead.Close() })
		h := instance(httpratesluice.NewCounter(dead), httprate.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
			http.Error(w, fmt.Sprintf(`{"error": %q}`, err), http.StatusPreconditionRequired)
		}))
		w := get(h, "/", "192.0.2.5:1")
		assert.Equal(t, http.StatusPreconditionRequired, w.Code)
		assert.Contains(t, w.Body.String(), "httpratesluice: COUNTER.GET")
	})
}

// TestCounterWindows: a window's count serves as the previous window's
// in the next, and is gone after two windows of the server's clock.
func TestCounterWindows(t *testing.T) {
	srv := sluicetest.Start(t)
	srv.FreezeClock(t, sluicetest.Epoch)
	c := httpratesluice.NewCounter(newRedis(t, srv.Addr))
	c.Config(5, time.Minute)
	w0 := time.Unix(0, sluicetest.Epoch)
	w1 := w0.Add(time.Minute)
	require.NoError(t, c.Increment("k", w0))
	require.NoError(t, c.IncrementBy("k", w0, 3))
	curr, prev, err := c.Get("k", w0, w0.Add(-time.Minute))
	require.NoError(t, err)
	assert.Equal(t, []int{4, 0}, []int{curr, prev})
	srv.FreezeClock(t, sluicetest.Epoch+int64(time.Minute))
	require.NoError(t, c.Increment("k", w1))
	curr, prev, err = c.Get("k", w1, w0)
	require.NoError(t, err)
	assert.Equal(t, []int{1, 4}, []int{curr, prev})
	srv.FreezeClock(t, sluicetest.Epoch+int64(2*time.Minute))
	curr, prev, err = c.Get("k", w1.Add(time.Minute), w1)
	require.NoError(t, err)
	assert.Equal(t, []int{0, 1}, []int{curr, prev})
	_, prev, err = c.Get("k", w1, w0)
	require.NoError(t, err)
	assert.Zero(t, prev, "w0's count expired two windows after it began")

	unconfigured := httpratesluice.NewCounter(newRedis(t, srv.Addr))
	assert.ErrorContains(t, unconfigured.Increment("k", w0), "Config was not called")
	c.Timeout = time.Nanosecond
	_, _, err = c.Get("k", w1, w0)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

// closedAddr is a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}
