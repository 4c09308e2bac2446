package replication_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// binary builds cmd/sluice once per test run.
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sluice-repl-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "sluice")
		out, err := exec.Command("go", "build", "-o", buildPath, "../cmd/sluice").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %w: %s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return buildPath
}

// proc is a sluice process.
type proc struct {
	cmd  *exec.Cmd
	addr string
	port int
	rdb  *redis.Client
	mu   sync.Mutex
	logs strings.Builder
	done chan struct{}
}

var readyRe = regexp.MustCompile(`sluice ready.*?\baddr=(\S+)`)

// startProc runs the binary with args and waits for its ready line; the
// process is killed at the end of the test if still running.
func startProc(t testing.TB, args ...string) *proc {
	t.Helper()
	argv := append([]string{binary(t), "--port", strconv.Itoa(freePort(t)), "--enable-debug-command"}, args...)
	if cpus := os.Getenv("SLUICE_BENCH_SERVER_CPUS"); cpus != "" {
		// Benchmarks: the servers on these CPUs (taskset), the load
		// generator started on the others, as package bench does.
		argv = append([]string{"taskset", "-c", cpus}, argv...)
	}
	p := &proc{cmd: exec.Command(argv[0], argv[1:]...), done: make(chan struct{})}
	stderr, err := p.cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, p.cmd.Start())
	ready := make(chan string, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.logs.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if m := readyRe.FindStringSubmatch(sc.Text()); m != nil {
				ready <- m[1]
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		_ = p.cmd.Wait()
	}()
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); <-p.done })
	select {
	case p.addr = <-ready:
	case <-time.After(30 * time.Second):
		t.Fatalf("sluice not ready:\n%s", p.Logs())
	}
	_, port, _ := net.SplitHostPort(p.addr)
	p.port, _ = strconv.Atoi(port)
	p.rdb = redis.NewClient(&redis.Options{Addr: p.addr, Protocol: 2, MaxRetries: -1})
	t.Cleanup(func() { _ = p.rdb.Close() })
	return p
}

// Logs is what the process wrote so far.
func (p *proc) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

func (p *proc) must(t testing.TB, args ...any) any {
	t.Helper()
	v, err := p.rdb.Do(context.Background(), args...).Result()
	require.NoError(t, err, "%v", args)
	return v
}

// linkUp waits until the replica's link to its primary streams.
func (p *proc) linkUp(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(p.must(t, "INFO", "replication").(string), "master_link_status:up") {
		require.True(t, time.Now().Before(deadline), "replica link up:\n%s", p.Logs())
		time.Sleep(2 * time.Millisecond)
	}
}

// kill9 kills the process with SIGKILL and waits for it to go.
func (p *proc) kill9(t testing.TB) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Kill())
	<-p.done
}

// TestNoLossAfterWaitThenKill9: 300 keys spent on a primary, WAIT 1
// answers 1, the primary is killed with SIGKILL, the replica is promoted
// with REPLICAOF NO ONE: every key is still spent.
func TestNoLossAfterWaitThenKill9(t *testing.T) {
	primary := startProc(t)
	replica := startProc(t, "--replicaof", "127.0.0.1 "+strconv.Itoa(primary.port))
	for _, p := range []*proc{primary, replica} {
		require.Equal(t, "OK", p.must(t, "DEBUG", "CLOCK", "SET", epoch))
	}
	replica.linkUp(t)

	ctx := context.Background()
	pipe := primary.rdb.Pipeline()
	for i := range 300 {
		pipe.Do(ctx, "THROTTLE", key(i), 0, 1, 3600) // one per hour, no burst
	}
	cmds, err := pipe.Exec(ctx)
	require.NoError(t, err)
	for _, c := range cmds {
		v, _ := c.(*redis.Cmd).Slice()
		require.Equal(t, int64(0), v[0], "admitted")
	}
	require.EqualValues(t, 1, primary.must(t, "WAIT", 1, 2000))
	primary.kill9(t)

	require.Equal(t, "OK", replica.must(t, "REPLICAOF", "NO", "ONE"))
	pipe = replica.rdb.Pipeline()
	for i := range 300 {
		pipe.Do(ctx, "THROTTLE", key(i), 0, 1, 3600)
	}
	cmds, err = pipe.Exec(ctx)
	require.NoError(t, err)
	for i, c := range cmds {
		v, _ := c.(*redis.Cmd).Slice()
		assert.Equal(t, int64(1), v[0], "%s is still spent on the promoted replica", key(i))
	}
	assert.Contains(t, replica.Logs(), "replication: promoted to primary")
}

