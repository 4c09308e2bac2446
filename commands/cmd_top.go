package commands

import (
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/gcra"
	"github.com/sluicehq/sluice/keyspace"
	"github.com/sluicehq/sluice/resp"
	"github.com/sluicehq/sluice/topkeys"
)

// THROTTLE.TOP's bounds and defaults.
const (
	topDefaultCount  = 10
	topMaxCount      = 100 // past it the counts are mostly error: see topkeys
	topDefaultWindow = 60
)

// topCommands declares THROTTLE.TOP.
func topCommands() []*Command {
	return []*Command{{Name: "throttle.top", Arity: -1, Flags: FlagReadonly,
		Categories: []string{"@read", "@slow", "@throttle"}, Group: "throttle", Since: "0.3.0",
		Summary: "Lists the keys with the most decisions (refusals by default) over the last seconds, most first: " +
			"[[key, count], ...]. Approximate (a bounded-memory sketch, see README); a user sees only the keys its ACL key patterns allow.",
		Complexity: "O(S·B·C) where S, B and C are the sketch's shards, buckets in the window and counters per bucket",
		Args: []Arg{
			{Name: "count", Type: "integer", Token: "COUNT", Optional: true},
			{Name: "policy", Type: "string", Token: "POLICY", Optional: true},
			{Name: "outcome", Type: "oneof", Optional: true, Args: []Arg{
				{Name: "limited", Type: "pure-token", Token: "LIMITED"},
				{Name: "allowed", Type: "pure-token", Token: "ALLOWED"},
			}},
			{Name: "seconds", Type: "integer", Token: "WINDOW", Optional: true},
		},
		Handler: throttleTop,
	}}
}

// initTopKeys sets up the decision sketch and registers the commands that
// record into it.
func (s *Server) initTopKeys() {
	if s.cfg.NoTopKeys {
		return
	}
	s.top = s.cfg.TopKeys
	if s.top == nil {
		s.top = topkeys.New(topkeys.Options{})
	}
	s.srcThrottle = s.top.Source(topkeys.Command, "throttle")
	s.srcCLThrottle = s.top.Source(topkeys.Command, "cl.throttle")
	s.srcWindow = s.top.Source(topkeys.Command, "throttle.window")
	s.srcMulti = s.top.Source(topkeys.Command, "throttle.multi")
}

// TopKeys is the decision sketch THROTTLE.TOP reads; nil with NoTopKeys.
func (s *Server) TopKeys() *topkeys.Recorder { return s.top }

// topWeight is the weight to record a decision of c's at now with: 0 (top
// keys off, or the connection's sampler passes over it), 1, or
// topkeys.SampleEvery for a busy connection. Passing over is inlined.
func (s *Server) topWeight(c *resp.Conn, now int64) uint64 {
	if s.top == nil {
		return 0
	}
	sess, ok := c.Context().(*session)
	if !ok || sess.topKeys.Pass(now) {
		return 0
	}
	return sess.topKeys.Next(s.top, now)
}

func outcomeOf(limited bool) topkeys.Outcome {
	if limited {
		return topkeys.Limited
	}
	return topkeys.Allowed
}

// recordMulti records a multi-limit decision: admitted, every key was
// admitted; refused, the keys whose own limit refused are counted as
// limited (the others were not charged and are not counted).
func (s *Server) recordMulti(c *resp.Conn, src topkeys.Source, checks []keyspace.Check, limited bool, results []gcra.Result, now int64) {
	w := s.topWeight(c, now)
	if w == 0 {
		return
	}
	for i, ch := range checks {
		if !limited || results[i].Limited {
			s.top.RecordN(src, ch.Key, outcomeOf(limited), now, w)
		}
	}
}

// topQuery is a parsed THROTTLE.TOP.
type topQuery struct {
	count   int
	policy  []byte // nil: every command and policy
	outcome topkeys.Outcome
	window  int64 // seconds
}

// parseTop parses THROTTLE.TOP's options, in any order; a repeated option
// takes its last value. It returns the error reply for bad ones.
func parseTop(args [][]byte, maxWindow int64) (topQuery, string) {
	q := topQuery{count: topDefaultCount, outcome: topkeys.Limited, window: topDefaultWindow}
	for i := 0; i < len(args); i++ {
		opt := strings.ToLower(string(args[i]))
		switch opt {
		case "limited":
			q.outcome = topkeys.Limited
			continue
		case "allowed":
			q.outcome = topkeys.Allowed
			continue
		case "count", "policy", "window":
		default:
			return q, errSyntax
		}
		if i+1 >= len(args) {
			return q, errSyntax
		}
		i++
		if opt == "policy" {
			q.policy = args[i]
			continue
		}
		n, err := parseInt(args[i])
		if err != nil {
			return q, errNotInteger
		}
		if opt == "count" {
			if n < 1 || n > topMaxCount {
				return q, "ERR COUNT must be between 1 and " + strconv.Itoa(topMaxCount)
			}
			q.count = int(n)
		} else {
			if n < 1 || n > maxWindow {
				return q, "ERR WINDOW must be between 1 and " + strconv.FormatInt(maxWindow, 10) + " seconds"
			}
			q.window = n
		}
	}
	return q, ""
}

// errTopKeysOff is THROTTLE.TOP's reply when decisions are not recorded.
const errTopKeysOff = "ERR top keys are not recorded on this server (top-keys is off)"

// throttleTop serves THROTTLE.TOP [COUNT n] [POLICY name]
// [LIMITED|ALLOWED] [WINDOW seconds].
func throttleTop(s *Server, c *resp.Conn, args [][]byte) {
	if s.top == nil {
		c.WriteError(errTopKeysOff)
		return
	}
	tq, bad := parseTop(args[1:], int64(s.top.Options().MaxWindow/time.Second))
	if bad != "" {
		c.WriteError(bad)
		return
	}
	q := topkeys.Query{Now: s.clock.Now(), Window: time.Duration(tq.window) * time.Second, Outcome: tq.outcome, Count: tq.count}
	if tq.policy != nil {
		src, ok := s.top.Lookup(topkeys.Policy, string(tq.policy))
		if !ok && s.policies.Load().Get(tq.policy) == nil {
			c.WriteError(errNoPolicy(tq.policy))
			return
		}
		if !ok { // loaded, never used: nothing to list
			c.WriteArray(0)
			return
		}
		q.Sources = []topkeys.Source{src}
	}
	if u := sessionOf(c).user.Load(); !u.AllKeys() {
		// A key cut short could match a pattern its whole would not:
		// only users who see every key see those.
		q.Accept = func(k []byte, truncated bool) bool { return !truncated && u.CanAccess(k) }
	}
	res := s.top.Top(q)
	c.WriteArray(len(res.Entries))
	for _, e := range res.Entries {
		c.WriteArray(2)
		c.WriteBulkString(e.Key)
		c.WriteInt(int64(e.Count))
	}
}
