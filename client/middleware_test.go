package client_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sluicehq/sluice/client"
	"github.com/sluicehq/sluice/client/sluicetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	anon  = client.Limit{Burst: 49, Count: 50, Period: time.Hour}    // 50 at once, then one per 72 s
	keyed = client.Limit{Burst: 499, Count: 5000, Period: time.Hour} // 500 at once, then one per 0.72 s
)

func ok(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }

// newMiddleware: API-key holders get the keyed limit, everyone else is
// limited per client IP, trusting 10.0.0.0/8 as proxies.
func newMiddleware(t *testing.T, sl *client.Client, mod func(*client.MiddlewareConfig)) http.Handler {
	t.Helper()
	proxies, err := client.ParsePrefixes("10.0.0.0/8")
	require.NoError(t, err)
	cfg := client.MiddlewareConfig{
		Client: sl,
		Prefix: "http:",
		Rules: []client.Rule{
			{Name: "keyed", Limit: keyed, Key: client.Join("@", client.APIKey("X-API-Key"), client.ClientIP(proxies...))},
			{Name: "anon", Limit: anon, Key: client.ClientIP(proxies...)},
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	m, err := client.NewMiddleware(cfg)
	require.NoError(t, err)
	return m.Wrap(http.HandlerFunc(ok))
}

func get(h http.Handler, remote string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "/items", nil)
	r.RemoteAddr = remote
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func rateHeaders(w *httptest.ResponseRecorder) map[string]string {
	out := map[string]string{}
	for _, k := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "RateLimit", "RateLimit-Policy", "Retry-After"} {
		if v := w.Header().Get(k); v != "" {
			out[k] = v
		}
	}
	return out
}

func frozenServer(t *testing.T) (*sluicetest.Server, *client.Client) {
	t.Helper()
	srv := sluicetest.Start(t)
	srv.FreezeClock(t, sluicetest.Epoch)
	return srv, client.New(newRedis(t, srv.Addr, 3))
}

func TestMiddlewareAnonymousHeadersAndExhaustion(t *testing.T) {
	srv, sl := frozenServer(t)
	h := newMiddleware(t, sl, nil)

	w := get(h, "192.0.2.7:5555")
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, map[string]string{
		"X-RateLimit-Limit":     "50",
		"X-RateLimit-Remaining": "49",
		"X-RateLimit-Reset":     "72",
		"RateLimit-Policy":      `"anon";q=50;w=3600`,
		"RateLimit":             `"anon";r=49;t=72`,
	}, rateHeaders(w))

	for i := 2; i <= 50; i++ {
		w = get(h, "192.0.2.7:5555")
		require.Equal(t, http.StatusOK, w.Code, "request %d", i)
		require.Equal(t, strconv.Itoa(50-i), w.Header().Get("X-RateLimit-Remaining"), "request %d", i)
	}
	w = get(h, "192.0.2.7:5555")
	assert.Equal(t, http.StatusTooManyRequests, w.Code)
	assert.Equal(t, map[string]string{
		"X-RateLimit-Limit":     "50",
		"X-RateLimit-Remaining": "0",
		"X-RateLimit-Reset":     "3600",
		"RateLimit-Policy":      `"anon";q=50;w=3600`,
		"RateLimit":             `"anon";r=0;t=3600`,
		"Retry-After":           "72",
	}, rateHeaders(w))

	// Another client has its own budget.
	w = get(h, "192.0.2.8:5555")
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, "49", w.Header().Get("X-RateLimit-Remaining"))

	// 72 s later one more fits.
	srv.FreezeClock(t, sluicetest.Epoch+int64(72*time.Second))
	w = get(h, "192.0.2.7:5555")
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, `"anon";r=0;t=3600`, w.Header().Get("RateLimit"))
}