// journalWritten waits until every change the process recorded (at least
// one) has been written to its journal, where the operating system keeps
// it through a kill -9.
func (p *proc) journalWritten(t testing.TB) {
	t.Helper()
	recorded := regexp.MustCompile(`persistence_changes_recorded:(\d+)`)
	written := regexp.MustCompile(`persistence_changes_written:(\d+)`)
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := p.must(t, "INFO", "persistence").(string)
		rec, wr := recorded.FindStringSubmatch(st), written.FindStringSubmatch(st)
		if rec != nil && wr != nil && rec[1] == wr[1] && rec[1] != "0" {
			return
		}
		require.True(t, time.Now().Before(deadline), "the journal written:\n%s", st)
		time.Sleep(5 * time.Millisecond) // pace the polling; the deadline bounds the wait
	}
}

// infoField reads one field of INFO replication.
func (p *proc) infoField(t testing.TB, name string) string {
	t.Helper()
	for _, line := range strings.Split(p.must(t, "INFO", "replication").(string), "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == name {
			return v
		}
	}
	return ""
}

// TestReplicaKill9ThenRestart: a replica with a data directory is killed
// with SIGKILL while the stream flows, and restarted on that directory.
// What it applied before that stream had reached its journal, so it
// resumes with a partial resync from the offset kept with its data (which
// never claims a change the data lacks; the data may hold more, applied
// again), and it ends with the primary's replies for every key.
func TestReplicaKill9ThenRestart(t *testing.T) {
	dir := t.TempDir()
	primary := startProc(t)
	args := []string{"--replicaof", "127.0.0.1 " + strconv.Itoa(primary.port), "--data-dir", dir}
	replica := startProc(t, args...)
	for _, p := range []*proc{primary, replica} {
		require.Equal(t, "OK", p.must(t, "DEBUG", "CLOCK", "SET", epoch))
	}
	replica.linkUp(t)
	w := &workload{rng: rand.New(rand.NewPCG(18, 5)), keys: 200}
	w.runOn(t, primary.rdb, 1000)
	require.EqualValues(t, 1, primary.must(t, "WAIT", 1, 20000))
	// What it applied so far has reached its journal (the operating
	// system holds it: a kill -9 keeps it).
	replica.journalWritten(t)

	// Killed between two batches of a stream of 2,000 commands.
	killed := make(chan error, 1)
	for i := range 10 {
		if i == 3 {
			go func() { killed <- replica.cmd.Process.Kill() }()
		}
		w.runOn(t, primary.rdb, 200)
	}
	require.NoError(t, <-killed)
	<-replica.done
	w.runOn(t, primary.rdb, 300)

	again := startProc(t, args...)
	require.Equal(t, "OK", again.must(t, "DEBUG", "CLOCK", "SET", epoch))
	again.linkUp(t)
	require.EqualValues(t, 1, primary.must(t, "WAIT", 1, 20000))
	// The journal held the offset applied before the kill at least, and
	// the primary's backlog (1 MiB) still holds everything after it.
	assert.Equal(t, []string{"1", "1"}, []string{primary.infoField(t, "sync_full"), primary.infoField(t, "sync_partial_ok")},
		"sync_full, sync_partial_ok: the restart continued\n%s", again.Logs())
	sameReplies(t, func(a ...any) any { return primary.must(t, a...) }, func(a ...any) any { return again.must(t, a...) }, w.keys)
}

