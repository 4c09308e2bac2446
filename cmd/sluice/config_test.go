package main

import (
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/peterbourgon/ff/v4"
	"github.com/sluicehq/sluice/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDefaultsAreTheServers: with no flags the server's configuration is
// server.Default, and flags land in its fields.
func TestDefaultsAreTheServers(t *testing.T) {
	cfg, err := parseConfig(nil, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, server.Default(), cfg.Config)
	assert.Equal(t, 10*time.Second, cfg.ShutdownTimeout)

	cfg, err = parseConfig([]string{"--port", "0", "--proto-max-bulk-len", "2048", "--protected-mode=false", "--timeout", "1m"}, io.Discard)
	require.NoError(t, err)
	want := server.Default()
	want.Port, want.MaxBulkLen, want.ProtectedMode, want.IdleTimeout = 0, 2048, false, time.Minute
	assert.Equal(t, want, cfg.Config)
}

// TestREADMEDefaults keeps the defaults README's flag tables state in step
// with the flags' (rows whose default is not in backticks, such as "off",
// are read as the zero value or skipped).
func TestREADMEDefaults(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	cfg := config{Config: server.Default()}
	fs, err := newFlagSet(&cfg)
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
