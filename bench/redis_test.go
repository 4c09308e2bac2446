package main

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/vectors"
)

// startRedisPeer starts a fresh redis-server peer on 127.0.0.1 through the
// same launcher the benchmark uses, or skips the test when redis-server is
// not installed.
func startRedisPeer(t *testing.T, name string) *peer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not on PATH; install it (Debian: apt-get install redis-server) to run this test")
	}
	cfg := &Config{RedisServer: "redis-server", StartTimeout: 10 * time.Second, Limit: Limit{15, 30, 60, 1}}
	l := &launcher{cfg: cfg, root: t.TempDir()}
	def, ok := findPeer(name)
	if !ok {
		t.Fatalf("no peer %q", name)
	}
	p, err := l.start(context.Background(), def)
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(p.stop)
	return p
}

// clockFreeRows selects the vector rows whose replies do not depend on a
// frozen clock when run back to back on a live server: the rows at t = 0 of
// each scenario, on a key whose every earlier row was selected too, that
// are either the key's first request, an error, or under a limit whose
// emission interval (at least 50 ms) dwarfs the time between two requests.
func clockFreeRows(rows []vectors.Row) []vectors.Row {
	const minInterval = 50 * time.Millisecond
	var out []vectors.Row
	pastZero := map[string]bool{} // scenario -> a row with t > 0 was seen
	seen := map[string]bool{}     // scenario/key -> a row was selected
	dropped := map[string]bool{}  // scenario/key -> a row was left out
	for _, r := range rows {
		if r.TNs != 0 {
			pastZero[r.Scenario] = true
		}
		if pastZero[r.Scenario] || len(r.Args) < 2 {
			continue
		}
		key := r.Scenario + "/" + r.Args[1]
		ok := !dropped[key] && (r.Expect == nil || !seen[key] || interval(r.Args) >= minInterval)
		if !ok {
			dropped[key] = true
			continue
		}
		seen[key] = true
		out = append(out, r)
	}
	return out
}

// interval returns the emission interval of a THROTTLE command line, or 0
// when its arguments do not parse.
func interval(args []string) time.Duration {
	if len(args) < 5 {
		return 0
	}
	count, err1 := strconv.ParseInt(args[3], 10, 64)
	period, err2 := strconv.ParseInt(args[4], 10, 64)
	if err1 != nil || err2 != nil || count < 1 || period < 1 || period > 1<<32 {
		return 0
	}
	return time.Duration(period) * time.Second / time.Duration(count)
}

