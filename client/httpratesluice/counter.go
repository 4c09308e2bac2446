// Package httpratesluice keeps the counts of go-chi/httprate in Sluice, so
// that every instance of a service shares one limit. It is an
// httprate.LimitCounter, the interface httprate's own Redis backend
// (httprate-redis) implements; an app switches with one option:
//
//	r.Use(httprate.LimitBy(100, time.Minute, clientIPKey,
//		httprate.WithLimitCounter(httpratesluice.NewCounter(rdb))))
//
// where rdb is a go-redis client connected to Sluice. Each window's count
// is a Sluice counter (COUNTER.INCRBY) that lasts two windows, long enough
// to serve as the previous window of httprate's sliding-window estimate.
//
// httprate reads the counts and then increments them, under a lock of its
// own process: across processes, as with httprate-redis, two requests can
// read the same count and both pass. For admission decided atomically on
// the server, use package client's Middleware.
package httpratesluice

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/go-chi/httprate"
	"github.com/redis/go-redis/v9"
)

// DefaultPrefix is prepended to the Sluice keys of a Counter made by
// NewCounter.
const DefaultPrefix = "httprate:"

// Redis is what a Counter needs of a go-redis client: *redis.Client,
// *redis.ClusterClient, *redis.Ring and redis.UniversalClient have it.
type Redis interface {
	Do(ctx context.Context, args ...any) *redis.Cmd
	Pipelined(ctx context.Context, fn func(redis.Pipeliner) error) ([]redis.Cmder, error)
}

// Counter is an httprate.LimitCounter on Sluice. Its zero value is not
// usable; make one with NewCounter.
type Counter struct {
	// Client talks to Sluice.
	Client Redis
	// Prefix is prepended to every key: Prefix + key + ":" + the window's
	// start in Unix milliseconds.
	Prefix string
	// Timeout bounds each call (httprate passes no context); 0 means none
	// beyond the go-redis client's own timeouts.
	Timeout time.Duration

	window time.Duration
}

var _ httprate.LimitCounter = (*Counter)(nil)

// NewCounter returns a Counter that sends its commands through rdb, with
// DefaultPrefix.
func NewCounter(rdb Redis) *Counter {
	return &Counter{Client: rdb, Prefix: DefaultPrefix}
}

// Config is called by httprate with the limiter's window.
func (c *Counter) Config(requestLimit int, windowLength time.Duration) {
	c.window = windowLength
}

func (c *Counter) key(key string, window time.Time) string {
	return c.Prefix + key + ":" + strconv.FormatInt(window.UnixMilli(), 10)
}

func (c *Counter) context() (context.Context, context.CancelFunc) {
	if c.Timeout > 0 {
		return context.WithTimeout(context.Background(), c.Timeout)
	}
	return context.Background(), func() {}
}

// Increment adds one to key's count in the window starting at
// currentWindow.
func (c *Counter) Increment(key string, currentWindow time.Time) error {
	return c.IncrementBy(key, currentWindow, 1)
}

// IncrementBy adds amount to key's count in the window starting at
// currentWindow.
func (c *Counter) IncrementBy(key string, currentWindow time.Time, amount int) error {
	if c.window <= 0 {
		return fmt.Errorf("httpratesluice: Config was not called (use the Counter through httprate.WithLimitCounter)")
	}
	ttl := (2*c.window + time.Millisecond - 1) / time.Millisecond
	ctx, cancel := c.context()
	defer cancel()
	if err := c.Client.Do(ctx, "COUNTER.INCRBY", c.key(key, currentWindow), amount, int64(ttl)).Err(); err != nil {
		return fmt.Errorf("httpratesluice: COUNTER.INCRBY: %w", err)
	}
	return nil
}

// Get returns key's counts in the windows starting at currentWindow and
// previousWindow, in one round trip.
func (c *Counter) Get(key string, currentWindow, previousWindow time.Time) (int, int, error) {
	ctx, cancel := c.context()
	defer cancel()
	var curr, prev *redis.Cmd
	_, err := c.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		curr = p.Do(ctx, "COUNTER.GET", c.key(key, currentWindow))
		prev = p.Do(ctx, "COUNTER.GET", c.key(key, previousWindow))
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("httpratesluice: COUNTER.GET: %w", err)
	}
	cv, err := value(curr)
	if err != nil {
		return 0, 0, err
	}
	pv, err := value(prev)
	if err != nil {
		return 0, 0, err
	}
	return cv, pv, nil
}

// value reads COUNTER.GET's [value, ttl_ms].
func value(cmd *redis.Cmd) (int, error) {
	v, err := cmd.Int64Slice()
	if err != nil || len(v) != 2 {
		return 0, fmt.Errorf("httpratesluice: COUNTER.GET replied %v, %v: want two integers", v, err)
	}
	return int(v[0]), nil
}
