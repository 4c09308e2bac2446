// Package policy owns Sluice's named policies: the rule notation that writes
// limits as text ("100/minute", "10/second; 1000/day", "5000/hour burst
// 500"), and the policy file that names policies, picks each one's
// algorithm and gives chosen keys (a tenant with a higher quota) their own
// limits.
//
// A [Set] is immutable once built: [Parse] and [Load] validate every policy
// against its algorithm (gcra.NewLimit or window.NewLimit) and report every
// problem at once, so a set that loads can serve every request. Reloading
// means building a new Set and swapping it in; a file that fails to parse
// never replaces the policies in use.
package policy

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/sluicehq/sluice/gcra"
	"github.com/sluicehq/sluice/window"
)

// Algorithm is how a policy's limits count.
type Algorithm uint8

const (
	// GCRA is THROTTLE's algorithm (the default): Count per Period, with
	// bursts of up to Burst.
	GCRA Algorithm = iota
	// FixedWindow counts per aligned window.
	FixedWindow
	// SlidingWindow is the sliding-window counter.
	SlidingWindow
)

// String is the algorithm's name as the policy file spells it.
func (a Algorithm) String() string {
	switch a {
	case FixedWindow:
		return "fixed-window"
	case SlidingWindow:
		return "sliding-window"
	}
	return "gcra"
}

// Window is the window algorithm for FixedWindow and SlidingWindow.
func (a Algorithm) Window() window.Algorithm {
	if a == FixedWindow {
		return window.Fixed
	}
	return window.Sliding
}

func parseAlgorithm(s string) (Algorithm, error) {
	switch strings.ToLower(s) {
	case "", "gcra":
		return GCRA, nil
	case "fixed-window", "fixed":
		return FixedWindow, nil
	case "sliding-window", "sliding":
		return SlidingWindow, nil
	}
	return 0, fmt.Errorf("algorithm %q: must be gcra, fixed-window or sliding-window", s)
}

// Tier is one set of limits, checked together: a policy's default or one
// key's override.
type Tier struct {
	Rule   string         // canonical rule notation
	Rates  []Rate         // as parsed
	GCRA   []gcra.Limit   // one per rate, when the algorithm is GCRA
	Window []window.Limit // one per rate, for the window algorithms
}

func newTier(rule string, a Algorithm) (*Tier, error) {
	rates, err := ParseRule(rule)
	if err != nil {
		return nil, err
	}
	t := &Tier{Rule: FormatRule(rates), Rates: rates}
	for _, r := range rates {
		if a == GCRA {
			burst := r.Burst
			if burst == 0 {
				burst = r.Count
			}
			l, err := gcra.NewLimit(burst-1, r.Count, r.Period)
			if err != nil {
				return nil, fmt.Errorf("limit %q: %w", r, err)
			}
			t.GCRA = append(t.GCRA, l)
			continue
		}
		if r.Burst != 0 {
			return nil, fmt.Errorf("limit %q: burst applies only to the gcra algorithm", r)
		}
		l, err := window.NewLimit(r.Count, r.Period)
		if err != nil {
			return nil, fmt.Errorf("limit %q: %w", r, err)
		}
		t.Window = append(t.Window, l)
	}
	return t, nil
}

// Policy is one named policy.
type Policy struct {
	Name      string
	Algorithm Algorithm
	Default   *Tier
	Overrides map[string]*Tier // by key
}

// TierFor returns the limits that apply to key: its override, or the
// default. It does not allocate.
func (p *Policy) TierFor(key []byte) *Tier {
	if t, ok := p.Overrides[string(key)]; ok {
		return t
	}
	return p.Default
}

// OverrideKeys lists the keys with overrides, sorted.
func (p *Policy) OverrideKeys() []string {
	keys := make([]string, 0, len(p.Overrides))
	for k := range p.Overrides {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Set is an immutable collection of policies by name. The zero Set (and a
// nil *Set) holds none.
type Set struct {
	byName map[string]*Policy
	names  []string
}

// Get returns the policy named name, or nil. It does not allocate.
func (s *Set) Get(name []byte) *Policy {
	if s == nil {
		return nil
	}
	return s.byName[string(name)]
}

// Names lists the policy names, sorted.
func (s *Set) Names() []string {
	if s == nil {
		return nil
	}
	return slices.Clone(s.names)
}

// Len is the number of policies.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.names)
}

// CheckLimits reports, all at once, every policy whose default or an
// override has more than most limits: a server bounds the limits one
// request checks together (they are decided under the locks of every key
// they touch), and refuses a policy file that passes it.
func (s *Set) CheckLimits(most int) error {
	if s == nil {
		return nil
	}
	var errs []error
	for _, name := range s.names {
		p := s.byName[name]
		if n := len(p.Default.Rates); n > most {
			errs = append(errs, fmt.Errorf("policy %q: %d limits, at most %d", name, n, most))
		}
		for _, key := range p.OverrideKeys() {
			if n := len(p.Overrides[key].Rates); n > most {
				errs = append(errs, fmt.Errorf("policy %q: override %q: %d limits, at most %d", name, key, n, most))
			}
		}
	}
	return errors.Join(errs...)
}

// file is the policy file's shape:
//
//	[policies.anon]
//	limit = "50/hour"
//
//	[policies.api]
//	limit = "10/second; 1000/day"
//	algorithm = "sliding-window"
//	overrides = { "tenant:acme" = "100/second; 100000/day" }
type file struct {
	Policies map[string]filePolicy `toml:"policies"`
}

type filePolicy struct {
	Limit     string            `toml:"limit"`
	Algorithm string            `toml:"algorithm"`
	Overrides map[string]string `toml:"overrides"`
}

// Parse reads a policy file (TOML) and validates every policy, reporting
// every problem at once.
func Parse(data []byte) (*Set, error) {
	var f file
	md, err := toml.Decode(string(data), &f)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, k := range md.Undecoded() {
		errs = append(errs, fmt.Errorf("unknown setting %q", k.String()))
	}
	set := &Set{byName: map[string]*Policy{}}
	for name, fp := range f.Policies {
		p, err := newPolicy(name, fp)
		if err != nil {
			errs = append(errs, fmt.Errorf("policy %q: %w", name, err))
			continue
		}
		set.byName[name] = p
		set.names = append(set.names, name)
	}
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		return nil, errors.Join(errs...)
	}
	sort.Strings(set.names)
	return set, nil
}

// Load reads and parses the policy file at path.
func Load(path string) (*Set, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	set, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return set, nil
}

func newPolicy(name string, fp filePolicy) (*Policy, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	a, err := parseAlgorithm(fp.Algorithm)
	if err != nil {
		return nil, err
	}
	if fp.Limit == "" {
		return nil, errors.New(`missing "limit"`)
	}
	def, err := newTier(fp.Limit, a)
	if err != nil {
		return nil, err
	}
	p := &Policy{Name: name, Algorithm: a, Default: def, Overrides: map[string]*Tier{}}
	for key, rule := range fp.Overrides {
		t, err := newTier(rule, a)
		if err != nil {
			return nil, fmt.Errorf("override %q: %w", key, err)
		}
		p.Overrides[key] = t
	}
	return p, nil
}

// checkName accepts names that are safe inside an HTTP structured-field
// string (RateLimit-Policy) and on a command line: letters, digits and
// "_.:-", 1 to 64 of them.
func checkName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("name must have 1 to 64 characters")
	}
	for _, c := range []byte(name) {
		ok := ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') || strings.IndexByte("_.:-", c) >= 0
		if !ok {
			return fmt.Errorf("name: character %q not allowed (letters, digits, _ . : -)", c)
		}
	}
	return nil
}
