package compat

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// redisCLIFormat renders a step's expected reply as redis-cli prints it.
func redisCLIFormat(st step, raw bool) string {
	var lines []string
	switch {
	case st.Error != "" && raw:
		lines = append(lines, st.Error)
	case st.Error != "":
		lines = append(lines, "(error) "+st.Error)
	default:
		for i, n := range st.Reply {
			if raw {
				lines = append(lines, strconv.FormatInt(n, 10))
			} else {
				lines = append(lines, fmt.Sprintf("%d) (integer) %d", i+1, n))
			}
		}
	}
	return strings.Join(lines, "\n")
}

// TestRedisCLI replays the sequence with one redis-cli process per command,
// in every output mode: the default when stdout is not a terminal (raw),
// --raw, --no-raw (the terminal format: "1) (integer) 0"), and RESP3 (-3).
func TestRedisCLI(t *testing.T) {
	cli := lookPath(t, "redis-cli", "apt-get install redis-tools")
	seq := loadSequence(t)
	for _, mode := range []struct {
		name  string
		flags []string
		raw   bool
	}{
		{"default", nil, true},
		{"raw", []string{"--raw"}, true},
		{"no-raw", []string{"--no-raw"}, false},
		{"resp3", []string{"-3", "--no-raw"}, false},
		{"resp3-raw", []string{"-3", "--raw"}, true},
	} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			s := startSluice(t)
			base := append([]string{"-h", s.Host, "-p", strconv.Itoa(s.Port)}, mode.flags...)
			proto := "resp=2"
			if mode.flags != nil && mode.flags[0] == "-3" {
				proto = "resp=3"
			}
			if out, err := run(t, 10*time.Second, nil, "", cli, append(base, "CLIENT", "INFO")...); err != nil || !strings.Contains(out, " "+proto+" ") {
				t.Fatalf("CLIENT INFO %q %v: want %s", out, err, proto)
			}
			clock := int64(-1)
			for _, st := range seq.Steps {
				if now := seq.clock(st); now != clock {
					out, err := run(t, 10*time.Second, nil, "", cli, append(base, "DEBUG", "CLOCK", "SET", strconv.FormatInt(now, 10))...)
					if err != nil || strings.TrimSpace(out) != "OK" {
						t.Fatalf("DEBUG CLOCK SET: %q %v", out, err)
					}
					clock = now
				}
				out, err := run(t, 10*time.Second, nil, "", cli, append(base, st.Args...)...)
				if err != nil {
					t.Fatalf("%s: redis-cli %q: %v\n%s", st.Name, st.Args, err, out)
				}
				if got, want := strings.TrimRight(out, "\n"), redisCLIFormat(st, mode.raw); got != want {
					t.Errorf("%s: redis-cli %s %q printed\n%s\nwant\n%s", st.Name, strings.Join(mode.flags, " "), st.Args, got, want)
				}
			}
		})
	}
}

// TestRedisCLIStdin sends the whole sequence over one connection: redis-cli
// reads commands from stdin when it is not a terminal.
func TestRedisCLIStdin(t *testing.T) {
	cli := lookPath(t, "redis-cli", "apt-get install redis-tools")
	seq := loadSequence(t)
	for _, proto := range []string{"-2", "-3"} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			s := startSluice(t)
			var script, want strings.Builder
			clock := int64(-1)
			for _, st := range seq.Steps {
				if now := seq.clock(st); now != clock {
					fmt.Fprintf(&script, "DEBUG CLOCK SET %d\n", now)
					want.WriteString("OK\n")
					clock = now
				}
				script.WriteString(strings.Join(st.Args, " ") + "\n")
				want.WriteString(redisCLIFormat(st, false) + "\n")
			}
			out, err := runStdin(t, 10*time.Second, script.String(), cli, "-h", s.Host, "-p", strconv.Itoa(s.Port), proto, "--no-raw")
			if err != nil {
				t.Fatalf("redis-cli: %v\n%s", err, out)
			}
			if out != want.String() {
				t.Errorf("redis-cli %s printed\n%s\nwant\n%s", proto, out, want.String())
			}
		})
	}
}

// TestRedisBenchmark runs redis-benchmark's custom-command mode against
// THROTTLE over 1000 random keys, plainly and pipelined, and checks every
// request was answered without an error and counted by the server.
func TestRedisBenchmark(t *testing.T) {
	bench := lookPath(t, "redis-benchmark", "apt-get install redis-tools")
	s := startSluice(t)
	rdb := goRedis(t, s.Addr, 3, 1)
	// A frozen clock keeps every key until DBSIZE is read, however slow the machine.
	if err := rdb.Do(t.Context(), "DEBUG", "CLOCK", "SET", loadSequence(t).EpochNs).Err(); err != nil {
		t.Fatal(err)
	}
	base := []string{"-h", s.Host, "-p", strconv.Itoa(s.Port), "-n", "2000", "-c", "10", "-r", "1000", "-q"}
	cmdline := []string{"THROTTLE", "key:__rand_int__", "15", "30", "60", "1"}
	for _, extra := range [][]string{nil, {"-P", "16"}} {
		args := append(append(append([]string{}, base...), extra...), cmdline...)
		out, err := run(t, 60*time.Second, nil, "", bench, args...)
		if err != nil || strings.Contains(out, "Error") || !strings.Contains(out, "requests per second") {
			t.Fatalf("redis-benchmark %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		t.Logf("redis-benchmark %s: %s", strings.Join(extra, " "), lastLine(out))
	}

	info := rdb.Info(t.Context(), "stats").Val()
	allowed, limited := infoInt(t, info, "throttle_allowed"), infoInt(t, info, "throttle_limited")
	if allowed+limited != 4000 {
		t.Errorf("server counted %d allowed + %d limited THROTTLE calls, want 4000 in all\n%s", allowed, limited, info)
	}
	if n := rdb.DBSize(t.Context()).Val(); n < 500 || n > 1000 {
		t.Errorf("DBSIZE %d after calls over 1000 random keys", n)
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexAny(s, "\r\n"); i >= 0 {
		return strings.TrimSpace(s[i+1:])
	}
	return s
}

func infoInt(t *testing.T, info, field string) int64 {
	t.Helper()
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("INFO %s: %q", field, v)
			}
			return n
		}
	}
	t.Fatalf("INFO has no %s:\n%s", field, info)
	return 0
}
