package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultTimeout is how long the middleware waits for Sluice when
// [MiddlewareConfig.Timeout] is zero.
const DefaultTimeout = 100 * time.Millisecond

// Rule is one rate limit the middleware can apply: exactly one of Limit,
// Limits and Policy says what it charges.
type Rule struct {
	// Name identifies the policy in the RateLimit and RateLimit-Policy
	// fields (e.g. "anon") and in Sluice's key. Printable ASCII, required.
	Name string
	// Limit is the rate (THROTTLE).
	Limit Limit
	// Limits are several rates charged together, atomically
	// (THROTTLE.MULTI): a request is admitted only when every limit
	// admits it, and then every limit is charged, e.g. 10 per second and
	// 1000 per day. Limit i keeps its state under the rule's key + ":" + i.
	Limits []Limit
	// Policy names a policy of the server's policy file (POLICY.THROTTLE):
	// the limits, the algorithm and per-key overrides live on the server,
	// which also words the RateLimit and RateLimit-Policy fields. The key
	// is sent as Key returns it (no Prefix, no Name: the server keeps a
	// policy's state apart), so the policy file's overrides name the keys
	// Key returns.
	Policy string
	// Key picks the bucket. When it does not apply to a request (ok false),
	// the next rule is tried. Required.
	Key KeyFunc
	// Quantity is what one request costs; 0 means 1.
	Quantity int64
}

// FailureMode is what the middleware does with a request when Sluice cannot
// answer within the timeout (unreachable, overloaded, an error reply).
type FailureMode int

const (
	// FailOpen serves the request unlimited and without rate-limit headers:
	// a limiter outage does not become an API outage. The zero value.
	FailOpen FailureMode = iota
	// FailClosed refuses the request with 503 Service Unavailable and
	// Retry-After: 1: nothing is served unless it was counted.
	FailClosed
)

// MiddlewareConfig configures [NewMiddleware].
type MiddlewareConfig struct {
	// Client talks to Sluice. Required.
	Client *Client
	// Rules are tried in order; the first whose Key applies limits the
	// request. A request no rule applies to is served unlimited, so end
	// with a rule keyed by [ClientIP] to cover everyone.
	Rules []Rule
	// Prefix is prepended to every Sluice key: Prefix + Rule.Name + ":" + key
	// (not for Policy rules).
	Prefix string
	// Timeout bounds each THROTTLE round trip, whatever the go-redis
	// client's own timeouts are. 0 means [DefaultTimeout].
	Timeout time.Duration
	// OnFailure chooses between [FailOpen] (the default) and [FailClosed].
	OnFailure FailureMode
	// OnError is told about every failed THROTTLE call, before the failure
	// mode applies. nil logs a warning with slog.Default().
	OnError func(r *http.Request, err error)
	// Limited writes the response to a refused request, after the status
	// headers are set (Retry-After and the rate-limit fields are already in
	// w.Header(); it must call w.WriteHeader(http.StatusTooManyRequests)).
	// nil writes a plain-text 429.
	Limited http.Handler
}

// Middleware rate-limits HTTP handlers through Sluice. Create it with
// [NewMiddleware]; it is safe for concurrent use.
//
// The response to every request a rule applies to, allowed or refused,
// carries (for a rule named "anon" allowing 50 per hour):
//
//	X-RateLimit-Limit: 50            the most requests that fit at once (Burst+1)
//	X-RateLimit-Remaining: 49        how many fit right now
//	X-RateLimit-Reset: 72            seconds until the limit is full again
//	RateLimit-Policy: "anon";q=50;w=3600   the rule: Count per Period seconds
//	RateLimit: "anon";r=49;t=72      remaining and reset, per draft-ietf-httpapi-ratelimit-headers
//
// and a refused request gets 429 Too Many Requests with Retry-After (seconds).
// A rule of several [Rule.Limits] lists one item per limit in RateLimit and
// RateLimit-Policy ("api-1s", "api-86400s"); a [Rule.Policy] rule sends the
// server's own values. When Sluice does not answer, no rate-limit fields
// are written; see [FailureMode].
type Middleware struct {
	cfg MiddlewareConfig
}

