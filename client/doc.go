// Package client is the Go client for Sluice, a rate-limiting server that
// speaks the Redis protocol.
//
// [Client.Throttle] sends one THROTTLE command through any go-redis client
// (a *redis.Client, *redis.ClusterClient, *redis.Ring or
// redis.UniversalClient, or anything with the same Do method) and decodes
// the reply:
//
//	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
//	sl := client.New(rdb)
//	res, err := sl.Throttle(ctx, "user123", client.Limit{Burst: 15, Count: 30, Period: time.Minute}, 1)
//	if err == nil && res.Limited {
//		// refuse; res.RetryAfter says when to come back
//	}
//
// [Middleware] rate-limits an http.Handler: each [Rule] picks a key for the
// request with a [KeyFunc] ([ClientIP] with trusted-proxy handling of
// X-Forwarded-For, [APIKey], [Header], [User], [Route], combined with [Join]
// and [FirstOf]), the response carries X-RateLimit-Limit, X-RateLimit-Remaining,
// X-RateLimit-Reset and the IETF draft's RateLimit and RateLimit-Policy
// fields, and refused requests get 429 Too Many Requests with Retry-After.
// When Sluice cannot be reached within [MiddlewareConfig.Timeout] the
// middleware fails open or closed as configured ([FailOpen], [FailClosed]).
//
// The sub-package sluicetest starts an in-process Sluice for tests.
package client