func TestMiddlewareAPIKeyRule(t *testing.T) {
	_, sl := frozenServer(t)
	h := newMiddleware(t, sl, nil)
	w := get(h, "192.0.2.7:5555", "X-API-Key", "secret-1")
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, map[string]string{
		"X-RateLimit-Limit":     "500",
		"X-RateLimit-Remaining": "499",
		"X-RateLimit-Reset":     "1", // 0.72 s, rounded up
		"RateLimit-Policy":      `"keyed";q=5000;w=3600`,
		"RateLimit":             `"keyed";r=499;t=1`,
	}, rateHeaders(w))
	// A second key, and the same key from another address, are separate.
	assert.Equal(t, "499", get(h, "192.0.2.7:5555", "X-API-Key", "secret-2").Header().Get("X-RateLimit-Remaining"))
	assert.Equal(t, "499", get(h, "192.0.2.9:5555", "X-API-Key", "secret-1").Header().Get("X-RateLimit-Remaining"))
	assert.Equal(t, "498", get(h, "192.0.2.7:5555", "X-API-Key", "secret-1").Header().Get("X-RateLimit-Remaining"))
	// The anonymous budget of that address is untouched.
	assert.Equal(t, "49", get(h, "192.0.2.7:5555").Header().Get("X-RateLimit-Remaining"))
}

// Behind a trusted proxy the client is taken from X-Forwarded-For; from
// anywhere else the header is ignored.
func TestMiddlewareForwardedFor(t *testing.T) {
	_, sl := frozenServer(t)
	h := newMiddleware(t, sl, nil)
	assert.Equal(t, "49", get(h, "10.0.0.2:80", "X-Forwarded-For", "198.51.100.1").Header().Get("X-RateLimit-Remaining"))
	assert.Equal(t, "49", get(h, "10.0.0.2:80", "X-Forwarded-For", "198.51.100.2").Header().Get("X-RateLimit-Remaining"))
	assert.Equal(t, "48", get(h, "10.0.0.3:80", "X-Forwarded-For", "203.0.113.9, 198.51.100.1, 10.1.1.1").Header().Get("X-RateLimit-Remaining"))
	// An untrusted peer's header is ignored: both count against 192.0.2.50.
	assert.Equal(t, "49", get(h, "192.0.2.50:80", "X-Forwarded-For", "198.51.100.3").Header().Get("X-RateLimit-Remaining"))
	assert.Equal(t, "48", get(h, "192.0.2.50:80", "X-Forwarded-For", "198.51.100.4").Header().Get("X-RateLimit-Remaining"))
}

func TestClientIP(t *testing.T) {
	trusted, err := client.ParsePrefixes("10.0.0.0/8", "2001:db8::/32", "192.0.2.1")
	require.NoError(t, err)
	for _, tc := range []struct {
		name, remote, xff string
		trusted           []netip.Prefix
		want              string
	}{
		{"no proxies configured", "198.51.100.1:1234", "203.0.113.1", nil, "198.51.100.1"},
		{"untrusted peer", "198.51.100.1:1234", "203.0.113.1", trusted, "198.51.100.1"},
		{"trusted peer, no header", "10.0.0.1:1234", "", trusted, "10.0.0.1"},
		{"trusted peer", "10.0.0.1:1234", "203.0.113.1", trusted, "203.0.113.1"},
		{"single trusted address", "192.0.2.1:1234", "203.0.113.1", trusted, "203.0.113.1"},
		{"spoofed entries left of the client", "10.0.0.1:1234", "1.1.1.1, 203.0.113.1", trusted, "203.0.113.1"},
		{"chain of trusted proxies", "10.0.0.1:1234", "1.1.1.1, 203.0.113.1, 10.9.9.9, 10.8.8.8", trusted, "203.0.113.1"},
		{"all trusted", "10.0.0.1:1234", "10.2.2.2, 10.3.3.3", trusted, "10.2.2.2"},
		{"garbage stops the walk", "10.0.0.1:1234", "203.0.113.1, nonsense, 10.3.3.3", trusted, "10.3.3.3"},
		{"garbage at once", "10.0.0.1:1234", "nonsense", trusted, "10.0.0.1"},
		{"ports and brackets in the header", "10.0.0.1:1234", "[2001:db9::1]:443", trusted, "2001:db9::1"},
		{"entry with port", "10.0.0.1:1234", "203.0.113.1:8080", trusted, "203.0.113.1"},
		{"IPv6 peer", "[2001:db8::5]:1234", "203.0.113.1", trusted, "203.0.113.1"},
		{"IPv4-mapped peer", "[::ffff:198.51.100.1]:1234", "", nil, "198.51.100.1"},
		{"unix socket", "@", "203.0.113.1", trusted, "@"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tc.remote
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			got, ok := client.ClientIP(tc.trusted...)(r)
			assert.True(t, ok)
			assert.Equal(t, tc.want, got)
		})
	}
	// Several header lines form one list.
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "10.0.0.1:1"
	r.Header.Add("X-Forwarded-For", "203.0.113.1")
	r.Header.Add("X-Forwarded-For", "10.5.5.5")
	got, _ := client.ClientIP(trusted...)(r)
	assert.Equal(t, "203.0.113.1", got)

	_, err = client.ParsePrefixes("10.0.0.0/33")
	assert.Error(t, err)
	_, err = client.ParsePrefixes("proxy")
	assert.Error(t, err)
}

