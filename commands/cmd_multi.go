package commands

import (
	"github.com/sluicehq/sluice/gcra"
	"github.com/sluicehq/sluice/keyspace"
	"github.com/sluicehq/sluice/resp"
)

// multiCommands declares THROTTLE.MULTI.
func multiCommands() []*Command {
	return []*Command{{Name: "throttle.multi", Arity: -6, Flags: FlagWrite | FlagDenyOOM | FlagFast,
		Categories: []string{"@write", "@fast", "@throttle"}, Group: "throttle", Since: "0.2.0",
		// Keys sit at 2, 6, 10, ... up to the fourth argument from the end.
		FirstKey: 2, LastKey: -4, Step: 4, QuantityArg: 1,
		Summary: "Applies one GCRA request to several limits atomically: admitted only when every limit admits, " +
			"and then every limit is charged; refused, nothing is charged. Replies [[limited, limit, remaining, retry_after, reset_after], " +
			"then the same five for each limit].",
		Complexity: "O(N) where N is the number of limits (at most max-multi-limits, default 64)",
		Args: []Arg{
			{Name: "quantity", Type: "integer"},
			{Name: "limit", Type: "block", Multiple: true, Args: []Arg{
				{Name: "key", Type: "key"},
				{Name: "max_burst", Type: "integer"},
				{Name: "count", Type: "integer"},
				{Name: "period", Type: "integer"},
			}},
		},
		Handler: throttleMulti,
	}}
}

// throttleMulti serves THROTTLE.MULTI quantity key max_burst count period
// [key max_burst count period ...].
func throttleMulti(s *Server, c *resp.Conn, args [][]byte) {
	if (len(args)-2)%4 != 0 {
		c.WriteError(errArity("throttle.multi"))
		return
	}
	if (len(args)-2)/4 > s.cfg.MaxMultiLimits {
		c.WriteError(errTooManyLimits(s.cfg.MaxMultiLimits))
		return
	}
	q, err := parseInt(args[1])
	if err != nil {
		c.WriteError(errorReply(err))
		return
	}
	checks := make([]keyspace.Check, 0, (len(args)-2)/4)
	for i := 2; i < len(args); i += 4 {
		var v [3]int64
		for j := range v {
			if v[j], err = parseInt(args[i+1+j]); err != nil {
				c.WriteError(errorReply(err))
				return
			}
		}
		l, err := gcra.NewLimit(v[0], v[1], v[2])
		if err != nil {
			c.WriteError(errorReply(err))
			return
		}
		checks = append(checks, keyspace.Check{Key: args[i], Limit: l})
	}
	results := make([]gcra.Result, len(checks))
	now := s.now(c)
	limited, err := s.keys.ThrottleMulti(checks, now, q, results)
	if err != nil {
		c.WriteError(errorReply(err))
		return
	}
	s.decisions.count(decidedMulti, limited)
	s.recordMulti(c, s.srcMulti, checks, limited, results, now)
	c.WriteArray(1 + len(results))
	writeResult(c, overall(limited, results))
	for _, r := range results {
		writeResult(c, r)
	}
}

// overall sums up several decisions made together: limited when any refused;
// limit and remaining of the limit with the fewest remaining; the longest
// retry_after of the refusing limits (-1 when one of them can never admit
// the request, or when admitted); the longest reset_after.
func overall(limited bool, results []gcra.Result) gcra.Result {
	o := gcra.Result{Limited: limited, RetryAfter: -1}
	never := false
	for i, r := range results {
		if i == 0 || r.Remaining < o.Remaining {
			o.Limit, o.Remaining = r.Limit, r.Remaining
		}
		o.ResetAfter = max(o.ResetAfter, r.ResetAfter)
		if r.Limited {
			if r.RetryAfter < 0 {
				never = true
			}
			o.RetryAfter = max(o.RetryAfter, r.RetryAfter)
		}
	}
	if never {
		o.RetryAfter = -1
	}
	return o
}