// TestPrimarySigtermThenKill9: a primary process with a data directory,
// stopped with SIGTERM and restarted on its port, keeps its stream: its
// replica continues with a partial resync. A second replica, away during
// that whole run (behind a proxy that refuses it), still holds the old ID
// at the old end. The restarted primary is then killed with SIGKILL right
// after a batch of writes (its journal may hold more or fewer changes than
// the first replica received) and restarted again: it continues neither
// replica (the clean stop's position was withdrawn when the killed run
// started, before its first write), both take a full resync, and their
// replies equal the primary's for every key, then and after further writes.
func TestPrimarySigtermThenKill9(t *testing.T) {
	port := strconv.Itoa(freePort(t))
	args := []string{"--port", port, "--data-dir", t.TempDir()}
	primary := startProc(t, args...)
	near := startProc(t, "--replicaof", "127.0.0.1 "+port)
	p := startProxy(t, "127.0.0.1:"+port)
	away := startProc(t, "--replicaof", "127.0.0.1 "+strconv.Itoa(p.port()))
	for _, n := range []*proc{primary, near, away} {
		require.Equal(t, "OK", n.must(t, "DEBUG", "CLOCK", "SET", epoch))
	}
	near.linkUp(t)
	away.linkUp(t)
	w := &workload{rng: rand.New(rand.NewPCG(18, 9)), keys: 200}
	w.runOn(t, primary.rdb, 1000)
	require.EqualValues(t, 2, primary.must(t, "WAIT", 2, 20000))
	p.setDown(true)
	require.NoError(t, primary.cmd.Process.Signal(syscall.SIGTERM))
	<-primary.done
	p.cut()

	same := func(primary, replica *proc) {
		t.Helper()
		sameReplies(t, func(a ...any) any { return primary.must(t, a...) }, func(a ...any) any { return replica.must(t, a...) }, w.keys)
	}
	served := func(p *proc) []string {
		return []string{p.infoField(t, "sync_full"), p.infoField(t, "sync_partial_ok"), p.infoField(t, "sync_partial_err")}
	}
	received := func(r *proc) []string {
		return []string{r.infoField(t, "slave_full_syncs"), r.infoField(t, "slave_partial_syncs")}
	}
	again := startProc(t, args...)
	require.Equal(t, "OK", again.must(t, "DEBUG", "CLOCK", "SET", epoch))
	require.EqualValues(t, 1, again.must(t, "WAIT", 1, 20000), "the near replica reconnects")
	assert.Equal(t, []string{"0", "1", "0"}, served(again), "after SIGTERM: a partial resync\n%s", again.Logs())
	assert.Equal(t, []string{"1", "1"}, received(near))
	same(again, near)

	w.runOn(t, again.rdb, 1000)
	require.EqualValues(t, 1, again.must(t, "WAIT", 1, 20000))
	// These changes, and so the withdrawal journaled before them, have
	// reached the journal (the operating system keeps them on a kill -9).
	again.journalWritten(t)
	w.runOn(t, again.rdb, 200)
	again.kill9(t) // no WAIT: the near replica and the journal may each lack the last changes

	third := startProc(t, args...)
	require.Equal(t, "OK", third.must(t, "DEBUG", "CLOCK", "SET", epoch))
	p.setDown(false)
	require.EqualValues(t, 2, third.must(t, "WAIT", 2, 20000), "both replicas reconnect")
	assert.Equal(t, []string{"2", "0", "2"}, served(third), "after SIGKILL: full resyncs\n%s", third.Logs())
	assert.Equal(t, []string{"2", "1"}, received(near))
	assert.Equal(t, []string{"2", "0"}, received(away))
	same(third, near)
	same(third, away)
	w.runOn(t, third.rdb, 300)
	require.EqualValues(t, 2, third.must(t, "WAIT", 2, 20000))
	same(third, near)
	same(third, away)
}

