package commands

import (
	"strings"

	"github.com/sluicehq/sluice/resp"
)

func del(s *Server, c *resp.Conn, args [][]byte) {
	now := s.clock.Now()
	n := int64(0)
	for _, k := range args[1:] {
		if s.table.Delete(k, now) || s.beyond.windows.Delete(k, now) {
			n++
		}
	}
	c.WriteInt(n)
}

func exists(s *Server, c *resp.Conn, args [][]byte) {
	now := s.clock.Now()
	n := int64(0)
	for _, k := range args[1:] {
		if _, ok := s.expires(k, now); ok {
			n++
		}
	}
	c.WriteInt(n)
}

// expires returns when key's state stops mattering: its TAT, or the end of
// its window or of its last lease.
func (s *Server) expires(key []byte, now int64) (int64, bool) {
	if tat, ok := s.table.Get(key, now); ok {
		return tat, true
	}
	if at, ok := s.beyond.windows.Expires(key, now); ok {
		return at, true
	}
	return s.beyond.leases.Expires(key, now)
}

// remaining returns the milliseconds until key's state stops mattering, or
// -2 when it has none.
func remaining(s *Server, key []byte) int64 {
	now := s.clock.Now()
	at, ok := s.expires(key, now)
	if !ok {
		return -2
	}
	return (at - now) / 1e6
}

func pttl(s *Server, c *resp.Conn, args [][]byte) { c.WriteInt(remaining(s, args[1])) }

func ttl(s *Server, c *resp.Conn, args [][]byte) {
	ms := remaining(s, args[1])
	if ms >= 0 {
		ms = (ms + 500) / 1000 // Redis rounds TTL to the nearest second
	}
	c.WriteInt(ms)
}

func dbsize(s *Server, c *resp.Conn, _ [][]byte) {
	c.WriteInt(int64(s.table.Len() + s.beyond.windows.Len() + s.beyond.leases.Len()))
}

func flush(s *Server, c *resp.Conn, args [][]byte) {
	if len(args) == 2 {
		switch strings.ToUpper(string(args[1])) {
		case "ASYNC", "SYNC":
		default:
			c.WriteError(errSyntax)
			return
		}
	} else if len(args) > 2 {
		c.WriteError(errSyntax)
		return
	}
	n := s.table.Flush() + s.beyond.windows.Flush() + s.beyond.leases.Flush()
	s.log.Info("flushed all throttle state", "keys", n, "client", sessionOf(c).addr)
	c.WriteSimple("OK")
}
