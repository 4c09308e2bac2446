package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Check is one limit of a [Client.ThrottleMulti] call: a key and its limit.
type Check struct {
	Key   string
	Limit Limit
}

// MultiResult is THROTTLE.MULTI's decision: the overall one (limited when
// any limit refused; the limit and remaining of the limit with the fewest
// remaining; the longest retry and reset) and one per check, in order.
type MultiResult struct {
	Result
	Each []Result
}

// ThrottleMulti charges quantity to every check at once (THROTTLE.MULTI):
// admitted only when every limit admits, and then every limit is charged;
// refused, nothing is charged.
func (c *Client) ThrottleMulti(ctx context.Context, checks []Check, quantity int64) (MultiResult, error) {
	if len(checks) == 0 {
		return MultiResult{}, fmt.Errorf("%w: no checks", ErrInvalidLimit)
	}
	args := make([]any, 0, 2+4*len(checks))
	args = append(args, "THROTTLE.MULTI", quantity)
	for i, ch := range checks {
		if err := ch.Limit.Validate(); err != nil {
			return MultiResult{}, fmt.Errorf("check %d (%q): %w", i, ch.Key, err)
		}
		args = append(args, ch.Key, ch.Limit.Burst, ch.Limit.Count, ch.Limit.seconds())
	}
	v, err := c.rdb.Do(ctx, args...).Result()
	if err != nil {
		return MultiResult{}, err
	}
	rows, ok := v.([]any)
	if !ok || len(rows) != 1+len(checks) {
		return MultiResult{}, fmt.Errorf("sluice: THROTTLE.MULTI replied %#v, want %d rows", v, 1+len(checks))
	}
	var m MultiResult
	if m.Result, err = parseReply(rows[0]); err != nil {
		return MultiResult{}, err
	}
	m.Each = make([]Result, len(checks))
	for i, row := range rows[1:] {
		if m.Each[i], err = parseReply(row); err != nil {
			return MultiResult{}, err
		}
	}
	return m, nil
}

// WindowAlgorithm is how [Client.ThrottleWindow] counts.
type WindowAlgorithm string

// The window algorithms of THROTTLE.WINDOW.
const (
	// Sliding is the sliding-window counter: the previous window's count
	// weighted by how much of it still overlaps the last period.
	Sliding WindowAlgorithm = "sliding"
	// Fixed counts per window aligned to the Unix epoch.
	Fixed WindowAlgorithm = "fixed"
)

// Window is a window limit: Count requests per Period (whole seconds),
// counted by Algorithm ("" is Sliding).
type Window struct {
	Count     int64
	Period    time.Duration
	Algorithm WindowAlgorithm
}

// ThrottleWindow charges quantity to key under a window limit
// (THROTTLE.WINDOW).
func (c *Client) ThrottleWindow(ctx context.Context, key string, w Window, quantity int64) (Result, error) {
	algo := w.Algorithm
	if algo == "" {
		algo = Sliding
	}
	if algo != Sliding && algo != Fixed {
		return Result{}, fmt.Errorf("%w: window algorithm %q", ErrInvalidLimit, w.Algorithm)
	}
	if err := (Limit{Count: w.Count, Period: w.Period}).Validate(); err != nil {
		return Result{}, err
	}
	v, err := c.rdb.Do(ctx, "THROTTLE.WINDOW", key, w.Count, int64(w.Period/time.Second), quantity, "ALGO", string(algo)).Result()
	if err != nil {
		return Result{}, err
	}
	return parseReply(v)
}

// PolicyResult is POLICY.THROTTLE's decision under a named policy, with
// the values of the IETF draft's RateLimit-Policy and RateLimit fields as
// the server words them ("anon";q=50;w=3600 and "anon";r=49;t=72).
type PolicyResult struct {
	Result
	RateLimitPolicy string
	RateLimit       string
}

// PolicyThrottle charges quantity to key under the named policy of the
// server's policy file (POLICY.THROTTLE ... HEADERS): all its limits at
// once. A policy the server does not have is an error reply ("ERR no such
// policy ...").
func (c *Client) PolicyThrottle(ctx context.Context, policy, key string, quantity int64) (PolicyResult, error) {
	v, err := c.rdb.Do(ctx, "POLICY.THROTTLE", policy, key, quantity, "HEADERS").Result()
	if err != nil {
		return PolicyResult{}, err
	}
	arr, ok := v.([]any)
	if !ok || len(arr) != 7 {
		return PolicyResult{}, fmt.Errorf("sluice: POLICY.THROTTLE replied %#v, want 5 integers and 2 strings", v)
	}
	r, err := parseReply(arr[:5])
	if err != nil {
		return PolicyResult{}, err
	}
	p := PolicyResult{Result: r}
	p.RateLimitPolicy, ok = arr[5].(string)
	if s, ok2 := arr[6].(string); ok && ok2 {
		p.RateLimit = s
		return p, nil
	}
	return PolicyResult{}, fmt.Errorf("sluice: POLICY.THROTTLE replied %#v, want header strings", arr[5:])
}

