package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sluicehq/sluice/client"
	"github.com/sluicehq/sluice/client/sluicetest"
)

// exampleServer starts an in-process Sluice whose clock is frozen at
// sluicetest.Epoch, so the examples' output is exact. An Example has no
// testing.TB of its own; exampleTB stands in for one.
func exampleServer() (*sluicetest.Server, func()) {
	tb := &exampleTB{}
	srv := sluicetest.Start(tb)
	srv.FreezeClock(tb, sluicetest.Epoch)
	return srv, tb.cleanup
}

// exampleTB is the testing.TB the examples give sluicetest: Cleanup collects
// functions for cleanup, and Fatalf panics. sluicetest calls only Helper,
// Cleanup and Fatalf; any other method would panic on the nil embedded TB.
type exampleTB struct {
	testing.TB
	cleanups []func()
}

func (e *exampleTB) Helper()                           {}
func (e *exampleTB) Cleanup(f func())                  { e.cleanups = append(e.cleanups, f) }
func (e *exampleTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

func (e *exampleTB) cleanup() {
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
}

// Thirty requests a minute, sixteen of them at once: README's example
// through the Go client.
func ExampleClient_Throttle() {
	srv, stop := exampleServer()
	defer stop()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()

	sl := client.New(rdb)
	ctx := context.Background()
	limit := client.Limit{Burst: 15, Count: 30, Period: time.Minute}
	for i := 1; i <= 17; i++ {
		res, err := sl.Throttle(ctx, "user123", limit, 1)
		if err != nil {
			fmt.Println(err)
			return
		}
		if i <= 2 || i >= 16 {
			fmt.Printf("request %d: limited=%t remaining=%d retry_after=%s reset_after=%s\n",
				i, res.Limited, res.Remaining, res.RetryAfter, res.ResetAfter)
		}
	}
	// Output:
	// request 1: limited=false remaining=15 retry_after=0s reset_after=2s
	// request 2: limited=false remaining=14 retry_after=0s reset_after=4s
	// request 16: limited=false remaining=0 retry_after=0s reset_after=32s
	// request 17: limited=true remaining=0 retry_after=2s reset_after=32s
}

// A quantity of 0 reads a limit without charging it; a negative quantity
// gives requests back.
func ExampleClient_Throttle_peekAndRefund() {
	srv, stop := exampleServer()
	defer stop()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()

	sl := client.New(rdb)
	ctx := context.Background()
	limit := client.Limit{Burst: 4, Count: 1, Period: 10 * time.Second}
	for _, q := range []int64{3, 0, -1, -10} {
		res, err := sl.Throttle(ctx, "upload:7", limit, q)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("quantity %3d: remaining=%d of %d\n", q, res.Remaining, res.Limit)
	}
	// Output:
	// quantity   3: remaining=2 of 5
	// quantity   0: remaining=2 of 5
	// quantity  -1: remaining=3 of 5
	// quantity -10: remaining=5 of 5
}

// Sluice counts periods in whole seconds; Validate says why a Limit would be
// refused before anything is sent.
func ExampleLimit_Validate() {
	for _, l := range []client.Limit{
		{Burst: 49, Count: 50, Period: time.Hour},
		{Burst: 0, Count: 10, Period: 1500 * time.Millisecond},
		{Burst: -1, Count: 10, Period: time.Second},
	} {
		err := l.Validate()
		fmt.Println(err, errors.Is(err, client.ErrInvalidLimit))
	}
	// Output:
	// <nil> false
	// sluice: invalid limit: period 1.5s is not a whole number of seconds true
	// sluice: invalid limit: burst -1 is negative true
}

// Two requests at once per client IP, then one every 30 s: the third
// request in the same instant is refused with 429 and Retry-After.
func ExampleNewMiddleware() {
	srv, stop := exampleServer()
	defer stop()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()

	mw, err := client.NewMiddleware(client.MiddlewareConfig{
		Client:  client.New(rdb),
		Timeout: 10 * time.Second, // generous: the output must not depend on a loaded machine
		Rules: []client.Rule{
			{Name: "anon", Limit: client.Limit{Burst: 1, Count: 2, Period: time.Minute}, Key: client.ClientIP()},
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	h := mw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "hello") }))
	for range 3 {
		r := httptest.NewRequest(http.MethodGet, "/items", nil)
		r.RemoteAddr = "203.0.113.9:41000"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Printf("%d RateLimit: %s Retry-After: %q\n", w.Code, w.Header().Get("RateLimit"), w.Header().Get("Retry-After"))
	}
	// Output:
	// 200 RateLimit: "anon";r=1;t=30 Retry-After: ""
	// 200 RateLimit: "anon";r=0;t=60 Retry-After: ""
	// 429 RateLimit: "anon";r=0;t=60 Retry-After: "30"
}

