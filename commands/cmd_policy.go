package commands

import (
	"slices"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/gcra"
	"github.com/sluicehq/sluice/keyspace"
	"github.com/sluicehq/sluice/policy"
	"github.com/sluicehq/sluice/resp"
	"github.com/sluicehq/sluice/topkeys"
)

// policyCommands declares POLICY.THROTTLE, POLICY.LIST and POLICY.GET.
func policyCommands() []*Command {
	return []*Command{
		{Name: "policy.throttle", Arity: -3, Flags: FlagWrite | FlagDenyOOM | FlagFast,
			Categories: []string{"@write", "@fast", "@throttle"}, Group: "throttle", Since: "0.2.0",
			FirstKey: 2, LastKey: 2, Step: 1, QuantityArg: 3,
			Summary: "Applies one request to a key under a named policy (all its limits atomically). Replies [limited, limit, " +
				"remaining, retry_after, reset_after]; with HEADERS also the RateLimit-Policy and RateLimit header values.",
			Complexity: "O(N) where N is the number of limits of the policy",
			Args: []Arg{
				{Name: "policy", Type: "string"},
				{Name: "key", Type: "key"},
				{Name: "quantity", Type: "integer", Optional: true},
				{Name: "headers", Type: "pure-token", Token: "HEADERS", Optional: true},
			},
			Handler: policyThrottle,
		},
		{Name: "policy.list", Arity: 1, Flags: FlagReadonly | FlagFast,
			Categories: []string{"@read", "@fast", "@throttle"}, Group: "throttle", Since: "0.2.0",
			Summary:    "Lists the names of the policies loaded from the policy file, sorted.",
			Complexity: "O(N) where N is the number of policies",
			Handler:    policyList,
		},
		{Name: "policy.get", Arity: 2, Flags: FlagReadonly | FlagFast,
			Categories: []string{"@read", "@fast", "@throttle"}, Group: "throttle", Since: "0.2.0",
			Summary:    "Describes a policy: name, algorithm, limit (rule notation) and overrides (key to limit); null when there is none.",
			Complexity: "O(N) where N is the number of overrides", Args: []Arg{{Name: "policy", Type: "string"}},
			Handler: policyGet,
		},
	}
}

// SetPolicies replaces the policies that POLICY.THROTTLE, POLICY.LIST and
// POLICY.GET serve; calls already running finish with the old ones. nil
// removes every policy. State is kept: a policy whose limits change keeps
// charging the same keys.
func (s *Server) SetPolicies(set *policy.Set) { s.policies.Store(set) }

// Policies returns the policies in use (nil when none were set).
func (s *Server) Policies() *policy.Set { return s.policies.Load() }

// policyStateKey is where limit i of policy name keeps key's state:
// "policy:<name>:<i>:<key>", in the GCRA table for GCRA policies (so DEL,
// TTL and persistence see it) and in the window store otherwise.
func policyStateKey(name string, i int, key []byte) []byte {
	b := make([]byte, 0, len("policy:")+len(name)+4+len(key))
	b = append(b, "policy:"...)
	b = append(b, name...)
	b = append(b, ':')
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, ':')
	return append(b, key...)
}

// policyThrottle serves POLICY.THROTTLE name key [quantity] [HEADERS].
func policyThrottle(s *Server, c *resp.Conn, args [][]byte) {
	q, headers := int64(1), false
	rest := args[3:]
	if len(rest) > 0 && !strings.EqualFold(string(rest[0]), "headers") {
		n, err := parseInt(rest[0])
		if err != nil {
			c.WriteError(errorReply(err))
			return
		}
		q, rest = n, rest[1:]
	}
	switch {
	case len(rest) == 0:
	case len(rest) == 1 && strings.EqualFold(string(rest[0]), "headers"):
		headers = true
	default:
		c.WriteError(errSyntax)
		return
	}
	p := s.policies.Load().Get(args[1])
	if p == nil {
		c.WriteError(errNoPolicy(args[1]))
		return
	}
	key := args[2]
	tier := p.TierFor(key)
	now := s.now(c)
	results := make([]gcra.Result, len(tier.Rates))
	var limited bool
	if p.Algorithm == policy.GCRA {
		checks := make([]keyspace.Check, len(tier.GCRA))
		for i, l := range tier.GCRA {
			checks[i] = keyspace.Check{Key: policyStateKey(p.Name, i, key), Limit: l}
		}
		var err error
		if limited, err = s.keys.ThrottleMulti(checks, now, q, results); err != nil {
			c.WriteError(errorReply(err))
			return
		}
	} else {
		checks := make([]keyspace.WindowCheck, len(tier.Window))
		for i, l := range tier.Window {
			checks[i] = keyspace.WindowCheck{Key: policyStateKey(p.Name, i, key), Limit: l}
		}
		limited = s.keys.TakeMulti(p.Algorithm.Window(), checks, now, q, results)
	}
	if w := s.topWeight(c, now); w > 0 { // the policy's source looked up only when recorded
		s.top.RecordN(s.top.Source(topkeys.Policy, p.Name), key, outcomeOf(limited), now, w)
	}
	o := overall(limited, results)
	s.countPolicy(p, limited)
	if !headers {
		writeResult(c, o)
		return
	}
	c.WriteArray(7)
	writeFive(c, o)
	c.WriteBulkString(rateLimitPolicy(p.Name, tier.Rates))
	c.WriteBulkString(rateLimit(p.Name, tier.Rates, results))
}