// Policy describes a named policy (POLICY.GET).
type Policy struct {
	Name      string
	Algorithm string            // gcra, fixed-window or sliding-window
	Limit     string            // rule notation, e.g. "10/second; 1000/day"
	Overrides map[string]string // key -> rule notation
}

// PolicyList names the server's policies, sorted (POLICY.LIST).
func (c *Client) PolicyList(ctx context.Context) ([]string, error) {
	return c.rdb.Do(ctx, "POLICY.LIST").StringSlice()
}

// PolicyGet describes the named policy; ok is false when the server has
// none by that name.
func (c *Client) PolicyGet(ctx context.Context, name string) (p Policy, ok bool, err error) {
	v, err := c.rdb.Do(ctx, "POLICY.GET", name).Result()
	if errors.Is(err, redis.Nil) {
		return Policy{}, false, nil
	}
	if err != nil {
		return Policy{}, false, err
	}
	m, err := stringMap(v)
	if err != nil {
		return Policy{}, false, fmt.Errorf("sluice: POLICY.GET: %w", err)
	}
	p = Policy{Overrides: map[string]string{}}
	p.Name, _ = m["name"].(string)
	p.Algorithm, _ = m["algorithm"].(string)
	p.Limit, _ = m["limit"].(string)
	if o, err := stringMap(m["overrides"]); err == nil {
		for k, v := range o {
			p.Overrides[k], _ = v.(string)
		}
	}
	return p, true, nil
}

// stringMap reads a map reply: a map in RESP3, a flat list in RESP2.
func stringMap(v any) (map[string]any, error) {
	out := map[string]any{}
	switch m := v.(type) {
	case map[any]any:
		for k, x := range m {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("map key %#v is not a string", k)
			}
			out[ks] = x
		}
	case []any:
		if len(m)%2 != 0 {
			return nil, fmt.Errorf("flat map of %d elements", len(m))
		}
		for i := 0; i < len(m); i += 2 {
			ks, ok := m[i].(string)
			if !ok {
				return nil, fmt.Errorf("map key %#v is not a string", m[i])
			}
			out[ks] = m[i+1]
		}
	default:
		return nil, fmt.Errorf("%#v is not a map", v)
	}
	return out, nil
}

// Lease is LEASE.ACQUIRE's answer.
type Lease struct {
	Acquired  bool
	Max       int64         // the most leases held at once
	InFlight  int64         // unexpired leases, this one included
	FreeAfter time.Duration // 0 while a slot is free, else until the earliest lease expires
	ID        int64         // the lease to release or renew; -1 when refused
}

// ms converts a duration to whole milliseconds, rounding up, for the
// commands that count in milliseconds; d must be at least 1 ms.
func ms(what string, d time.Duration) (int64, error) {
	if d < time.Millisecond {
		return 0, fmt.Errorf("%w: %s %s is under one millisecond", ErrInvalidLimit, what, d)
	}
	return int64((d + time.Millisecond - 1) / time.Millisecond), nil
}

// ints reads a reply of n integers.
func ints(cmd string, v any, n int) ([]int64, error) {
	arr, ok := v.([]any)
	if !ok || len(arr) != n {
		return nil, fmt.Errorf("sluice: %s replied %#v, want %d integers", cmd, v, n)
	}
	out := make([]int64, n)
	for i, x := range arr {
		if out[i], ok = x.(int64); !ok {
			return nil, fmt.Errorf("sluice: %s reply element %d is %#v, want an integer", cmd, i, x)
		}
	}
	return out, nil
}

// LeaseAcquire takes one of at most max concurrent leases on key, expiring
// after ttl unless renewed (LEASE.ACQUIRE).
func (c *Client) LeaseAcquire(ctx context.Context, key string, max int64, ttl time.Duration) (Lease, error) {
	t, err := ms("ttl", ttl)
	if err != nil {
		return Lease{}, err
	}
	v, err := c.rdb.Do(ctx, "LEASE.ACQUIRE", key, max, t).Result()
	if err != nil {
		return Lease{}, err
	}
	n, err := ints("LEASE.ACQUIRE", v, 5)
	if err != nil {
		return Lease{}, err
	}
	return Lease{Acquired: n[0] == 0, Max: n[1], InFlight: n[2], FreeAfter: time.Duration(n[3]) * time.Millisecond, ID: n[4]}, nil
}