// SetHeaders writes the rate-limit fields for a decision made with
// Client.Throttle, for handlers that call it themselves.
func ExampleSetHeaders() {
	h := http.Header{}
	limit := client.Limit{Burst: 49, Count: 50, Period: time.Hour}
	client.SetHeaders(h, "anon", limit, client.Result{Limit: 50, Remaining: 49, ResetAfter: 72 * time.Second})
	for _, k := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "RateLimit-Policy", "RateLimit"} {
		fmt.Printf("%s: %s\n", k, h.Get(k))
	}
	// Output:
	// X-RateLimit-Limit: 50
	// X-RateLimit-Remaining: 49
	// X-RateLimit-Reset: 72
	// RateLimit-Policy: "anon";q=50;w=3600
	// RateLimit: "anon";r=49;t=72
}

// X-Forwarded-For is believed only from trusted proxies, read from the
// right: the first address that is not a trusted proxy is the client.
func ExampleClientIP() {
	proxies, err := client.ParsePrefixes("10.0.0.0/8")
	if err != nil {
		fmt.Println(err)
		return
	}
	key := client.ClientIP(proxies...)
	for _, c := range []struct{ remote, xff string }{
		{"203.0.113.9:41000", ""},
		{"203.0.113.9:41000", "198.51.100.1"}, // not from a proxy: ignored
		{"10.0.0.2:41000", "1.2.3.4, 198.51.100.1, 10.0.0.1"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = c.remote
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		k, _ := key(r)
		fmt.Println(k)
	}
	// Output:
	// 203.0.113.9
	// 203.0.113.9
	// 198.51.100.1
}

// Join and FirstOf combine keys: per API key and IP when the request has an
// API key (hashed, so the secret never reaches Sluice), else per user.
func ExampleFirstOf() {
	key := client.FirstOf(
		client.Join("@", client.APIKey("X-API-Key"), client.ClientIP()),
		client.User(func(r *http.Request) string { return r.URL.Query().Get("user") }),
	)
	for _, target := range []string{"/?user=ann", "/"} {
		r := httptest.NewRequest(http.MethodGet, target, nil)
		r.RemoteAddr = "203.0.113.9:41000"
		if target == "/" {
			r.Header.Set("X-API-Key", "k-123")
		}
		k, ok := key(r)
		fmt.Printf("%q %t\n", k, ok)
	}
	// Output:
	// "ann" true
	// "3605a9e4358da4302f8acea41f0f52ce@203.0.113.9" true
}

// A Sluice cluster through go-redis's ClusterClient: NewClusterClient sets
// the 2 s slot map reload that lets the client follow a failover, which no
// node announces with -MOVED.
func ExampleNewClusterClient() {
	rdb := client.NewClusterClient(&redis.ClusterOptions{
		Addrs: []string{"sluice-0.sluice:6379", "sluice-1.sluice:6379", "sluice-2.sluice:6379"},
	})
	defer rdb.Close()
	sl := client.New(rdb)
	_ = sl // sl.Throttle(ctx, "user123", limit, 1) goes to the node serving user123's slot
}
