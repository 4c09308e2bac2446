package commands

import (
	"math"
	"strconv"
	"strings"
	"sync"

	"github.com/sluicehq/sluice/resp"
)

// The slow log: the latest commands that ran at least as long as a
// threshold, with their arguments (SLOWLOG GET, LEN, RESET), as Redis 7
// keeps it (src/slowlog.c).

// Defaults of SlowlogConfig, Redis's.
const (
	DefaultSlowlogSlowerThan = 10000 // µs
	DefaultSlowlogMaxLen     = 128
)

// The bounds of one entry, Redis's: at most slowlogMaxArgs arguments (the
// last of them then says how many more there were), each at most
// slowlogMaxArgLen bytes (followed by how many more there were).
const (
	slowlogMaxArgs   = 32
	slowlogMaxArgLen = 128
)

// SlowlogConfig configures the slow log.
type SlowlogConfig struct {
	// SlowerThan is slowlog-log-slower-than: log the commands that ran at
	// least this many microseconds; 0 logs every command, a negative
	// value none.
	SlowerThan int64
	// MaxLen is slowlog-max-len: how many entries are kept, the oldest
	// dropped first; 0 keeps none.
	MaxLen int
}

// slowlog is the slow log: a ring of at most maxLen entries. Its memory is
// bounded by maxLen entries of at most 32 arguments of at most 128 bytes
// (and the client's address and name).
type slowlog struct {
	slowerThan int64 // ns; math.MaxInt64 when off (run compares every call to it)
	maxLen     int

	mu      sync.Mutex
	nextID  int64
	entries []slowEntry // a ring: the newest at entries[(head+len-1)%maxLen]
	head    int         // the oldest entry's index when the ring is full
}

// slowEntry is one logged command.
type slowEntry struct {
	id, unix, micros int64
	args             []string
	addr, name       string
}

// init sets the log up from cfg (nil: the defaults).
func (l *slowlog) init(cfg *SlowlogConfig) {
	c := SlowlogConfig{SlowerThan: DefaultSlowlogSlowerThan, MaxLen: DefaultSlowlogMaxLen}
	if cfg != nil {
		c = *cfg
	}
	l.slowerThan, l.maxLen = math.MaxInt64, max(c.MaxLen, 0)
	if c.SlowerThan >= 0 && l.maxLen > 0 && c.SlowerThan <= math.MaxInt64/1000 {
		l.slowerThan = c.SlowerThan * 1000
	}
}

// add logs a call of cmd that took d nanoseconds and ended at unixNs.
func (l *slowlog) add(cmd *Command, sess *session, args [][]byte, d, unixNs int64) {
	e := slowEntry{unix: unixNs / 1e9, micros: d / 1e3, args: slowlogArgs(cmd, args), addr: sess.addr}
	if name := sess.name.Load(); name != nil {
		e.name = *name
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e.id = l.nextID
	l.nextID++
	if len(l.entries) < l.maxLen {
		l.entries = append(l.entries, e)
		return
	}
	l.entries[l.head] = e
	l.head = (l.head + 1) % l.maxLen
}

// slowlogArgs copies a call's arguments as the slow log keeps them:
// passwords redacted, at most slowlogMaxArgs arguments and
// slowlogMaxArgLen bytes each, as Redis words the cuts.
func slowlogArgs(cmd *Command, args [][]byte) []string {
	from, to := 0, 0
	if cmd.Redact != nil {
		from, to = cmd.Redact(args)
	}
	n := min(len(args), slowlogMaxArgs)
	out := make([]string, n)
	for i := range n {
		switch a := args[i]; {
		case n != len(args) && i == n-1:
			out[i] = "... (" + strconv.Itoa(len(args)-n+1) + " more arguments)"
		case i >= from && i < to:
			out[i] = "(redacted)"
		case len(a) > slowlogMaxArgLen:
			out[i] = string(a[:slowlogMaxArgLen]) + "... (" + strconv.Itoa(len(a)-slowlogMaxArgLen) + " more bytes)"
		default:
			out[i] = string(a)
		}
	}
	return out
}

// newest returns up to count entries, the newest first (count < 0: all).
func (l *slowlog) newest(count int64) []slowEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.entries)
	if count >= 0 && count < int64(n) {
		n = int(count)
	}
	out := make([]slowEntry, 0, n)
	for k := range n {
		i := (l.head + len(l.entries) - 1 - k) % len(l.entries)
		out = append(out, l.entries[i])
	}
	return out
}

func (l *slowlog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// reset empties the log; ids keep counting, as in Redis.
func (l *slowlog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries, l.head = nil, 0
}

// errSlowlogCount is Redis's reply to a SLOWLOG GET count below -1 or not
// an integer.
const errSlowlogCount = "ERR count should be greater than or equal to -1"

// slowlogGet serves SLOWLOG GET [count]: the newest count entries (10 by
// default, -1 for all), each [id, unix time, microseconds, arguments,
// client address, client name].
func slowlogGet(s *Server, c *resp.Conn, args [][]byte) {
	count := int64(10)
	if len(args) > 3 {
		c.WriteError(errSubcommandSyntax(args[1], "SLOWLOG"))
		return
	}
	if len(args) == 3 {
		n, err := parseInt(args[2])
		if err != nil || n < -1 {
			c.WriteError(errSlowlogCount)
			return
		}
		count = n
	}
	entries := s.slowlog.newest(count)
	c.WriteArray(len(entries))
	for _, e := range entries {
		c.WriteArray(6)
		c.WriteInt(e.id)
		c.WriteInt(e.unix)
		c.WriteInt(e.micros)
		c.WriteArray(len(e.args))
		for _, a := range e.args {
			c.WriteBulkString(a)
		}
		c.WriteBulkString(e.addr)
		c.WriteBulkString(e.name)
	}
}

func slowlogLen(s *Server, c *resp.Conn, _ [][]byte) { c.WriteInt(int64(s.slowlog.len())) }

func slowlogReset(s *Server, c *resp.Conn, _ [][]byte) {
	s.slowlog.reset()
	c.WriteSimple("OK")
}

func slowlogHelp(_ *Server, c *resp.Conn, _ [][]byte) {
	writeHelp(c, "SLOWLOG", []string{
		"GET [<count>]",
		"    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
		"    Entries are made of:",
		"    id, timestamp, time in microseconds, arguments array, client IP and port,",
		"    client name",
		"LEN",
		"    Return the length of the slowlog.",
		"RESET",
		"    Reset the slowlog.",
	})
}

// redactAuth hides AUTH's username and password.
func redactAuth(args [][]byte) (from, to int) { return 1, len(args) }

// redactHello hides HELLO's AUTH username and password.
func redactHello(args [][]byte) (from, to int) {
	for i := 2; i+2 < len(args); i++ {
		if strings.EqualFold(string(args[i]), "auth") {
			return i + 1, i + 3
		}
	}
	return 0, 0
}