// headerItem names limit i of a policy in the RateLimit headers: the
// policy's name when it has one limit, else the name and the window,
// "api-1s", "api-86400s".
func headerItem(name string, rates []policy.Rate, i int) string {
	if len(rates) == 1 {
		return strconv.Quote(name)
	}
	return strconv.Quote(name + "-" + strconv.FormatInt(rates[i].Period, 10) + "s")
}

// rateLimitPolicy is the RateLimit-Policy field value of the IETF draft
// (draft-ietf-httpapi-ratelimit-headers): one item per limit with its
// quota q and window w in seconds: "anon";q=50;w=3600.
func rateLimitPolicy(name string, rates []policy.Rate) string {
	var b strings.Builder
	for i, r := range rates {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(headerItem(name, rates, i))
		b.WriteString(";q=")
		b.WriteString(strconv.FormatInt(r.Count, 10))
		b.WriteString(";w=")
		b.WriteString(strconv.FormatInt(r.Period, 10))
	}
	return b.String()
}

// rateLimit is the RateLimit field value: per limit the remaining quota r
// and the seconds t until it is fully restored: "anon";r=49;t=72.
func rateLimit(name string, rates []policy.Rate, results []gcra.Result) string {
	var b strings.Builder
	for i, r := range results {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(headerItem(name, rates, i))
		b.WriteString(";r=")
		b.WriteString(strconv.FormatInt(r.Remaining, 10))
		b.WriteString(";t=")
		b.WriteString(strconv.FormatInt(gcra.Seconds(r.ResetAfter), 10))
	}
	return b.String()
}

// policyList serves POLICY.LIST.
func policyList(s *Server, c *resp.Conn, _ [][]byte) {
	names := s.policies.Load().Names()
	c.WriteArray(len(names))
	for _, n := range names {
		c.WriteBulkString(n)
	}
}

// policyGet serves POLICY.GET name. Its overrides are keys: a user sees
// only those its ACL key patterns allow, so a tenant does not learn which
// other tenants have limits of their own.
func policyGet(s *Server, c *resp.Conn, args [][]byte) {
	p := s.policies.Load().Get(args[1])
	if p == nil {
		c.WriteNull()
		return
	}
	c.WriteMap(4)
	c.WriteBulkString("name")
	c.WriteBulkString(p.Name)
	c.WriteBulkString("algorithm")
	c.WriteBulkString(p.Algorithm.String())
	c.WriteBulkString("limit")
	c.WriteBulkString(p.Default.Rule)
	c.WriteBulkString("overrides")
	keys := p.OverrideKeys()
	if u := sessionOf(c).user.Load(); !u.AllKeys() {
		keys = slices.DeleteFunc(keys, func(k string) bool { return !u.CanAccess([]byte(k)) })
	}
	c.WriteMap(len(keys))
	for _, k := range keys {
		c.WriteBulkString(k)
		c.WriteBulkString(p.Overrides[k].Rule)
	}
}

// countPolicy counts one POLICY.THROTTLE decision of p.
func (s *Server) countPolicy(p *policy.Policy, limited bool) {
	kind, algo := decidedPolicyGCRA, "gcra"
	switch p.Algorithm {
	case policy.FixedWindow:
		kind, algo = decidedPolicyFixed, "fixed"
	case policy.SlidingWindow:
		kind, algo = decidedPolicySliding, "sliding"
	}
	s.decisions.countPolicy(p.Name, algo, kind, limited)
}