// LeaseRelease ends lease id on key (LEASE.RELEASE). ok is false when it
// had expired or was released already.
func (c *Client) LeaseRelease(ctx context.Context, key string, id int64) (ok bool, inFlight int64, err error) {
	return c.leaseUpdate(ctx, "LEASE.RELEASE", key, id)
}

// LeaseRenew makes lease id on key expire ttl from now (LEASE.RENEW). ok is
// false when it had expired or was released: acquire again.
func (c *Client) LeaseRenew(ctx context.Context, key string, id int64, ttl time.Duration) (ok bool, inFlight int64, err error) {
	t, err := ms("ttl", ttl)
	if err != nil {
		return false, 0, err
	}
	return c.leaseUpdate(ctx, "LEASE.RENEW", key, id, t)
}

func (c *Client) leaseUpdate(ctx context.Context, cmd, key string, id int64, extra ...any) (bool, int64, error) {
	v, err := c.rdb.Do(ctx, append([]any{cmd, key, id}, extra...)...).Result()
	if err != nil {
		return false, 0, err
	}
	n, err := ints(cmd, v, 2)
	if err != nil {
		return false, 0, err
	}
	return n[0] == 1, n[1], nil
}

// Counter is an expiring counter's state (COUNTER.INCRBY, COUNTER.GET).
type Counter struct {
	Value int64
	// TTL is how long the counter lasts; 0 when there is none.
	TTL time.Duration
}

// CounterIncrBy adds increment to key's counter (COUNTER.INCRBY). A key
// without a live counter starts at 0 and keeps it for ttl; elastic restarts
// the ttl on every call.
func (c *Client) CounterIncrBy(ctx context.Context, key string, increment int64, ttl time.Duration, elastic bool) (Counter, error) {
	t, err := ms("ttl", ttl)
	if err != nil {
		return Counter{}, err
	}
	args := []any{"COUNTER.INCRBY", key, increment, t}
	if elastic {
		args = append(args, "ELASTIC")
	}
	return c.counter(ctx, args...)
}

// CounterGet reads key's counter (COUNTER.GET).
func (c *Client) CounterGet(ctx context.Context, key string) (Counter, error) {
	return c.counter(ctx, "COUNTER.GET", key)
}

func (c *Client) counter(ctx context.Context, args ...any) (Counter, error) {
	v, err := c.rdb.Do(ctx, args...).Result()
	if err != nil {
		return Counter{}, err
	}
	n, err := ints(args[0].(string), v, 2)
	if err != nil {
		return Counter{}, err
	}
	if n[1] < 0 {
		return Counter{}, nil
	}
	return Counter{Value: n[0], TTL: time.Duration(n[1]) * time.Millisecond}, nil
}

// SlidingLogAcquire admits quantity requests to key when the requests
// admitted in the last period, plus quantity, stay within limit
// (SLIDINGLOG.ACQUIRE): an exact moving window.
func (c *Client) SlidingLogAcquire(ctx context.Context, key string, limit int64, period time.Duration, quantity int64) (Result, error) {
	p, err := ms("period", period)
	if err != nil {
		return Result{}, err
	}
	v, err := c.rdb.Do(ctx, "SLIDINGLOG.ACQUIRE", key, limit, p, quantity).Result()
	if err != nil {
		return Result{}, err
	}
	return parseReplyUnit(v, time.Millisecond)
}

// LogWindow describes the requests of a sliding log counted in a period.
type LogWindow struct {
	Count      int64
	NextLeaves time.Duration // until the oldest of them leaves the period
	AllLeave   time.Duration // until the last of them does
}

// SlidingLogGet describes key's requests of the last period
// (SLIDINGLOG.GET).
func (c *Client) SlidingLogGet(ctx context.Context, key string, period time.Duration) (LogWindow, error) {
	p, err := ms("period", period)
	if err != nil {
		return LogWindow{}, err
	}
	v, err := c.rdb.Do(ctx, "SLIDINGLOG.GET", key, p).Result()
	if err != nil {
		return LogWindow{}, err
	}
	n, err := ints("SLIDINGLOG.GET", v, 3)
	if err != nil {
		return LogWindow{}, err
	}
	return LogWindow{Count: n[0], NextLeaves: time.Duration(n[1]) * time.Millisecond, AllLeave: time.Duration(n[2]) * time.Millisecond}, nil
}
