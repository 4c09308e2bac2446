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
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := replica.must(t, "INFO", "persistence").(string)
		rec, wr := regexp.MustCompile(`persistence_changes_recorded:(\d+)`).FindStringSubmatch(st),
			regexp.MustCompile(`persistence_changes_written:(\d+)`).FindStringSubmatch(st)
		if rec != nil && wr != nil && rec[1] == wr[1] && rec[1] != "0" {
			break
		}
		require.True(t, time.Now().Before(deadline), "the replica's journal written:\n%s", st)
		time.Sleep(5 * time.Millisecond)
	}

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
