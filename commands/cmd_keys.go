package commands

import (
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/acl"
	"github.com/sluicehq/sluice/keyspace"
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
		{Name: "scan", Arity: -2, Flags: FlagReadonly, Categories: []string{"@keyspace", "@read", "@slow"},
			Group: "generic", Since: "0.2.0",
			Summary: "Iterates over the keys holding state: replies [next cursor, [key ...]]; a scan is complete when the cursor is 0 again. " +
				"Every key holding state for the whole scan is returned; TYPE filters by kind (gcra, window, lease, counter, log); " +
				"a user limited by ACL key patterns sees only the keys it may access.",
			Complexity: "O(1) for every call. O(N) for a complete iteration.",
			Args: []Arg{{Name: "cursor", Type: "integer"},
				{Name: "pattern", Type: "pattern", Token: "MATCH", Optional: true},
				{Name: "count", Type: "integer", Token: "COUNT", Optional: true},
				{Name: "type", Type: "string", Token: "TYPE", Optional: true}},
			Handler: scan},
		{Name: "type", Arity: 2, Flags: FlagReadonly | FlagFast, Categories: []string{"@keyspace", "@read", "@fast"},
			Group: "generic", Since: "0.2.0", FirstKey: 1, LastKey: 1, Step: 1,
			Summary:    "The kind of state a key holds: gcra, window or lease (several joined by commas, as gcra,window), none when it holds none.",
			Complexity: "O(1)", Args: []Arg{{Name: "key", Type: "key"}}, Handler: typeCmd},
		{Name: "flushall", Arity: -1, Flags: FlagWrite, Categories: []string{"@keyspace", "@write", "@slow", "@dangerous"},
			Group: "server", Since: "0.1.0", Summary: "Removes all throttle state.", Complexity: "O(shards)",
			Args: flushArgs, Handler: flush},
		{Name: "flushdb", Arity: -1, Flags: FlagWrite, Categories: []string{"@keyspace", "@write", "@slow", "@dangerous"},
			Group: "server", Since: "0.1.0", Summary: "Removes all throttle state (there is one database).", Complexity: "O(shards)",
			Args: flushArgs, Handler: flush},
	}
}

func del(s *Server, c *resp.Conn, args [][]byte) {
	now := s.now(c)
	n := int64(0)
	for _, k := range args[1:] {
		if s.keys.Delete(k, now) {
			n++
		}
	}
	c.WriteInt(n)
}

func exists(s *Server, c *resp.Conn, args [][]byte) {
	now := s.now(c)
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

// scanKinds maps SCAN's TYPE argument to the kinds it selects: Sluice's
// own, and Redis's types, which no key here has.
var scanKinds = map[string]keyspace.Kind{
	"gcra": keyspace.GCRA, "window": keyspace.Window, "lease": keyspace.Lease,
	"counter": keyspace.Counter, "log": keyspace.Log,
}

// scan serves SCAN cursor [MATCH pattern] [COUNT count] [TYPE type] over
// the keyspace (see Keyspace.Scan for the guarantee). As in Redis, COUNT
// bounds the keys looked at, MATCH and TYPE filter afterwards (a reply may
// be empty before the scan ends), and a type no key has (string, hash...)
// matches nothing. A user whose ACL limits its keys sees only those.
func scan(s *Server, c *resp.Conn, args [][]byte) {
	cursor, err := parseCursor(args[1])
	if err != nil {
		c.WriteError(errInvalidCursor)
		return
	}
	count, pattern := 10, ""
	var kind keyspace.Kind
	typed := false
	for rest := args[2:]; len(rest) > 0; rest = rest[2:] {
		if len(rest) < 2 {
			c.WriteError(errSyntax)
			return
		}
		switch strings.ToUpper(string(rest[0])) {
		case "MATCH":
			pattern = string(rest[1])
		case "COUNT":
			n, err := parseInt(rest[1])
			if err != nil {
				c.WriteError(errNotInteger)
				return
			}
			if n < 1 {
				c.WriteError(errSyntax)
				return
			}
			count = int(min(n, 1<<20))
		case "TYPE":
			typed = true
			kind = scanKinds[strings.ToLower(string(rest[1]))] // 0 (none) for Redis's types
		default:
			c.WriteError(errSyntax)
			return
		}
	}
	now := s.now(c)
	batch, next := s.keys.Scan(cursor, count, now, nil)
	user := sessionOf(c).user.Load()
	keep := batch[:0]
	for _, e := range batch {
		switch {
		case typed && !e.Kinds.Has(kind):
		case pattern != "" && pattern != "*" && !acl.Match(pattern, e.Key):
		case !user.AllKeys() && !user.CanAccess(e.Key):
		default:
			keep = append(keep, e)
		}
	}
	c.WriteArray(2)
	c.WriteBulkString(strconv.FormatUint(next, 10))
	c.WriteArray(len(keep))
	for _, e := range keep {
		c.WriteBulk(e.Key)
	}
}

// parseCursor reads SCAN's cursor: an unsigned 64-bit integer (a negative
// one wraps around, as Redis's strtoull does).
func parseCursor(b []byte) (uint64, error) {
	if n, err := strconv.ParseUint(string(b), 10, 64); err == nil {
		return n, nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	return uint64(n), err
}

// typeCmd serves TYPE key: the kinds of state the key holds.
func typeCmd(s *Server, c *resp.Conn, args [][]byte) {
	c.WriteSimple(s.keys.KindsOf(args[1], s.now(c)).String())
}
