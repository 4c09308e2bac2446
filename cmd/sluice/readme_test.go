package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readmeBlocks returns README's fenced code blocks with their language.
func readmeBlocks(t *testing.T) (langs, bodies []string) {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	fence := regexp.MustCompile("(?ms)^```(\\w*)\\n(.*?)^```\\n")
	for _, m := range fence.FindAllStringSubmatch(string(readme), -1) {
		langs, bodies = append(langs, m[1]), append(bodies, m[2])
	}
	require.NotEmpty(t, bodies)
	return langs, bodies
}

// TestREADMESnippets: every Go snippet of README is a whole program that
// builds (the net/http one used to be a fragment that could not), and every
// sluice command line it shows (alone, after SLUICE_* variables or as a
// docker run's arguments) is a valid configuration.
func TestREADMESnippets(t *testing.T) {
	langs, bodies := readmeBlocks(t)
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	goSnippets, lines := 0, 0
	for i, body := range bodies {
		switch langs[i] {
		case "go":
			goSnippets++
			require.True(t, strings.HasPrefix(strings.TrimLeft(body, "/ \n"), "package main") ||
				strings.Contains(body, "\npackage main\n"), "a Go snippet is a whole program:\n%s", body)
			// Inside the module (a directory starting with "." is no
			// package of ./...), so it builds against this checkout.
			dir, err := os.MkdirTemp(root, ".readme-snippet-")
			require.NoError(t, err)
			t.Cleanup(func() { os.RemoveAll(dir) })
			require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(body), 0o600))
			build := exec.Command("go", "build", "-o", os.DevNull, "./"+filepath.Base(dir))
			build.Dir = root
			out, err := build.CombinedOutput()
			assert.NoError(t, err, "README's Go snippet does not build:\n%s\n%s", body, out)
		case "", "sh":
			for _, line := range strings.Split(body, "\n") {
				if env, args, ok := sluiceCommand(line); ok {
					lines++
					checkCommandLine(t, line, env, args)
				}
			}
		}
	}
	assert.GreaterOrEqual(t, goSnippets, 1)
	assert.GreaterOrEqual(t, lines, 5, "README's sluice command lines were found")
}

// sluiceCommand reads a README line that runs sluice: its SLUICE_*
// variables and arguments.
func sluiceCommand(line string) (env map[string]string, args []string, ok bool) {
	if i := strings.Index(line, " #"); i >= 0 {
		line = line[:i]
	}
	words := strings.Fields(line)
	env = map[string]string{}
	for len(words) > 0 && strings.HasPrefix(words[0], "SLUICE_") {
		k, v, _ := strings.Cut(words[0], "=")
		env[k], words = v, words[1:]
	}
	if len(words) == 0 {
		return nil, nil, false
	}
	switch {
	case words[0] == "sluice" || words[0] == "./sluice":
		return env, words[1:], true
	case len(words) > 2 && words[0] == "docker" && words[1] == "run":
		for i := 2; i < len(words); i++ {
			switch {
			case words[i] == "-e" && i+1 < len(words):
				k, v, _ := strings.Cut(words[i+1], "=")
				env[k] = v
				i++
			case words[i] == "-p" || words[i] == "-v" || words[i] == "--name":
				i++
			case words[i] == "sluice":
				args = words[i+1:]
				if len(args) == 0 { // the image's CMD
					args = []string{"--bind", "0.0.0.0", "--port", "6379"}
				}
				return env, args, true
			}
		}
	}
	return nil, nil, false
}

// checkCommandLine parses a README command line as the binary would; a
// config file it names is replaced by an empty one (README's paths do not
// exist here).
func checkCommandLine(t *testing.T, line string, env map[string]string, args []string) {
	t.Helper()
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		empty := filepath.Join(t.TempDir(), "sluice.conf")
		require.NoError(t, os.WriteFile(empty, nil, 0o600))
		args = append([]string{empty}, args[1:]...)
	}
	for i := range args {
		if args[i] == "--requirepass-file" && i+1 < len(args) {
			secret := filepath.Join(t.TempDir(), "secret")
			require.NoError(t, os.WriteFile(secret, []byte("pw\n"), 0o600))
			args[i+1] = secret
		}
	}
	_, err := parseConfig(args, func(k string) string { return env[k] }, io.Discard)
	assert.NoError(t, err, "README: %s", line)
}
