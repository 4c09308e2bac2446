package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Doer is the one method of a go-redis client that [Client] uses.
// *redis.Client, *redis.ClusterClient, *redis.Ring, *redis.Conn and
// redis.UniversalClient implement it.
type Doer interface {
	Do(ctx context.Context, args ...any) *redis.Cmd
}

// Client sends THROTTLE commands to Sluice. It is safe for concurrent use
// as long as its Doer is (go-redis clients are).
type Client struct {
	rdb Doer
}

// New returns a Client that sends its commands through rdb.
func New(rdb Doer) *Client { return &Client{rdb: rdb} }

// Limit is a rate: Count requests per Period, with bursts.
//
// The fields are THROTTLE's max_burst, count and period arguments: Count
// requests are admitted per Period on average, one every Period/Count, and up
// to Burst+1 of them at once (Burst is redis-cell's max_burst, so the
// reply's [Result.Limit] is Burst+1). For "50 per hour, all 50 at once if the
// client wants" use Limit{Burst: 49, Count: 50, Period: time.Hour}.
type Limit struct {
	Burst  int64         // max_burst, >= 0: Burst+1 requests fit at once
	Count  int64         // requests per Period, >= 1
	Period time.Duration // whole seconds, >= 1s (Sluice counts in seconds)
}

// ErrInvalidLimit is wrapped by the errors [Limit.Validate] returns.
var ErrInvalidLimit = errors.New("sluice: invalid limit")

// Validate reports whether Sluice accepts l: Burst >= 0, Count >= 1 and
// Period a whole number of seconds, at least one.
func (l Limit) Validate() error {
	switch {
	case l.Burst < 0:
		return fmt.Errorf("%w: burst %d is negative", ErrInvalidLimit, l.Burst)
	case l.Count < 1:
		return fmt.Errorf("%w: count %d is not positive", ErrInvalidLimit, l.Count)
	case l.Period < time.Second:
		return fmt.Errorf("%w: period %s is under one second", ErrInvalidLimit, l.Period)
	case l.Period%time.Second != 0:
		return fmt.Errorf("%w: period %s is not a whole number of seconds", ErrInvalidLimit, l.Period)
	}
	return nil
}

// seconds is the period as THROTTLE's period argument.
func (l Limit) seconds() int64 { return int64(l.Period / time.Second) }

// Result is Sluice's decision on one THROTTLE call. Durations are whole
// seconds, rounded the way redis-cell rounds them.
type Result struct {
	// Limited is true when the request was refused (and nothing was charged).
	Limited bool
	// Limit is the most requests that fit at once: Burst+1.
	Limit int64
	// Remaining is how many more requests of quantity 1 fit right now.
	Remaining int64
	// RetryAfter is how long until the same request would be allowed. It is
	// 0 when the request was allowed, and negative (-1s) when it was refused
	// because its quantity exceeds Limit, so it can never be allowed.
	RetryAfter time.Duration
	// ResetAfter is how long until the limit is full again (Remaining == Limit).
	ResetAfter time.Duration
}

// Throttle charges quantity requests to key under limit l and returns the
// decision. A quantity of 0 only reads the state; a negative quantity refunds.
//
// A limit that fails [Limit.Validate] is an error wrapping [ErrInvalidLimit]
// and sends nothing. Errors from the connection and error replies from the
// server (a redis.Error, e.g. "ERR ...") are returned as they come.
func (c *Client) Throttle(ctx context.Context, key string, l Limit, quantity int64) (Result, error) {
	if err := l.Validate(); err != nil {
		return Result{}, err
	}
	v, err := c.rdb.Do(ctx, "THROTTLE", key, l.Burst, l.Count, l.seconds(), quantity).Result()
	if err != nil {
		return Result{}, err
	}
	return parseReply(v)
}

// parseReply decodes [limited, limit, remaining, retry_after, reset_after]
// with durations in seconds.
func parseReply(v any) (Result, error) { return parseReplyUnit(v, time.Second) }

// parseReplyUnit decodes the five numbers with durations in unit (the
// SLIDINGLOG commands answer in milliseconds). A refusal that can never
// be admitted has RetryAfter -1 unit.
func parseReplyUnit(v any, unit time.Duration) (Result, error) {
	arr, ok := v.([]any)
	if !ok || len(arr) != 5 {
		return Result{}, fmt.Errorf("sluice: THROTTLE replied %#v, want an array of 5 integers", v)
	}
	var n [5]int64
	for i, x := range arr {
		if n[i], ok = x.(int64); !ok {
			return Result{}, fmt.Errorf("sluice: THROTTLE reply element %d is %#v, want an integer", i, x)
		}
	}
	r := Result{
		Limited:    n[0] == 1,
		Limit:      n[1],
		Remaining:  n[2],
		ResetAfter: time.Duration(n[4]) * unit,
	}
	if n[3] >= 0 && r.Limited {
		r.RetryAfter = time.Duration(n[3]) * unit
	} else if r.Limited {
		r.RetryAfter = -unit
	}
	return r, nil
}