// NewMiddleware checks cfg and returns the middleware.
func NewMiddleware(cfg MiddlewareConfig) (*Middleware, error) {
	if cfg.Client == nil {
		return nil, errors.New("sluice middleware: no Client")
	}
	if len(cfg.Rules) == 0 {
		return nil, errors.New("sluice middleware: no Rules")
	}
	if cfg.OnFailure != FailOpen && cfg.OnFailure != FailClosed {
		return nil, fmt.Errorf("sluice middleware: unknown OnFailure %d", cfg.OnFailure)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("sluice middleware: negative Timeout %s", cfg.Timeout)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	seen := map[string]bool{}
	cfg.Rules = append([]Rule(nil), cfg.Rules...)
	for i, rule := range cfg.Rules {
		if rule.Name == "" || strings.IndexFunc(rule.Name, func(c rune) bool { return c < 0x20 || c > 0x7e }) >= 0 {
			return nil, fmt.Errorf("sluice middleware: rule %d: name %q must be non-empty printable ASCII", i, rule.Name)
		}
		if seen[rule.Name] {
			return nil, fmt.Errorf("sluice middleware: rule name %q used twice", rule.Name)
		}
		seen[rule.Name] = true
		if rule.Key == nil {
			return nil, fmt.Errorf("sluice middleware: rule %q: no Key", rule.Name)
		}
		if err := rule.validate(); err != nil {
			return nil, fmt.Errorf("sluice middleware: rule %q: %w", rule.Name, err)
		}
		if rule.Quantity == 0 {
			cfg.Rules[i].Quantity = 1
		}
	}
	return &Middleware{cfg: cfg}, nil
}

// Wrap returns next, rate-limited.
func (m *Middleware) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rule, key, ok := m.match(r)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		if rule.Policy == "" {
			key = m.cfg.Prefix + rule.Name + ":" + key
		}
		d, err := m.throttle(r.Context(), key, rule)
		if err != nil {
			m.failed(w, r, next, err)
			return
		}
		res := d.Result
		d.setHeaders(w.Header(), rule)
		if !res.Limited {
			next.ServeHTTP(w, r)
			return
		}
		if res.RetryAfter >= 0 {
			w.Header().Set("Retry-After", strconv.FormatInt(wholeSeconds(res.RetryAfter), 10))
		}
		if m.cfg.Limited != nil {
			m.cfg.Limited.ServeHTTP(w, r)
			return
		}
		http.Error(w, "429 too many requests", http.StatusTooManyRequests)
	})
}

// validate checks that exactly one of Limit, Limits and Policy is set, and
// the limits.
func (rule Rule) validate() error {
	set := 0
	for _, b := range []bool{rule.Limit != Limit{}, len(rule.Limits) > 0, rule.Policy != ""} {
		if b {
			set++
		}
	}
	if set != 1 {
		return fmt.Errorf("%w: set exactly one of Limit, Limits and Policy", ErrInvalidLimit)
	}
	if len(rule.Limits) == 0 && rule.Policy == "" {
		return rule.Limit.Validate()
	}
	for i, l := range rule.Limits {
		if err := l.Validate(); err != nil {
			return fmt.Errorf("limit %d: %w", i, err)
		}
	}
	return nil
}

func (m *Middleware) match(r *http.Request) (Rule, string, bool) {
	for _, rule := range m.cfg.Rules {
		if key, ok := rule.Key(r); ok {
			return rule, key, true
		}
	}
	return Rule{}, "", false
}

// decision is what Sluice answered for one request under one rule.
type decision struct {
	Result
	each   []Result     // per limit, for a rule of several Limits
	policy PolicyResult // for a rule naming a Policy
}

// decide asks Sluice about one request under rule.
func (m *Middleware) decide(ctx context.Context, key string, rule Rule) (decision, error) {
	switch {
	case rule.Policy != "":
		p, err := m.cfg.Client.PolicyThrottle(ctx, rule.Policy, key, rule.Quantity)
		return decision{Result: p.Result, policy: p}, err
	case len(rule.Limits) > 0:
		checks := make([]Check, len(rule.Limits))
		for i, l := range rule.Limits {
			checks[i] = Check{Key: key + ":" + strconv.Itoa(i), Limit: l}
		}
		mr, err := m.cfg.Client.ThrottleMulti(ctx, checks, rule.Quantity)
		return decision{Result: mr.Result, each: mr.Each}, err
	}
	res, err := m.cfg.Client.Throttle(ctx, key, rule.Limit, rule.Quantity)
	return decision{Result: res}, err
}

