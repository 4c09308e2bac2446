// Package client is the Go client for Sluice, a rate-limiting server that
// speaks the Redis protocol.
//
// [Client] sends Sluice's commands through any go-redis client (a
// *redis.Client, *redis.ClusterClient, *redis.Ring or
// redis.UniversalClient, or anything with the same Do method) and decodes
// the replies: [Client.Throttle], [Client.ThrottleMulti],
// [Client.ThrottleWindow], [Client.PolicyThrottle], [Client.PolicyList],
// [Client.PolicyGet], [Client.LeaseAcquire], [Client.LeaseRelease],
// [Client.LeaseRenew], [Client.CounterIncrBy], [Client.CounterGet],
// [Client.SlidingLogAcquire] and [Client.SlidingLogGet]:
//
//	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
//	sl := client.New(rdb)
//	res, err := sl.Throttle(ctx, "user123", client.Limit{Burst: 15, Count: 30, Period: time.Minute}, 1)
//	if err == nil && res.Limited {
//		// refuse; res.RetryAfter says when to come back
//	}
//
// [Middleware] rate-limits an http.Handler: each [Rule] charges one
// [Limit], several at once ([Rule.Limits], atomically) or a named policy of
// the server ([Rule.Policy]) to a key it picks for the request with a
// [KeyFunc] ([ClientIP] with trusted-proxy handling of
// X-Forwarded-For, [APIKey], [Header], [User], [Route], combined with [Join]
// and [FirstOf]), the response carries X-RateLimit-Limit, X-RateLimit-Remaining,
// X-RateLimit-Reset and the IETF draft's RateLimit and RateLimit-Policy
// fields, and refused requests get 429 Too Many Requests with Retry-After.
// When Sluice cannot be reached within [MiddlewareConfig.Timeout] the
// middleware fails open or closed as configured ([FailOpen], [FailClosed]).
//
// For a Sluice cluster, build the go-redis ClusterClient with
// [NewClusterClient]: it reloads the slot map as soon as a command fails on
// a dead node (at most every 100 ms), and once a command finds it older
// than 2 seconds, which is how a client learns of a failover (a dead
// primary sends no -MOVED).
//
// The sub-package sluicetest starts an in-process Sluice for tests;
// httpratesluice keeps go-chi/httprate's counters in Sluice.
package client
