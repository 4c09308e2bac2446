package compat

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// dockerfile is what the tests need from the Dockerfile.
type dockerfile struct {
	froms       []string // FROM lines, as written
	buildEnv    []string // NAME=value before `go build`
	buildArgs   []string // after `go`: build, flags, -o <out>, package
	user        string
	expose      []string
	volume      []string
	healthcheck string
	entrypoint  []string
	cmd         []string
}

// parseDockerfile reads the instructions this project's Dockerfile uses.
// Exactly one RUN may invoke `go build`, as `RUN [NAME=value ...] go build ...`.
func parseDockerfile(path string) (*dockerfile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var instrs []string
	var cur strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur.WriteString(strings.TrimSuffix(trimmed, `\`) + " ")
			continue
		}
		cur.WriteString(trimmed)
		instrs = append(instrs, cur.String())
		cur.Reset()
	}
	df := &dockerfile{}
	builds := 0
	for _, in := range instrs {
		kw, rest, _ := strings.Cut(in, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(kw) {
		case "FROM":
			df.froms = append(df.froms, rest)
		case "USER":
			df.user = rest
		case "EXPOSE":
			df.expose = append(df.expose, strings.Fields(rest)...)
		case "VOLUME":
			df.volume = append(df.volume, strings.Fields(rest)...)
		case "HEALTHCHECK":
			df.healthcheck = rest
		case "ENTRYPOINT", "CMD":
			var v []string
			if err := json.Unmarshal([]byte(rest), &v); err != nil {
				return nil, fmt.Errorf("%s must be a JSON array (exec form): %w", kw, err)
			}
			if strings.EqualFold(kw, "CMD") {
				df.cmd = v
			} else {
				df.entrypoint = v
			}
		case "RUN":
			words, err := shellWords(rest)
			if err != nil {
				if strings.Contains(rest, "go build") {
					return nil, fmt.Errorf("RUN %s: %w", rest, err)
				}
				continue
			}
			i := slices.Index(words, "go")
			if i < 0 || i+1 >= len(words) || words[i+1] != "build" {
				continue
			}
			builds++
			for _, w := range words[:i] {
				if !strings.Contains(w, "=") {
					return nil, fmt.Errorf("RUN %s: %q before go build is not NAME=value", rest, w)
				}
			}
			df.buildEnv, df.buildArgs = words[:i], words[i+1:]
		}
	}
	if builds != 1 {
		return nil, fmt.Errorf("%s: %d RUN lines run go build, want exactly 1", path, builds)
	}
	return df, nil
}

// shellWords splits a command line the way sh does for the simple cases a
// build line needs: blanks, single and double quotes, backslash escapes.
// Anything that would need a real shell (variables, operators, globs) is
// an error, so the test never builds differently from the Dockerfile.
func shellWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated '")
			}
			w.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			inWord = true
			for i++; ; i++ {
				if i >= len(s) {
					return nil, errors.New(`unterminated "`)
				}
				if s[i] == '"' {
					break
				}
				if s[i] == '$' || s[i] == '`' {
					return nil, fmt.Errorf("shell expansion %q is not supported", s[i])
				}
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				w.WriteByte(s[i])
			}
		case c == '\\':
			if i+1 >= len(s) {
				return nil, errors.New("trailing backslash")
			}
			i++
			w.WriteByte(s[i])
			inWord = true
		case strings.IndexByte("$`;&|<>()*?[]{}~#", c) >= 0:
			return nil, fmt.Errorf("shell syntax %q is not supported", c)
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

// build runs the Dockerfile's go build in root, writing the binary to out.
func (df *dockerfile) build(root, out string) error {
	args := slices.Clone(df.buildArgs)
	i := slices.Index(args, "-o")
	if i < 0 || i+1 >= len(args) {
		return fmt.Errorf("go %s: no -o", strings.Join(args, " "))
	}
	args[i+1] = out
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // a cold cache rebuilds std
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), df.buildEnv...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, b)
	}
	return nil
}

