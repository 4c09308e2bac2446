package commands

import (
	"github.com/sluicehq/sluice/resp"
	"github.com/sluicehq/sluice/slidinglog"
)

// slidingLogCommands declares SLIDINGLOG.ACQUIRE and SLIDINGLOG.GET: the
// exact moving window of the limits library.
func slidingLogCommands() []*Command {
	return []*Command{
		{Name: "slidinglog.acquire", Arity: -4, Flags: FlagWrite | FlagDenyOOM | FlagFast,
			Categories: []string{"@write", "@fast", "@throttle"}, Group: "throttle", Since: "0.2.0",
			FirstKey: 1, LastKey: 1, Step: 1,
			Summary: "Admits quantity requests when the requests admitted in the last period_ms, plus quantity, stay within limit " +
				"(a sliding log). Replies [limited, limit, remaining, retry_after_ms, reset_after_ms] (retry_after_ms -1 when admitted).",
			Complexity: "O(N) where N is the number of admitting calls within the period, at most 1024",
			Args: []Arg{
				{Name: "key", Type: "key"},
				{Name: "limit", Type: "integer"},
				{Name: "period_ms", Type: "integer"},
				{Name: "quantity", Type: "integer", Optional: true},
			},
			Handler: slidingLogAcquire,
		},
		{Name: "slidinglog.get", Arity: 3, Flags: FlagReadonly | FlagFast,
			Categories: []string{"@read", "@fast", "@throttle"}, Group: "throttle", Since: "0.2.0",
			FirstKey: 1, LastKey: 1, Step: 1,
			Summary: "Describes the requests of a key's sliding log made in the last period_ms. " +
				"Replies [count, next_ms (until the oldest of them leaves), reset_ms (until the last leaves)].",
			Complexity: "O(N) where N is the number of admitting calls within the period, at most 1024",
			Args:       []Arg{{Name: "key", Type: "key"}, {Name: "period_ms", Type: "integer"}},
			Handler:    slidingLogGet,
		},
	}
}

// slidingLogAcquire serves SLIDINGLOG.ACQUIRE key limit period_ms [quantity].
func slidingLogAcquire(s *Server, c *resp.Conn, args [][]byte) {
	if len(args) > 5 {
		c.WriteError(errSyntax)
		return
	}
	v, err := parseInts(args[2:])
	if err != nil {
		c.WriteError(errorReply(err))
		return
	}
	q := int64(1)
	if len(v) == 3 {
		if q = v[2]; q < 0 {
			c.WriteError(errorReply(slidinglog.ErrQuantity))
			return
		}
	}
	l, err := slidinglog.NewLimit(v[0], v[1])
	if err != nil {
		c.WriteError(errorReply(err))
		return
	}
	r := s.keys.LogAcquire(args[1], s.now(c), l, q)
	c.WriteArray(5)
	c.WriteInt(int64(boolInt(r.Limited)))
	c.WriteInt(r.Limit)
	c.WriteInt(r.Remaining)
	if r.RetryAfter < 0 {
		c.WriteInt(-1)
	} else {
		c.WriteInt(ceilMS(r.RetryAfter))
	}
	c.WriteInt(ceilMS(r.ResetAfter))
}

// slidingLogGet serves SLIDINGLOG.GET key period_ms.
func slidingLogGet(s *Server, c *resp.Conn, args [][]byte) {
	ms, err := parseInt(args[2])
	if err != nil {
		c.WriteError(errorReply(err))
		return
	}
	l, err := slidinglog.NewLimit(1, ms)
	if err != nil {
		c.WriteError(errorReply(err))
		return
	}
	w := s.keys.LogWindow(args[1], s.now(c), l.Period())
	c.WriteArray(3)
	c.WriteInt(w.Count)
	c.WriteInt(ceilMS(w.NextLeaves))
	c.WriteInt(ceilMS(w.AllLeave))
}
