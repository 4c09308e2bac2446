package commands

import (
	"strings"

	"github.com/sluicehq/sluice/gcra"
	"github.com/sluicehq/sluice/resp"
)

// throttleCommands declares THROTTLE and redis-cell's name for it,
// CL.THROTTLE.
func throttleCommands() []*Command {
	args := []Arg{
		{Name: "key", Type: "key"},
		{Name: "max_burst", Type: "integer"},
		{Name: "count", Type: "integer"},
		{Name: "period", Type: "integer"},
		{Name: "quantity", Type: "integer", Optional: true},
	}
	const summary = "Applies one GCRA rate-limit request to a key: replies [limited, limit, remaining, retry_after, reset_after]."
	return []*Command{
		{Name: "throttle", Arity: -5, Flags: FlagWrite | FlagDenyOOM | FlagFast,
			Categories: []string{"@write", "@fast", "@throttle"}, Group: "throttle", Since: "0.1.0",
			FirstKey: 1, LastKey: 1, Step: 1, QuantityArg: 5,
			Summary: summary, Complexity: "O(1)", Args: args, Handler: throttle},
		{Name: "cl.throttle", Arity: -5, Flags: FlagWrite | FlagDenyOOM | FlagFast,
			Categories: []string{"@write", "@fast", "@throttle"}, Group: "throttle", Since: "0.1.0",
			FirstKey: 1, LastKey: 1, Step: 1, QuantityArg: 5,
			Summary: summary + " redis-cell's name for THROTTLE.", Complexity: "O(1)", Args: args, Handler: throttle},
	}
}

// throttle serves THROTTLE and CL.THROTTLE:
// key max_burst count period [quantity] -> [limited, limit, remaining, retry_after, reset_after].
func throttle(s *Server, c *resp.Conn, args [][]byte) {
	if len(args) > 6 { // the table's arity (-5) says only "at least"
		c.WriteError(errArity(strings.ToLower(string(args[0]))))
		return
	}
	l, q, err := parseThrottle(args[2:])
	if err != nil {
		c.WriteError(errorReply(err))
		return
	}
	now := s.now(c)
	r, err := s.keys.Throttle(args[1], now, l, q)
	if err != nil {
		c.WriteError(errorReply(err))
		return
	}
	s.countThrottle(args[0], r.Limited)
	src := s.srcThrottle
	if len(args[0]) == len("cl.throttle") {
		src = s.srcCLThrottle
	}
	s.recordDecision(c, src, args[1], r.Limited, now)
	writeResult(c, r)
}

// writeResult writes a decision as THROTTLE's five-integer array; every
// command of the THROTTLE family replies with this shape.
func writeResult(c *resp.Conn, r gcra.Result) {
	c.WriteArray(5)
	writeFive(c, r)
}

// writeFive writes a result's five numbers without the array header.
func writeFive(c *resp.Conn, r gcra.Result) {
	limited := int64(0)
	if r.Limited {
		limited = 1
	}
	c.WriteInt(limited)
	c.WriteInt(r.Limit)
	c.WriteInt(r.Remaining)
	c.WriteInt(gcra.Seconds(r.RetryAfter))
	c.WriteInt(gcra.Seconds(r.ResetAfter))
}
