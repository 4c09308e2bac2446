package commands

import (
	"strings"

	"github.com/sluicehq/sluice/resp"
)

// keyCommands declares the commands that read, count and remove keys,
// whatever state they hold.
func keyCommands() []*Command {
	flushArgs := []Arg{{Name: "flush-type", Type: "oneof", Optional: true, Args: []Arg{
		{Name: "async", Type: "pure-token", Token: "ASYNC"}, {Name: "sync", Type: "pure-token", Token: "SYNC"}}}}
	return []*Command{
		{Name: "del", Arity: -2, Flags: FlagWrite, Categories: []string{"@keyspace", "@write", "@slow"},
			Group: "generic", Since: "0.1.0", FirstKey: 1, LastKey: -1, Step: 1,
			Summary:    "Deletes the throttle state of keys, resetting their limits. Replies with how many had live state.",
			Complexity: "O(N) where N is the number of keys", Args: []Arg{{Name: "key", Type: "key", Multiple: true}}, Handler: del},
		{Name: "exists", Arity: -2, Flags: FlagReadonly | FlagFast, Categories: []string{"@keyspace", "@read", "@fast"},
			Group: "generic", Since: "0.1.0", FirstKey: 1, LastKey: -1, Step: 1,
			Summary:    "Counts the keys that have live throttle state.",
			Complexity: "O(N) where N is the number of keys", Args: []Arg{{Name: "key", Type: "key", Multiple: true}}, Handler: exists},
		{Name: "ttl", Arity: 2, Flags: FlagReadonly | FlagFast, Categories: []string{"@keyspace", "@read", "@fast"},
			Group: "generic", Since: "0.1.0", FirstKey: 1, LastKey: 1, Step: 1,
			Summary:    "Seconds until a key's state expires (its TAT), -2 when it has none.",
			Complexity: "O(1)", Args: []Arg{{Name: "key", Type: "key"}}, Handler: ttl},
		{Name: "pttl", Arity: 2, Flags: FlagReadonly | FlagFast, Categories: []string{"@keyspace", "@read", "@fast"},
			Group: "generic", Since: "0.1.0", FirstKey: 1, LastKey: 1, Step: 1,
			Summary:    "Milliseconds until a key's state expires (its TAT), -2 when it has none.",
			Complexity: "O(1)", Args: []Arg{{Name: "key", Type: "key"}}, Handler: pttl},
		{Name: "dbsize", Arity: 1, Flags: FlagReadonly | FlagFast, Categories: []string{"@keyspace", "@read", "@fast"},
			Group: "server", Since: "0.1.0", Summary: "Number of keys with throttle state.", Complexity: "O(shards)", Handler: dbsize},
		{Name: "flushall", Arity: -1, Flags: FlagWrite, Categories: []string{"@keyspace", "@write", "@slow", "@dangerous"},
			Group: "server", Since: "0.1.0", Summary: "Removes all throttle state.", Complexity: "O(shards)",
			Args: flushArgs, Handler: flush},
		{Name: "flushdb", Arity: -1, Flags: FlagWrite, Categories: []string{"@keyspace", "@write", "@slow", "@dangerous"},
			Group: "server", Since: "0.1.0", Summary: "Removes all throttle state (there is one database).", Complexity: "O(shards)",
			Args: flushArgs, Handler: flush},
	}
}

func del(s *Server, c *resp.Conn, args [][]byte) {
	now := s.clock.Now()
	n := int64(0)
	for _, k := range args[1:] {
		if s.keys.Delete(k, now) {
			n++
		}
	}
	c.WriteInt(n)
}

func exists(s *Server, c *resp.Conn, args [][]byte) {
	now := s.clock.Now()
	n := int64(0)
	for _, k := range args[1:] {
		if _, ok := s.keys.Expires(k, now); ok {
			n++
		}
	}
	c.WriteInt(n)
}

// remaining returns the milliseconds until the last of key's state stops
// mattering, or -2 when it has none.
func remaining(s *Server, key []byte) int64 {
	now := s.clock.Now()
	at, ok := s.keys.Expires(key, now)
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
	c.WriteInt(int64(s.keys.Len()))
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
	n := s.keys.Flush()
	s.log.Info("flushed all throttle state", "keys", n, "client", sessionOf(c).addr)
	c.WriteSimple("OK")
}
