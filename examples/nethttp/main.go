// Command nethttp is a net/http API rate-limited by Sluice with the
// github.com/sluicehq/sluice/client middleware: anonymous clients get 50
// requests per hour per address, clients with a valid X-API-Key 5000 per
// hour with bursts of 500, per user and address. See README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sluicehq/sluice/client"
)

// Limits of the example's two policies.
var (
	// Anonymous: 50 per hour, all 50 at once if the client likes.
	Anonymous = client.Limit{Burst: 49, Count: 50, Period: time.Hour}
	// Authenticated: 5000 per hour, bursts of 500.
	Authenticated = client.Limit{Burst: 499, Count: 5000, Period: time.Hour}
)

// config is the command line.
type config struct {
	listen         string
	sluice         string
	trustedProxies string
	failClosed     bool
	timeout        time.Duration
	apiKeys        map[string]string // API key -> user
}

func main() {
	var cfg config
	var keys string
	flag.StringVar(&cfg.listen, "listen", "127.0.0.1:8080", "address to serve HTTP on")
	flag.StringVar(&cfg.sluice, "sluice", "127.0.0.1:6379", "Sluice address")
	flag.StringVar(&cfg.trustedProxies, "trusted-proxies", "", "comma-separated CIDRs of reverse proxies whose X-Forwarded-For is believed")
	flag.BoolVar(&cfg.failClosed, "fail-closed", false, "refuse requests with 503 while Sluice is unreachable (default: serve them unlimited)")
	flag.DurationVar(&cfg.timeout, "sluice-timeout", 100*time.Millisecond, "how long to wait for Sluice per request")
	flag.StringVar(&keys, "api-keys", "demo-key:demo", "comma-separated key:user pairs")
	flag.Parse()
	var err error
	if cfg.apiKeys, err = parseKeys(keys); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}

	rdb := redis.NewClient(&redis.Options{Addr: cfg.sluice})
	defer rdb.Close()
	h, err := newHandler(cfg, rdb)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	srv := &http.Server{Addr: cfg.listen, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	slog.Info("serving", "listen", cfg.listen, "sluice", cfg.sluice)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func parseKeys(s string) (map[string]string, error) {
	keys := map[string]string{}
	for _, pair := range strings.Split(s, ",") {
		if pair = strings.TrimSpace(pair); pair == "" {
			continue
		}
		key, user, ok := strings.Cut(pair, ":")
		if !ok || key == "" || user == "" {
			return nil, fmt.Errorf("-api-keys: %q is not key:user", pair)
		}
		keys[key] = user
	}
	return keys, nil
}

type ctxKey int

const (
	userKey ctxKey = iota
	badCredentialsKey
)

// userOf is the authenticated user, or "".
func userOf(r *http.Request) string {
	u, _ := r.Context().Value(userKey).(string)
	return u
}

// newHandler builds the API: authenticate, then rate-limit, then refuse bad
// credentials (so guessing keys costs from the anonymous budget), then serve.
func newHandler(cfg config, rdb client.Doer) (http.Handler, error) {
	var trusted []string
	if cfg.trustedProxies != "" {
		trusted = strings.Split(cfg.trustedProxies, ",")
	}
	proxies, err := client.ParsePrefixes(trusted...)
	if err != nil {
		return nil, err
	}
	mode := client.FailOpen
	if cfg.failClosed {
		mode = client.FailClosed
	}
	ip := client.ClientIP(proxies...)
	limiter, err := client.NewMiddleware(client.MiddlewareConfig{
		Client: client.New(rdb),
		Rules: []client.Rule{
			{Name: "user", Limit: Authenticated, Key: client.Join("@", client.User(userOf), ip)},
			{Name: "anon", Limit: Anonymous, Key: ip},
		},
		Timeout:   cfg.timeout,
		OnFailure: mode,
	})
	if err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		who := userOf(r)
		if who == "" {
			who = "anonymous"
		}
		writeJSON(w, http.StatusOK, map[string]string{"hello": who})
	})
	mux.HandleFunc("GET /items", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string][]string{"items": {"a", "b", "c"}})
	})
	return authenticate(cfg.apiKeys, limiter.Wrap(refuseBadCredentials(mux))), nil
}

// authenticate records the user of a valid X-API-Key, or that the key
// presented is not valid, in the request's context.
func authenticate(keys map[string]string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if key := r.Header.Get("X-API-Key"); key != "" {
			if user, ok := keys[key]; ok {
				r = r.WithContext(context.WithValue(r.Context(), userKey, user))
			} else {
				r = r.WithContext(context.WithValue(r.Context(), badCredentialsKey, true))
			}
		}
		next.ServeHTTP(w, r)
	})
}

func refuseBadCredentials(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if bad, _ := r.Context().Value(badCredentialsKey).(bool); bad {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid API key"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