// TestBoundWithoutWait: continuous admissions on a primary (clocks frozen
// on both nodes, so a GCRA key admits exactly max_burst+1 in all, nothing
// refills), kill -9 of the primary mid-stream, REPLICAOF NO ONE on the
// replica; then every key is spent on the promoted replica. For each key
// the admissions beyond max_burst+1, counting those acknowledged to the
// client before the kill and those the promoted replica grants, are at
// most min(max_burst+1, the admissions acknowledged in the lost interval):
// those of the batches the replica had not wholly applied when it was
// promoted (a batch's changes all lie below the primary's offset read after
// its replies; the replica's offset says what it applied).
func TestBoundWithoutWait(t *testing.T) {
	const (
		keys    = 400
		burst   = 9 // max_burst: a key admits burst+1 in all
		batch   = 20
		batches = 300 // bound on the load: 6,000 requests
		killAt  = 60  // the kill is sent as batch killAt starts
	)
	primary := startProc(t)
	replica := startProc(t, "--replicaof", "127.0.0.1 "+strconv.Itoa(primary.port))
	for _, p := range []*proc{primary, replica} {
		require.Equal(t, "OK", p.must(t, "DEBUG", "CLOCK", "SET", epoch))
	}
	replica.linkUp(t)
	ctx := context.Background()
	throttle := func(k int) []any { return []any{"THROTTLE", key(k), burst, 1, 3600, 1} }

	// The client's log: each batch's acknowledged admissions by key, and
	// the primary's offset read after the batch (-1: unknown, the primary
	// died).
	type logged struct {
		admitted map[int]int
		end      int64
	}
	var log []logged
	rng := rand.New(rand.NewPCG(18, 6))
	killed := make(chan error, 1)
	for b := 0; b < batches; b++ {
		if b == killAt {
			go func() { killed <- primary.cmd.Process.Kill() }()
		}
		pipe := primary.rdb.Pipeline()
		ks := make([]int, batch)
		for i := range ks {
			ks[i] = rng.IntN(keys)
			pipe.Do(ctx, throttle(ks[i])...)
		}
		cmds, _ := pipe.Exec(ctx)
		l := logged{admitted: map[int]int{}, end: -1}
		failed := false
		for i, c := range cmds {
			v, err := c.(*redis.Cmd).Slice()
			if err != nil {
				failed = true // no reply: not acknowledged
				continue
			}
			if v[0] == int64(0) {
				l.admitted[ks[i]]++
			}
		}
		if !failed {
			if s, err := primary.rdb.Do(ctx, "INFO", "replication").Text(); err == nil {
				m := regexp.MustCompile(`master_repl_offset:(\d+)`).FindStringSubmatch(s)
				require.NotNil(t, m)
				l.end, _ = strconv.ParseInt(m[1], 10, 64)
			}
		}
		log = append(log, l)
		if failed || l.end < 0 {
			break
		}
	}
	require.NoError(t, <-killed)
	<-primary.done
	require.Greater(t, len(log), killAt, "the load ran until the kill")

	// Once the link is down the replica applies nothing more: its offset
	// is final.
	deadline := time.Now().Add(30 * time.Second)
	for replica.infoField(t, "master_link_status") != "down" {
		require.True(t, time.Now().Before(deadline), "the replica sees its primary go")
		time.Sleep(5 * time.Millisecond)
	}
	applied, err := strconv.ParseInt(replica.infoField(t, "slave_repl_offset"), 10, 64)
	require.NoError(t, err)
	require.Equal(t, "OK", replica.must(t, "REPLICAOF", "NO", "ONE"))

	acked, lost := map[int]int{}, map[int]int{}
	for _, l := range log {
		for k, n := range l.admitted {
			acked[k] += n
			if l.end < 0 || l.end > applied {
				lost[k] += n
			}
		}
	}
	// Spend every key on the promoted replica: burst+1 tries admit
	// whatever it still grants.
	after := map[int]int{}
	for k0 := 0; k0 < keys; k0 += 50 {
		pipe := replica.rdb.Pipeline()
		for k := k0; k < k0+50; k++ {
			for range burst + 1 {
				pipe.Do(ctx, throttle(k)...)
			}
		}
		cmds, err := pipe.Exec(ctx)
		require.NoError(t, err)
		for i, c := range cmds {
			v, _ := c.(*redis.Cmd).Slice()
			if v[0] == int64(0) {
				after[k0+i/(burst+1)]++
			}
		}
	}
	extraTotal, lostTotal, ackedTotal := 0, 0, 0
	for k := range keys {
		extra := acked[k] + after[k] - (burst + 1)
		assert.LessOrEqual(t, extra, min(burst+1, lost[k]),
			"%s: %d acknowledged, %d of them in the lost interval, %d granted after the promotion", key(k), acked[k], lost[k], after[k])
		extraTotal += max(extra, 0)
		lostTotal += lost[k]
		ackedTotal += acked[k]
	}
	t.Logf("%d admissions acknowledged in %d batches, %d in the lost interval; %d extra granted after the promotion",
		ackedTotal, len(log), lostTotal, extraTotal)
}
