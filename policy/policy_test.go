package policy

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/sluicehq/sluice/gcra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseRule(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []Rate
		text string
	}{
		{"100/minute", []Rate{{100, 60, 0}}, "100/minute"},
		{"10 per second", []Rate{{10, 1, 0}}, "10/second"},
		{"5000/hour burst 500", []Rate{{5000, 3600, 500}}, "5000/hour burst 500"},
		{"10/second; 1000/day", []Rate{{10, 1, 0}, {1000, 86400, 0}}, "10/second; 1000/day"},
		{"500/7 days", []Rate{{500, 7 * 86400, 0}}, "500/7 days"},
		{"500/7days", []Rate{{500, 7 * 86400, 0}}, "500/7 days"},
		{"1/DAY, 2/2 Hours", []Rate{{1, 86400, 0}, {2, 7200, 0}}, "1/day; 2/2 hours"},
		{"10 / 90 seconds", []Rate{{10, 90, 0}}, "10/90 seconds"},
		{"3/120 seconds", []Rate{{3, 120, 0}}, "3/2 minutes"},
		{"  7 PER 1 hours ;", []Rate{{7, 3600, 0}}, "7/hour"},
		{"9007199254740992/9007199254740992 seconds", []Rate{{1 << 53, 1 << 53, 0}}, "9007199254740992/9007199254740992 seconds"},
	} {
		got, err := ParseRule(c.in)
		require.NoError(t, err, c.in)
		assert.Equal(t, c.want, got, c.in)
		assert.Equal(t, c.text, FormatRule(got), c.in)
	}
}

// TestParseRuleErrors: every rejection names the offending token.
func TestParseRuleErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", `empty rule`},
		{" ; , ", `no limit between the separators`},
		{"ten/minute", `want a count, got "ten"`},
		{"10/fortnight", `want a unit (second, minute, hour, day), got "fortnight"`},
		{"10/month", `got "month"`},
		{"10 minute", `want "/" or "per", got "minute"`},
		{"10/0 days", `a multiple must be at least 1, got "0"`},
		{"0/second", `a count must be at least 1, got "0"`},
		{"9223372036854775808/second", `a count is too large, got "9223372036854775808"`},
		{"9007199254740993/second", `a count is too large, got "9007199254740993"`},
		{"1/9007199254740992 days", `period is too long`},
		{"10/second burst", `missing burst size`},
		{"10/second burst 0", `a burst size must be at least 1, got "0"`},
		{"10/second burst x", `want a burst size, got "x"`},
		{"10/second bursts 5", `want "burst" or the end of the limit, got "bursts"`},
		{"10/second burst 5 extra", `want the end of the limit, got "extra"`},
		{"10/", `missing unit`},
		{"10", `missing "/" or "per"`},
		{"10/7", `missing unit`},
		{"5%/hour", `unexpected token "%"`},
		{"10/sécond", `unexpected token "écond"`},
		{"-1/second", `unexpected token "-1"`},
		{"1.5/second", `unexpected token ".5"`},
	} {
		_, err := ParseRule(c.in)
		require.Error(t, err, c.in)
		assert.Contains(t, err.Error(), c.want, c.in)
	}
}

// FuzzParseRule: the parser never panics, and whatever it accepts it
// writes back in a form that parses to the same limits.
func FuzzParseRule(f *testing.F) {
	for _, s := range []string{"100/minute", "10 per second", "5000/hour burst 500", "10/second; 1000/day", "500/7 days"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rates, err := ParseRule(s)
		if err != nil {
			return
		}
		require.NotEmpty(t, rates)
		again, err := ParseRule(FormatRule(rates))
		require.NoError(t, err, "%q -> %q", s, FormatRule(rates))
		require.Equal(t, rates, again)
		for _, r := range rates {
			require.Positive(t, r.Count)
			require.Positive(t, r.Period)
			require.GreaterOrEqual(t, r.Burst, int64(0))
		}
	})
}

const exampleFile = `
# Anonymous clients: 50 an hour.
[policies.anon]
limit = "50/hour"

[policies.api]
limit = "10/second; 1000/day"
algorithm = "sliding-window"
overrides = { "tenant:acme" = "100/second; 100000/day" }

[policies.upload]
limit = "5000/hour burst 500"

[policies.upload.overrides]
"user:42" = "10000/hour burst 1000"
`

