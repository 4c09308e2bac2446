package policy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Rate is one limit in the rule notation: Count requests per Period
// seconds, in bursts. Burst is THROTTLE's max_burst, the one meaning of
// "burst" in Sluice's commands, clients and files: Burst+1 requests fit at
// once. Without a burst ("100/minute", HasBurst false) all Count fit at
// once: max_burst Count-1.
type Rate struct {
	Count    int64
	Period   int64 // seconds
	Burst    int64 // max_burst, when HasBurst
	HasBurst bool
}

// MaxBurst is THROTTLE's max_burst for r: Burst when given, else Count-1.
func (r Rate) MaxBurst() int64 {
	if r.HasBurst {
		return r.Burst
	}
	return r.Count - 1
}

// units maps every unit spelling to its length in seconds.
var units = map[string]int64{
	"second": 1, "seconds": 1,
	"minute": 60, "minutes": 60,
	"hour": 3600, "hours": 3600,
	"day": 86400, "days": 86400,
}

// ErrEmptyRule is returned for a rule without any limit.
var ErrEmptyRule = errors.New("empty rule: want a limit such as \"100/minute\"")

// maxRuleCount bounds counts, multiples and bursts so that every derived
// quantity fits comfortably in int64 nanoseconds.
const maxRuleCount = 1 << 53

// ParseRule parses the rule notation of the limits / Flask-Limiter
// libraries: one or more limits separated by ";" or ",", each
//
//	COUNT ("/" | "per") [MULTIPLE] UNIT ["burst" BURST]
//
// with UNIT one of second, minute, hour, day (or their plurals), case
// insensitive: "100/minute", "10 per second", "500/7 days",
// "5000/hour burst 499", "10/second; 1000/day". BURST is THROTTLE's
// max_burst (BURST+1 at once; 0 allowed). An error names the token that is
// wrong.
func ParseRule(rule string) ([]Rate, error) {
	var rates []Rate
	for _, part := range strings.FieldsFunc(rule, func(r rune) bool { return r == ';' || r == ',' }) {
		if strings.TrimSpace(part) == "" {
			continue
		}
		r, err := parseRate(part)
		if err != nil {
			return nil, err
		}
		rates = append(rates, r)
	}
	if len(rates) == 0 {
		if strings.TrimSpace(rule) != "" {
			return nil, fmt.Errorf("rule %q: no limit between the separators", rule)
		}
		return nil, ErrEmptyRule
	}
	return rates, nil
}

// token kinds
const (
	tokNumber = iota
	tokWord
	tokSlash
)

type token struct {
	kind int
	text string
}

// tokenize splits one limit into numbers, words and slashes; whitespace
// separates tokens but is not needed ("500/7days").
func tokenize(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '/':
			toks = append(toks, token{tokSlash, "/"})
			i++
		case '0' <= c && c <= '9':
			j := i
			for j < len(s) && '0' <= s[j] && s[j] <= '9' {
				j++
			}
			toks = append(toks, token{tokNumber, s[i:j]})
			i = j
		case ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z'):
			j := i
			for j < len(s) && (('a' <= s[j] && s[j] <= 'z') || ('A' <= s[j] && s[j] <= 'Z')) {
				j++
			}
			toks = append(toks, token{tokWord, strings.ToLower(s[i:j])})
			i = j
		default:
			j := i + 1
			for j < len(s) && s[j] != ' ' && s[j] != '/' {
				j++
			}
			return nil, fmt.Errorf("limit %q: unexpected token %q", strings.TrimSpace(s), s[i:j])
		}
	}
	return toks, nil
}

func parseRate(s string) (Rate, error) {
	item := strings.TrimSpace(s)
	toks, err := tokenize(s)
	if err != nil {
		return Rate{}, err
	}
	pos := 0
	next := func() (token, bool) {
		if pos >= len(toks) {
			return token{}, false
		}
		pos++
		return toks[pos-1], true
	}
	bad := func(t token, why string) error {
		return fmt.Errorf("limit %q: %s, got %q", item, why, t.text)
	}
	missing := func(what string) error { return fmt.Errorf("limit %q: missing %s", item, what) }
	number := func(t token, what string, least int64) (int64, error) {
		if t.kind != tokNumber {
			return 0, bad(t, "want "+what)
		}
		n, err := strconv.ParseInt(t.text, 10, 64)
		if err != nil || n > maxRuleCount {
			return 0, bad(t, what+" is too large")
		}
		if n < least {
			return 0, bad(t, fmt.Sprintf("%s must be at least %d", what, least))
		}
		return n, nil
	}
	var r Rate
	t, ok := next()
	if !ok {
		return Rate{}, missing("count")
	}
	if r.Count, err = number(t, "a count", 1); err != nil {
		return Rate{}, err
	}
	if t, ok = next(); !ok {
		return Rate{}, missing(`"/" or "per"`)
	}
	if t.kind != tokSlash && t.text != "per" {
		return Rate{}, bad(t, `want "/" or "per"`)
	}
	if t, ok = next(); !ok {
		return Rate{}, missing("unit")
	}
	multiple := int64(1)
	if t.kind == tokNumber {
		if multiple, err = number(t, "a multiple", 1); err != nil {
			return Rate{}, err
		}
		if t, ok = next(); !ok {
			return Rate{}, missing("unit")
		}
	}
	unit, known := units[t.text]
	if t.kind != tokWord || !known {
		return Rate{}, bad(t, "want a unit (second, minute, hour, day)")
	}
	if multiple > maxRuleCount/unit {
		return Rate{}, fmt.Errorf("limit %q: period is too long", item)
	}
	r.Period = multiple * unit
	if t, ok = next(); ok {
		if t.text != "burst" {
			return Rate{}, bad(t, `want "burst" or the end of the limit`)
		}
		if t, ok = next(); !ok {
			return Rate{}, missing("burst size")
		}
		if r.Burst, err = number(t, "a burst size", 0); err != nil {
			return Rate{}, err
		}
		r.HasBurst = true
		if t, ok = next(); ok {
			return Rate{}, bad(t, "want the end of the limit")
		}
	}
	return r, nil
}

// String writes r in the rule notation, canonically: the largest unit that
// divides the period, a multiple only when it is not 1, and the burst only
// when it is set ("100/minute", "500/7 days", "5000/hour burst 499").
func (r Rate) String() string {
	var b strings.Builder
	b.WriteString(strconv.FormatInt(r.Count, 10))
	b.WriteString("/")
	name, n := "second", r.Period
	for _, u := range []struct {
		name string
		secs int64
	}{{"day", 86400}, {"hour", 3600}, {"minute", 60}} {
		if r.Period%u.secs == 0 {
			name, n = u.name, r.Period/u.secs
			break
		}
	}
	if n != 1 {
		b.WriteString(strconv.FormatInt(n, 10))
		b.WriteString(" ")
		name += "s"
	}
	b.WriteString(name)
	if r.HasBurst {
		b.WriteString(" burst ")
		b.WriteString(strconv.FormatInt(r.Burst, 10))
	}
	return b.String()
}

// FormatRule writes rates in the rule notation, separated by "; ".
func FormatRule(rates []Rate) string {
	s := make([]string, len(rates))
	for i, r := range rates {
		s[i] = r.String()
	}
	return strings.Join(s, "; ")
}
