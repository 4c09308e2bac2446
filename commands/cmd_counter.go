package commands

import (
	"strings"

	"github.com/sluicehq/sluice/counter"
	"github.com/sluicehq/sluice/resp"
)

// counterCommands declares COUNTER.INCRBY and COUNTER.GET: expiring
// counters, the fixed window of the limits library, express-rate-limit and
// go-chi/httprate.
func counterCommands() []*Command {
	return []*Command{
		{Name: "counter.incrby", Arity: -4, Flags: FlagWrite | FlagDenyOOM | FlagFast,
			Categories: []string{"@write", "@fast", "@throttle"}, Group: "throttle", Since: "0.2.0",
			FirstKey: 1, LastKey: 1, Step: 1,
			Summary: "Adds increment to a key's counter. A key without a live counter starts at 0 and keeps it for ttl_ms; " +
				"ELASTIC restarts the ttl on every call. Replies [value, ttl_ms].",
			Complexity: "O(1)",
			Args: []Arg{
				{Name: "key", Type: "key"},
				{Name: "increment", Type: "integer"},
				{Name: "ttl_ms", Type: "integer"},
				{Name: "elastic", Type: "pure-token", Token: "ELASTIC", Optional: true},
			},
			Handler: counterIncrBy,
		},
		{Name: "counter.get", Arity: 2, Flags: FlagReadonly | FlagFast,
			Categories: []string{"@read", "@fast", "@throttle"}, Group: "throttle", Since: "0.2.0",
			FirstKey: 1, LastKey: 1, Step: 1,
			Summary:    "Reads a key's counter. Replies [value, ttl_ms]; [0, -2] when it has none.",
			Complexity: "O(1)",
			Args:       []Arg{{Name: "key", Type: "key"}},
			Handler:    counterGet,
		},
	}
}

// counterIncrBy serves COUNTER.INCRBY key increment ttl_ms [ELASTIC].
func counterIncrBy(s *Server, c *resp.Conn, args [][]byte) {
	elastic := false
	switch {
	case len(args) == 5 && strings.EqualFold(string(args[4]), "elastic"):
		elastic = true
	case len(args) != 4:
		c.WriteError(errSyntax)
		return
	}
	v, err := parseInts(args[2:4])
	if err != nil {
		c.WriteError(errorReply(err))
		return
	}
	ttl, err := counter.TTL(v[1])
	if err != nil {
		c.WriteError(errorReply(err))
		return
	}
	now := s.now(c)
	st, err := s.keys.IncrBy(args[1], now, v[0], ttl, elastic)
	if err != nil {
		c.WriteError(errorReply(err))
		return
	}
	writeCounter(c, st, now)
}

// counterGet serves COUNTER.GET key.
func counterGet(s *Server, c *resp.Conn, args [][]byte) {
	now := s.now(c)
	writeCounter(c, s.keys.Counter(args[1], now), now)
}

// writeCounter replies [value, ttl_ms], the ttl rounded up to whole
// milliseconds, or [0, -2] for no counter.
func writeCounter(c *resp.Conn, st counter.State, now int64) {
	c.WriteArray(2)
	if st.Expires <= now {
		c.WriteInt(0)
		c.WriteInt(-2)
		return
	}
	c.WriteInt(st.Value)
	c.WriteInt(ceilMS(st.Expires - now))
}