func TestParseFile(t *testing.T) {
	set, err := Parse([]byte(exampleFile))
	require.NoError(t, err)
	assert.Equal(t, []string{"anon", "api", "upload"}, set.Names())
	anon := set.Get([]byte("anon"))
	require.NotNil(t, anon)
	assert.Equal(t, GCRA, anon.Algorithm)
	assert.Equal(t, "50/hour", anon.Default.Rule)
	require.Len(t, anon.Default.GCRA, 1)
	assert.Equal(t, int64(50), anon.Default.GCRA[0].Max())
	assert.Equal(t, int64(72e9), anon.Default.GCRA[0].Interval())

	api := set.Get([]byte("api"))
	assert.Equal(t, SlidingWindow, api.Algorithm)
	require.Len(t, api.Default.Window, 2)
	assert.Empty(t, api.Default.GCRA)
	assert.Equal(t, "100/second; 100000/day", api.TierFor([]byte("tenant:acme")).Rule)
	assert.Equal(t, "10/second; 1000/day", api.TierFor([]byte("tenant:other")).Rule)

	up := set.Get([]byte("upload"))
	assert.Equal(t, int64(500), up.Default.GCRA[0].Max())
	assert.Equal(t, int64(1000), up.TierFor([]byte("user:42")).GCRA[0].Max())
	assert.Equal(t, []string{"user:42"}, up.OverrideKeys())
	assert.Nil(t, set.Get([]byte("nope")))

	empty, err := Parse(nil)
	require.NoError(t, err)
	assert.Zero(t, empty.Len())
	var none *Set
	assert.Nil(t, none.Get([]byte("anon")))
	assert.Zero(t, none.Len())
}

// TestParseFileErrors: every problem is reported at once, each naming its
// policy and the bad token or setting.
func TestParseFileErrors(t *testing.T) {
	_, err := Parse([]byte(`
[policies.a]
limit = "10/fortnight"
[policies.b]
limit = "10/second burst 5"
algorithm = "fixed-window"
[policies.c]
limit = "10/second"
algorithm = "leaky"
[policies.d]
limits = "10/second"
[policies."bad name"]
limit = "1/second"
[policies.e]
limit = "1/second"
overrides = { "t" = "1/eon" }
[policies.f]
limit = "3000000000/second"
`))
	require.Error(t, err)
	for _, want := range []string{
		`policy "a": limit "10/fortnight": want a unit (second, minute, hour, day), got "fortnight"`,
		`policy "b": limit "10/second burst 5": burst applies only to the gcra algorithm`,
		`policy "c": algorithm "leaky"`,
		`policy "d": missing "limit"`,
		`unknown setting "policies.d.limits"`,
		`policy "bad name": name: character ' ' not allowed`,
		`policy "e": override "t": limit "1/eon": want a unit`,
		`policy "f": limit "3000000000/second": zero rates are not supported`,
	} {
		assert.Contains(t, err.Error(), want)
	}
	assert.ErrorIs(t, err, gcra.ErrZeroRate, "the algorithm's error is wrapped, not copied")
	assert.NotContains(t, err.Error(), "ERR", "no Redis reply codes below package commands")
	_, err = Parse([]byte("[policies.a\nlimit = 1"))
	assert.Error(t, err, "TOML syntax")
	_, err = Parse([]byte("[policies.a]\nlimit = 10"))
	assert.Error(t, err, "a limit must be a string")
}

func TestLoad(t *testing.T) {
	p := filepath.Join(t.TempDir(), "policies.toml")
	require.NoError(t, os.WriteFile(p, []byte(exampleFile), 0o600))
	set, err := Load(p)
	require.NoError(t, err)
	assert.Equal(t, 3, set.Len())
	_, err = Load(filepath.Join(t.TempDir(), "missing.toml"))
	assert.Error(t, err)
}

// TestRateStringBoundaries: canonical text at the unit boundaries.
func TestRateStringBoundaries(t *testing.T) {
	for period, want := range map[int64]string{1: "second", 59: "59 seconds", 60: "minute", 61: "61 seconds", 3600: "hour", 86400: "day", 172800: "2 days", 1 << 53: strconv.FormatInt(1<<53, 10) + " seconds"} {
		assert.Equal(t, "1/"+want, Rate{Count: 1, Period: period}.String())
	}
}

// TestCheckLimits: a policy checking more limits at once than the server
// allows one request (THROTTLE.MULTI's bound) is reported, default and
// override alike, every one of them.
func TestCheckLimits(t *testing.T) {
	set, err := Parse([]byte(`
[policies.small]
limit = "1/second; 2/minute"

[policies.wide]
limit = "1/second; 2/minute; 3/hour"
overrides = { "vip" = "1/second", "wider" = "1/second; 2/minute; 3/hour; 4/day" }
`))
	require.NoError(t, err)
	require.NoError(t, set.CheckLimits(4))
	err = set.CheckLimits(2)
	require.Error(t, err)
	assert.Equal(t, "policy \"wide\": 3 limits, at most 2\npolicy \"wide\": override \"wider\": 4 limits, at most 2", err.Error())
	assert.NoError(t, (*Set)(nil).CheckLimits(0))
}