// TestLuaScriptMatchesVectors runs the clock-independent rows of the
// THROTTLE reference vectors through the redis-lua peer's script and compares every
// reply with Sluice's expected one.
func TestLuaScriptMatchesVectors(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	path, err := vectors.Path(wd)
	if err != nil {
		t.Fatal(err)
	}
	f, err := vectors.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	rows := clockFreeRows(f.Rows)
	if len(rows) < 50 {
		t.Fatalf("only %d clock-independent rows selected from %d", len(rows), len(f.Rows))
	}
	p := startRedisPeer(t, "redis-lua")
	c, err := dial(context.Background(), p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i, r := range rows {
		args := append([]string{"EVALSHA", p.sha, "1", "vec:" + r.Scenario + ":" + r.Args[1]}, r.Args[2:]...)
		v, err := c.Do(5*time.Second, args...)
		if err != nil {
			t.Fatalf("row %d %v: %v", i, r.Args, err)
		}
		if r.Expect == nil {
			if v.Kind != '-' || !strings.HasPrefix(v.Str, "ERR") {
				t.Errorf("%s %v: got %s, want an ERR reply", r.Scenario, r.Args, v)
			}
			continue
		}
		got, ok := v.Ints()
		if !ok || !slices.Equal(got, r.Expect) {
			t.Errorf("%s %v: got %s, want %v", r.Scenario, r.Args, v, r.Expect)
		}
	}
}

// TestLuaScriptExhaustsBurst is the README example in full: a fresh key under
// 15 30 60 allows 16 requests, remaining counting down 15..0, then limits.
func TestLuaScriptExhaustsBurst(t *testing.T) {
	p := startRedisPeer(t, "redis-lua")
	c, err := dial(context.Background(), p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := int64(0); i <= 16; i++ {
		v, err := c.Do(5*time.Second, "EVALSHA", p.sha, "1", "burst", "15", "30", "60")
		if err != nil {
			t.Fatal(err)
		}
		want := []int64{0, 16, 15 - i, -1, 2 * (i + 1)}
		if i == 16 {
			want = []int64{1, 16, 0, 2, 32}
		}
		if got, _ := v.Ints(); !slices.Equal(got, want) {
			t.Fatalf("request %d: got %s, want %v", i+1, v, want)
		}
	}
	// The TAT is stored with an expiry no earlier than itself.
	v, err := c.Do(5*time.Second, "PTTL", "burst")
	if err != nil || v.Kind != ':' || v.Int < 31_000 || v.Int > 32_000 {
		t.Fatalf("PTTL = %s, %v; want about 32 s", v, err)
	}
}

// TestLoadAgainstRedis drives two redis peers through the real load loop,
// bounded by a request count, and checks what it counted.
func TestLoadAgainstRedis(t *testing.T) {
	for _, name := range []string{"redis-lua", "redis-set"} {
		t.Run(name, func(t *testing.T) {
			p := startRedisPeer(t, name)
			l := Limit{15, 30, 60, 1}
			wl := Workload{Name: "hot", Dist: distHot, Keys: 1, Conns: 4, Pipeline: 8}
			req, err := newRequest("bench:", keyWidth(wl.Keys), p.def.requestArgs(l, p.sha)...)
			if err != nil {
				t.Fatal(err)
			}
			r, err := runLoad(context.Background(), loadSpec{
				Workload: wl, Addr: p.addr, Request: req, Reply: p.def.replyKind(), Limit: l.MaxBurst + 1,
				Requests: 2000, ZipfS: 1.1, ZipfV: 1, Seed: 1, ServerPID: p.pid,
			})
			if err != nil {
				t.Fatal(err)
			}
			if r.Ops != 2000 || r.Hist.Count() != 2000 || r.Bad != 0 || r.Elapsed <= 0 {
				t.Fatalf("ops %d hist %d bad %d elapsed %v", r.Ops, r.Hist.Count(), r.Bad, r.Elapsed)
			}
			if name == "redis-lua" && (r.Allowed != 16 || r.Limited != 2000-16) {
				t.Fatalf("one hot key under 15 30 60: allowed %d limited %d, want 16 and %d", r.Allowed, r.Limited, 2000-16)
			}
		})
	}
}

// TestLoadAbortsOnErrorReply checks that an error reply stops the run with
// the server's message.
func TestLoadAbortsOnErrorReply(t *testing.T) {
	p := startRedisPeer(t, "redis-lua")
	l := Limit{15, 30, 60, 1}
	wl := Workload{Name: "hot", Dist: distHot, Keys: 1, Conns: 2, Pipeline: 1}
	req, err := newRequest("bench:", 1, p.def.requestArgs(l, strings.Repeat("0", 40))...)
	if err != nil {
		t.Fatal(err)
	}
	_, err = runLoad(context.Background(), loadSpec{
		Workload: wl, Addr: p.addr, Request: req, Reply: replyThrottle, Limit: 16,
		Duration: 5 * time.Second, ZipfS: 1.1, ZipfV: 1,
	})
	if err == nil || !strings.Contains(err.Error(), "NOSCRIPT") {
		t.Fatalf("got %v, want a NOSCRIPT error", err)
	}
}

// TestMeasureMemory loads a few thousand keys and checks the accounting.
func TestMeasureMemory(t *testing.T) {
	p := startRedisPeer(t, "redis-lua")
	m, err := measureMemory(context.Background(), p, 5000)
	if err != nil {
		t.Fatal(err)
	}
	if m.DBSize != 5000 || m.LimitedReplies != 0 {
		t.Fatalf("dbsize %d limited %d, want 5000 and 0", m.DBSize, m.LimitedReplies)
	}
	if m.UsedBefore <= 0 || m.UsedPerKey < 20 || m.UsedPerKey > 1000 {
		t.Fatalf("used_memory %d -> %d: %.1f bytes per key", m.UsedBefore, m.UsedAfter, m.UsedPerKey)
	}
}

// TestPerfCountsAgainstRedis counts redis-server's system calls over an
// unpipelined run on one connection: one read and one write per request.
// It needs perf with tracepoint access (skipped otherwise).
func TestPerfCountsAgainstRedis(t *testing.T) {
	events, note := probePerf(context.Background())
	if events == nil {
		t.Skip(note)
	}
	p := startRedisPeer(t, "redis-set")
	wl := Workload{Name: "uniform", Dist: distUniform, Keys: 1000, Conns: 1, Pipeline: 1}
	req, err := newRequest("bench:", keyWidth(wl.Keys), p.def.requestArgs(Limit{15, 30, 60, 1}, "")...)
	if err != nil {
		t.Fatal(err)
	}
	r, err := runLoad(context.Background(), loadSpec{
		Workload: wl, Addr: p.addr, Request: req, Reply: p.def.replyKind(),
		Requests: 3000, ZipfS: 1.1, ZipfV: 1, Seed: 1, ServerPID: p.pid,
		PerfEvents: events, PerfDir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	k := r.Kernel
	if k == nil {
		t.Fatal("no counts")
	}
	if k.Reads < 0.9 || k.Reads > 1.5 || k.Writes < 0.9 || k.Writes > 1.5 || k.Syscalls < k.Reads+k.Writes {
		t.Fatalf("per request: %+v; want about one read and one write", *k)
	}
}
