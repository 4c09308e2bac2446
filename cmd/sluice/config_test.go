package main

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/peterbourgon/ff/v4"
	"github.com/sluicehq/sluice/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// noEnv is an empty environment.
func noEnv(string) string { return "" }

// TestDefaultsAreTheServers: with no flags the server's configuration is
// server.Default, and flags land in its fields.
func TestDefaultsAreTheServers(t *testing.T) {
	cfg, err := parseConfig(nil, noEnv, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, server.Default(), cfg.Config)
	assert.Equal(t, 10*time.Second, cfg.ShutdownTimeout)

	cfg, err = parseConfig([]string{"--port", "6380", "--proto-max-bulk-len", "2048", "--protected-mode=false", "--timeout", "1m"}, noEnv, io.Discard)
	require.NoError(t, err)
	want := server.Default()
	want.Port, want.MaxBulkLen, want.ProtectedMode, want.IdleTimeout = 6380, 2048, false, time.Minute
	assert.Equal(t, want, cfg.Config)
}

// TestREADMEDefaults keeps the defaults README's flag tables state in step
// with the flags' (rows whose default is not in backticks, such as "off",
// are read as the zero value or skipped).
func TestREADMEDefaults(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	cfg := defaultConfig()
	fs, _, err := newFlagSet(&cfg)
	require.NoError(t, err)
	quoted := regexp.MustCompile("`([^`]*)`")
	checked := 0
	for _, line := range strings.Split(string(readme), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`--") {
			continue
		}
		flags, def := strings.TrimSpace(cells[1]), strings.TrimSpace(cells[2])
		names, defs := quoted.FindAllStringSubmatch(flags, -1), quoted.FindAllStringSubmatch(def, -1)
		if len(defs) == 0 && (def == "off" || def == "(none)") {
			defs = [][]string{{"", ""}}
		}
		if len(defs) != len(names) {
			continue
		}
		for i, n := range names {
			f, ok := fs.GetFlag(strings.TrimPrefix(n[1], "--"))
			require.True(t, ok, "README names %s, which is no flag", n[1])
			assert.True(t, sameDefault(f, defs[i][1]), "README gives %s the default %q; the flag's is %q", n[1], defs[i][1], f.GetDefault())
			checked++
		}
	}
	assert.Greater(t, checked, 20, "README's tables were read")
}

// sameDefault compares a flag's default with a written one; durations
// compare by value ("0" is "0s").
func sameDefault(f ff.Flag, written string) bool {
	if f.GetDefault() == written {
		return true
	}
	a, errA := time.ParseDuration(f.GetDefault())
	b, errB := time.ParseDuration(written)
	return errA == nil && errB == nil && a == b
}

// TestEveryBooleanTakesRedisSpellings: every boolean setting reads yes/no,
// true/false and 1/0 from a flag (--name no and --name=no), a SLUICE_*
// variable and a config file line.
func TestEveryBooleanTakesRedisSpellings(t *testing.T) {
	cfg := defaultConfig()
	_, settings, err := newFlagSet(&cfg)
	require.NoError(t, err)
	conf := filepath.Join(t.TempDir(), "sluice.conf")
	checked := 0
	for name, s := range settings {
		if !s.isBool() || name == "version" || name == "healthcheck" {
			continue
		}
		checked++
		for _, spelling := range []struct {
			word string
			want bool
		}{{"yes", true}, {"no", false}, {"YES", true}, {"true", true}, {"false", false}, {"1", true}, {"0", false}} {
			field := func(c config) bool {
				_, settings, err := newFlagSet(&c)
				require.NoError(t, err)
				return *settings[name].Value.(*bool)
			}
			// Needed by some booleans to validate (pprof needs a metrics address).
			base := []string{"--metrics-addr", "127.0.0.1:0"}
			c, err := parseConfig(append([]string{"--" + name, spelling.word}, base...), noEnv, io.Discard)
			require.NoError(t, err, "--%s %s", name, spelling.word)
			assert.Equal(t, spelling.want, field(c), "--%s %s", name, spelling.word)

			c, err = parseConfig(append([]string{"--" + name + "=" + spelling.word}, base...), noEnv, io.Discard)
			require.NoError(t, err)
			assert.Equal(t, spelling.want, field(c), "--%s=%s", name, spelling.word)

			env := func(k string) string {
				if k == envName(name) {
					return spelling.word
				}
				return ""
			}
			c, err = parseConfig(base, env, io.Discard)
			require.NoError(t, err, "%s=%s", envName(name), spelling.word)
			assert.Equal(t, spelling.want, field(c), "%s=%s", envName(name), spelling.word)

			require.NoError(t, os.WriteFile(conf, []byte(name+" "+spelling.word+"\n"), 0o600))
			c, err = parseConfig(append([]string{conf}, base...), noEnv, io.Discard)
			require.NoError(t, err, "%s %s in a file", name, spelling.word)
			assert.Equal(t, spelling.want, field(c), "%s %s in a file", name, spelling.word)
		}
	}
	assert.GreaterOrEqual(t, checked, 3)
}

// TestDurations: a bare number is seconds for the timeout (Redis's unit);
// elsewhere a unit is asked for.
func TestDurations(t *testing.T) {
	c, err := parseConfig([]string{"--timeout", "300", "--auth-timeout", "1500ms"}, noEnv, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, 300*time.Second, c.IdleTimeout)
	assert.Equal(t, 1500*time.Millisecond, c.AuthTimeout)
	_, err = parseConfig([]string{"--shutdown-timeout", "30"}, noEnv, io.Discard)
	assert.ErrorContains(t, err, `--shutdown-timeout "30": needs a unit`)
}

// FuzzConfigLine: splitArgs never panics, and the words it reads, quoted
// again, read back the same.
func FuzzConfigLine(f *testing.F) {
	for _, seed := range []string{
		"port 6379", `requirepass "a b\"c"`, "bind 127.0.0.1 ::1 # comment", "name 'single quoted'",
		`x "\x41\n"`, `"unbalanced`, `'x'y`, "\t tabs\tand  spaces ", "# only a comment", "",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, line string) {
		words, err := splitArgs(line)
		if err != nil {
			return
		}
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = strconv.Quote(w)
		}
		again, err := splitArgs(strings.Join(quoted, " "))
		require.NoError(t, err)
		if len(words) == 0 {
			assert.Empty(t, again)
			return
		}
		assert.Equal(t, words, again)
	})
}