// throttle makes one call bounded by the timeout even when the go-redis
// client ignores context deadlines on its sockets (its default): the call
// runs in a goroutine that ends on the client's own read timeout.
func (m *Middleware) throttle(ctx context.Context, key string, rule Rule) (decision, error) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
	defer cancel()
	type answer struct {
		d   decision
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		d, err := m.decide(ctx, key, rule)
		ch <- answer{d, err}
	}()
	select {
	case a := <-ch:
		return a.d, a.err
	case <-ctx.Done():
		return decision{}, fmt.Errorf("sluice: rate limit %q: %w", key, context.Cause(ctx))
	}
}

// setHeaders writes the rate-limit fields of d under rule: for one limit
// as SetHeaders does; for several, X-RateLimit-* from the overall decision
// and one RateLimit-Policy and RateLimit item per limit, named
// "<name>-<period>s" (as POLICY.THROTTLE names them); for a policy, the
// server's own RateLimit-Policy and RateLimit values.
func (d decision) setHeaders(h http.Header, rule Rule) {
	switch {
	case rule.Policy != "":
		setLegacyHeaders(h, d.Result)
		h.Set("RateLimit-Policy", d.policy.RateLimitPolicy)
		h.Set("RateLimit", d.policy.RateLimit)
	case len(rule.Limits) > 0:
		setLegacyHeaders(h, d.Result)
		policies := make([]string, len(rule.Limits))
		limits := make([]string, len(rule.Limits))
		for i, l := range rule.Limits {
			q := sfString(rule.Name + "-" + strconv.FormatInt(l.seconds(), 10) + "s")
			policies[i] = q + ";q=" + strconv.FormatInt(l.Count, 10) + ";w=" + strconv.FormatInt(l.seconds(), 10)
			limits[i] = q + ";r=" + strconv.FormatInt(d.each[i].Remaining, 10) + ";t=" + strconv.FormatInt(wholeSeconds(d.each[i].ResetAfter), 10)
		}
		h.Set("RateLimit-Policy", strings.Join(policies, ", "))
		h.Set("RateLimit", strings.Join(limits, ", "))
	default:
		SetHeaders(h, rule.Name, rule.Limit, d.Result)
	}
}

func (m *Middleware) failed(w http.ResponseWriter, r *http.Request, next http.Handler, err error) {
	if m.cfg.OnError != nil {
		m.cfg.OnError(r, err)
	} else {
		slog.Default().Warn("rate limiter unavailable", "err", err, "failure_mode", m.cfg.OnFailure.String())
	}
	if m.cfg.OnFailure == FailOpen {
		next.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Retry-After", "1")
	http.Error(w, "503 rate limiter unavailable", http.StatusServiceUnavailable)
}

// String returns "fail-open" or "fail-closed".
func (f FailureMode) String() string {
	switch f {
	case FailOpen:
		return "fail-open"
	case FailClosed:
		return "fail-closed"
	}
	return "FailureMode(" + strconv.Itoa(int(f)) + ")"
}

// SetHeaders writes the rate-limit fields for res under the policy named
// name into h: X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset
// (seconds until full), RateLimit-Policy ("name";q=Count;w=Period seconds)
// and RateLimit ("name";r=remaining;t=seconds until full). Retry-After is the
// caller's to set. [Middleware] calls it; it is exported for handlers that
// call [Client.Throttle] themselves.
func SetHeaders(h http.Header, name string, l Limit, res Result) {
	setLegacyHeaders(h, res)
	reset := strconv.FormatInt(wholeSeconds(res.ResetAfter), 10)
	remaining := strconv.FormatInt(res.Remaining, 10)
	q := sfString(name)
	h.Set("RateLimit-Policy", q+";q="+strconv.FormatInt(l.Count, 10)+";w="+strconv.FormatInt(l.seconds(), 10))
	h.Set("RateLimit", q+";r="+remaining+";t="+reset)
}

// setLegacyHeaders writes X-RateLimit-Limit, -Remaining and -Reset.
func setLegacyHeaders(h http.Header, res Result) {
	h.Set("X-RateLimit-Limit", strconv.FormatInt(res.Limit, 10))
	h.Set("X-RateLimit-Remaining", strconv.FormatInt(res.Remaining, 10))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(wholeSeconds(res.ResetAfter), 10))
}

// sfString quotes s as a Structured Field string (RFC 8941 section 3.3.3).
func sfString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// wholeSeconds rounds d up to whole seconds (Sluice's durations already are).
func wholeSeconds(d time.Duration) int64 {
	s := int64(d / time.Second)
	if d%time.Second > 0 {
		s++
	}
	return s
}