func TestKeyFuncs(t *testing.T) {
	type ctxKey struct{}
	user := client.User(func(r *http.Request) string { s, _ := r.Context().Value(ctxKey{}).(string); return s })
	r := httptest.NewRequest(http.MethodPost, "/a/b", nil)
	r.RemoteAddr = "192.0.2.1:1"

	_, ok := user(r)
	assert.False(t, ok)
	_, ok = client.APIKey("X-API-Key")(r)
	assert.False(t, ok)
	_, ok = client.Header("X-Tenant")(r)
	assert.False(t, ok)
	k, ok := client.Route()(r)
	assert.True(t, ok)
	assert.Equal(t, "POST /a/b", k)

	k, ok = client.FirstOf(user, client.ClientIP())(r)
	assert.True(t, ok)
	assert.Equal(t, "192.0.2.1", k)
	_, ok = client.Join("@", user, client.ClientIP())(r)
	assert.False(t, ok)

	r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, "alice"))
	r.Header.Set("X-API-Key", "secret")
	r.Header.Set("X-Tenant", "acme")
	k, _ = client.Join("@", user, client.ClientIP())(r)
	assert.Equal(t, "alice@192.0.2.1", k)
	k, _ = client.Header("X-Tenant")(r)
	assert.Equal(t, "acme", k)
	k, _ = client.APIKey("X-API-Key")(r)
	assert.Equal(t, "2bb80d537b1da3e38bd30361aa855686", k, "sha256(secret), first 16 bytes")
	assert.NotContains(t, k, "secret")
}

// Route uses the ServeMux pattern when the middleware wraps a routed handler.
func TestMiddlewarePerRoute(t *testing.T) {
	_, sl := frozenServer(t)
	m, err := client.NewMiddleware(client.MiddlewareConfig{Client: sl, Rules: []client.Rule{
		{Name: "route", Limit: client.Limit{Burst: 1, Count: 1, Period: time.Minute}, Key: client.Join(" ", client.ClientIP(), client.Route())},
	}})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("GET /items/{id}", m.Wrap(http.HandlerFunc(ok)))
	mux.Handle("GET /other", m.Wrap(http.HandlerFunc(ok)))
	do := func(path string) int {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.RemoteAddr = "192.0.2.1:1"
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w.Code
	}
	// /items/1 and /items/2 share the pattern's budget of 2; /other has its own.
	assert.Equal(t, []int{200, 200, 429, 200}, []int{do("/items/1"), do("/items/2"), do("/items/3"), do("/other")})
}

