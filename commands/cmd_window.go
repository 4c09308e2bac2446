package commands

import (
	"strings"

	"github.com/sluicehq/sluice/resp"
	"github.com/sluicehq/sluice/window"
)

// windowCommands declares THROTTLE.WINDOW.
func windowCommands() []*Command {
	return []*Command{{Name: "throttle.window", Arity: -4, Flags: FlagWrite | FlagDenyOOM | FlagFast,
		Categories: []string{"@write", "@fast", "@throttle"}, Group: "throttle", Since: "0.2.0",
		FirstKey: 1, LastKey: 1, Step: 1, QuantityArg: 4,
		Summary: "Applies one request to a window limit of count per period seconds: the sliding-window counter (default) " +
			"or the fixed window. Replies [limited, limit, remaining, retry_after, reset_after] like THROTTLE.",
		Complexity: "O(1)",
		Args: []Arg{
			{Name: "key", Type: "key"},
			{Name: "count", Type: "integer"},
			{Name: "period", Type: "integer"},
			{Name: "quantity", Type: "integer", Optional: true},
			{Name: "algorithm", Type: "oneof", Token: "ALGO", Optional: true, Args: []Arg{
				{Name: "fixed", Type: "pure-token", Token: "FIXED"},
				{Name: "sliding", Type: "pure-token", Token: "SLIDING"},
			}},
		},
		Handler: throttleWindow,
	}}
}

// throttleWindow serves THROTTLE.WINDOW key count period [quantity]
// [ALGO fixed|sliding].
func throttleWindow(s *Server, c *resp.Conn, args [][]byte) {
	var v [2]int64
	for i := range v {
		n, err := parseInt(args[2+i])
		if err != nil {
			c.WriteError(errorReply(err))
			return
		}
		v[i] = n
	}
	q, algo := int64(1), window.Sliding
	rest := args[4:]
	if len(rest) > 0 && !strings.EqualFold(string(rest[0]), "algo") {
		n, err := parseInt(rest[0])
		if err != nil {
			c.WriteError(errorReply(err))
			return
		}
		q, rest = n, rest[1:]
	}
	switch {
	case len(rest) == 0:
	case len(rest) == 2 && strings.EqualFold(string(rest[0]), "algo"):
		a, err := window.ParseAlgorithm(rest[1])
		if err != nil {
			c.WriteError(errorReply(err))
			return
		}
		algo = a
	default:
		c.WriteError(errSyntax)
		return
	}
	l, err := window.NewLimit(v[0], v[1])
	if err != nil {
		c.WriteError(errorReply(err))
		return
	}
	now := s.now(c)
	r := s.keys.Take(algo, args[1], now, l, q)
	kind := decidedWindowSliding
	if algo == window.Fixed {
		kind = decidedWindowFixed
	}
	s.decisions.count(kind, r.Limited)
	s.recordDecision(c, s.srcWindow, args[1], r.Limited, now)
	writeResult(c, r)
}
