package commands

import (
	"github.com/sluicehq/sluice/gcra"
	"github.com/sluicehq/sluice/resp"
)

// throttle serves THROTTLE and CL.THROTTLE:
// key max_burst count period [quantity] -> [limited, limit, remaining, retry_after, reset_after].
func throttle(s *Server, c *resp.Conn, args [][]byte) {
	l, q, err := gcra.ParseThrottle(args[2:])
	if err != nil {
		c.WriteError(err.Error())
		return
	}
	r, err := s.table.Throttle(args[1], s.clock.Now(), l, q)
	if err != nil {
		c.WriteError(err.Error())
		return
	}
	s.countDecision(args[0], r.Limited)
	writeResult(c, r)
}

func writeResult(c *resp.Conn, r gcra.Result) {
	limited := int64(0)
	if r.Limited {
		limited = 1
	}
	c.WriteArray(5)
	c.WriteInt(limited)
	c.WriteInt(r.Limit)
	c.WriteInt(r.Remaining)
	c.WriteInt(gcra.Seconds(r.RetryAfter))
	c.WriteInt(gcra.Seconds(r.ResetAfter))
}