func TestMiddlewareCustomLimitedHandler(t *testing.T) {
	_, sl := frozenServer(t)
	h := newMiddleware(t, sl, func(c *client.MiddlewareConfig) {
		c.Rules = []client.Rule{{Name: "tiny", Limit: client.Limit{Count: 1, Period: time.Second}, Key: client.ClientIP(), Quantity: 1}}
		c.Limited = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"error":"slow down"}`))
		})
	})
	assert.Equal(t, http.StatusOK, get(h, "192.0.2.1:1").Code)
	w := get(h, "192.0.2.1:1")
	assert.Equal(t, http.StatusTooManyRequests, w.Code)
	assert.Equal(t, `{"error":"slow down"}`, w.Body.String())
	assert.Equal(t, "1", w.Header().Get("Retry-After"))
}

// A request no rule applies to is served unlimited.
func TestMiddlewareNoRuleApplies(t *testing.T) {
	d := &countingDoer{}
	m, err := client.NewMiddleware(client.MiddlewareConfig{Client: client.New(d), Rules: []client.Rule{
		{Name: "keyed", Limit: keyed, Key: client.APIKey("X-API-Key")},
	}})
	require.NoError(t, err)
	w := get(m.Wrap(http.HandlerFunc(ok)), "192.0.2.1:1")
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Empty(t, rateHeaders(w))
	assert.Zero(t, d.n)
}

type countingDoer struct{ n int }

func (c *countingDoer) Do(ctx context.Context, args ...any) *redis.Cmd {
	c.n++
	return redis.NewCmd(ctx, args...)
}

func TestNewMiddlewareValidates(t *testing.T) {
	sl := client.New(&countingDoer{})
	good := client.Rule{Name: "r", Limit: anon, Key: client.ClientIP()}
	for name, cfg := range map[string]client.MiddlewareConfig{
		"no client":     {Rules: []client.Rule{good}},
		"no rules":      {Client: sl},
		"no name":       {Client: sl, Rules: []client.Rule{{Limit: anon, Key: client.ClientIP()}}},
		"bad name":      {Client: sl, Rules: []client.Rule{{Name: "a\nb", Limit: anon, Key: client.ClientIP()}}},
		"duplicate":     {Client: sl, Rules: []client.Rule{good, good}},
		"no key":        {Client: sl, Rules: []client.Rule{{Name: "r", Limit: anon}}},
		"bad limit":     {Client: sl, Rules: []client.Rule{{Name: "r", Limit: client.Limit{Count: 1, Period: time.Millisecond}, Key: client.ClientIP()}}},
		"bad mode":      {Client: sl, Rules: []client.Rule{good}, OnFailure: 7},
		"two kinds":     {Client: sl, Rules: []client.Rule{{Name: "r", Limit: anon, Policy: "p", Key: client.ClientIP()}}},
		"no limit":      {Client: sl, Rules: []client.Rule{{Name: "r", Key: client.ClientIP()}}},
		"bad limits":    {Client: sl, Rules: []client.Rule{{Name: "r", Limits: []client.Limit{anon, {Count: 0, Period: time.Second}}, Key: client.ClientIP()}}},
		"negative wait": {Client: sl, Rules: []client.Rule{good}, Timeout: -time.Second},
	} {
		_, err := client.NewMiddleware(cfg)
		assert.Error(t, err, name)
	}
}

// closedAddr is a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// silentAddr is a loopback address that accepts connections and never answers.
func silentAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

func TestMiddlewareFailureModes(t *testing.T) {
	for _, where := range []string{"refused", "silent"} {
		for _, mode := range []client.FailureMode{client.FailOpen, client.FailClosed} {
			t.Run(where+"/"+mode.String(), func(t *testing.T) {
				addr := closedAddr(t)
				if where == "silent" {
					addr = silentAddr(t)
				}
				// Default go-redis timeouts (3 s reads): the middleware's own
				// timeout must still answer quickly.
				sl := client.New(newRedis(t, addr, 3))
				var errs []error
				var mu sync.Mutex
				h := newMiddleware(t, sl, func(c *client.MiddlewareConfig) {
					c.Timeout = 50 * time.Millisecond
					c.OnFailure = mode
					c.OnError = func(_ *http.Request, err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }
				})
				start := time.Now()
				w := get(h, "192.0.2.1:1")
				assert.Less(t, time.Since(start), 2*time.Second)
				if mode == client.FailOpen {
					assert.Equal(t, http.StatusOK, w.Code)
					assert.Empty(t, rateHeaders(w))
				} else {
					assert.Equal(t, http.StatusServiceUnavailable, w.Code)
					assert.Equal(t, map[string]string{"Retry-After": "1"}, rateHeaders(w))
				}
				mu.Lock()
				assert.Len(t, errs, 1)
				mu.Unlock()
			})
		}
	}
	assert.Equal(t, "FailureMode(7)", client.FailureMode(7).String())
}