func TestShellWords(t *testing.T) {
	for in, want := range map[string][]string{
		`CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /sluice ./cmd/sluice`: {"CGO_ENABLED=0", "go", "build", "-trimpath", "-ldflags=-s -w", "-o", "/sluice", "./cmd/sluice"},
		`a 'b c' "d \"e\"" f\ g`: {"a", "b c", `d "e"`, "f g"},
	} {
		got, err := shellWords(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("shellWords(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{`go build $FLAGS`, `a && b`, `"open`, `go build -ldflags="$X"`} {
		if _, err := shellWords(in); err == nil {
			t.Errorf("shellWords(%q): no error", in)
		}
	}
}

// TestDockerfile checks the image recipe without a Docker engine: the build
// stage's flags, the final stage, and that the binary built by the
// Dockerfile's own go build line is static, stripped and serves PING when
// started with the image's ENTRYPOINT and CMD (bound to 127.0.0.1 here).
func TestDockerfile(t *testing.T) {
	root := moduleRoot(t)
	df, err := parseDockerfile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if len(df.froms) != 2 || df.froms[0] != "golang:1.26 AS build" || df.froms[1] != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("FROM lines %q: want a golang:1.26 build stage and a distroless static nonroot final stage", df.froms)
	}
	if !strings.HasPrefix(runtime.Version(), "go1.26") {
		t.Logf("note: testing with %s, the image builds with golang:1.26", runtime.Version())
	}
	if !slices.Contains(df.buildEnv, "CGO_ENABLED=0") {
		t.Errorf("go build env %q lacks CGO_ENABLED=0", df.buildEnv)
	}
	for _, flag := range []string{"-trimpath", "-ldflags=-s -w", "./cmd/sluice"} {
		if !slices.Contains(df.buildArgs, flag) {
			t.Errorf("go build args %q lack %q", df.buildArgs, flag)
		}
	}
	if df.user == "" || strings.HasPrefix(df.user, "root") || strings.HasPrefix(df.user, "0") {
		t.Errorf("USER %q: the image must run as a non-root user", df.user)
	}
	if !slices.Equal(df.expose, []string{"6379"}) || len(df.volume) != 0 {
		t.Errorf("EXPOSE %q VOLUME %q, want 6379 and no volume (the image runs in memory unless given --data-dir)", df.expose, df.volume)
	}
	if !strings.Contains(df.healthcheck, `"/sluice", "--healthcheck"`) {
		t.Errorf("HEALTHCHECK %q: distroless has no shell; the image must probe with the binary's --healthcheck", df.healthcheck)
	}
	args := append(slices.Clone(df.entrypoint[1:]), df.cmd...)
	if df.entrypoint[0] != "/sluice" || flagValue(args, "--bind") != "0.0.0.0" || flagValue(args, "--port") != "6379" {
		t.Errorf("ENTRYPOINT %q CMD %q: want /sluice --bind 0.0.0.0 --port 6379", df.entrypoint, df.cmd)
	}

	bin := sluiceBinary(t) // built with df's go build line
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("binary has a PT_INTERP (dynamic loader): not statically linked")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("binary needs shared libraries %q", libs)
	}
	for _, s := range f.Sections {
		if s.Name == ".symtab" || strings.HasPrefix(s.Name, ".debug_") || strings.HasPrefix(s.Name, ".zdebug_") {
			t.Errorf("binary has section %s: not stripped (-s -w)", s.Name)
		}
	}
	if b, err := os.ReadFile(bin); err != nil {
		t.Fatal(err)
	} else if bytes.Contains(b, []byte(root+"/")) {
		t.Errorf("binary contains the build directory %s: not built with -trimpath", root)
	}
	if file, err := exec.LookPath("file"); err == nil {
		out, err := exec.Command(file, bin).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "statically linked") {
			t.Errorf("file %s: %s %v", bin, out, err)
		}
	}

	// The image's command line, on loopback and a free port.
	setFlag(args, "--bind", "127.0.0.1")
	setFlag(args, "--port", freePort(t))
	s := startBinary(t, bin, args...)
	conn, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || line != "+PONG\r\n" {
		t.Fatalf("PING: %q %v", line, err)
	}
	// The image's HEALTHCHECK command, pointed at the port the server got.
	_, port, _ := net.SplitHostPort(s.Addr)
	if out, err := exec.Command(bin, "--healthcheck", "--port", port).CombinedOutput(); err != nil {
		t.Fatalf("HEALTHCHECK command: %v: %s", err, out)
	}
}

func flagValue(args []string, name string) string {
	if i := slices.Index(args, name); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

func setFlag(args []string, name, value string) {
	if i := slices.Index(args, name); i >= 0 && i+1 < len(args) {
		args[i+1] = value
	}
}
