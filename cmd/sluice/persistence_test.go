package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// future is a frozen server instant a day ahead of the real clock: TATs
// written at it are still live when a restarted server recovers with the
// real clock.
func future() int64 { return time.Now().Add(24 * time.Hour).Truncate(time.Second).UnixNano() }

func freeze(t *testing.T, c *redis.Client, ns int64) {
	t.Helper()
	require.NoError(t, c.Do(context.Background(), "DEBUG", "CLOCK", "SET", ns).Err())
}

func throttle(t *testing.T, c *redis.Client, args ...any) []int64 {
	t.Helper()
	v, err := c.Do(context.Background(), append([]any{"THROTTLE"}, args...)...).Int64Slice()
	require.NoError(t, err)
	return v
}

// infoFields parses one INFO section into a map.
func infoFields(t *testing.T, c *redis.Client, section string) map[string]string {
	t.Helper()
	s, err := c.Info(context.Background(), section).Result()
	require.NoError(t, err)
	m := map[string]string{}
	for _, line := range strings.Split(s, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "#") {
			m[k] = v
		}
	}
	return m
}

func startPersistent(t *testing.T, dir, fsync string) *proc {
	t.Helper()
	return startProc(t, nil, "--port", respPort(t), "--enable-debug-command", "--data-dir", dir, "--fsync", fsync)
}

// TestRestartRemembersLimits spends limits, deletes and flushes, stops with
// SIGTERM, and checks every restart answers exactly as if nothing stopped.
func TestRestartRemembersLimits(t *testing.T) {
	dir := t.TempDir()
	t0 := future()
	ctx := context.Background()

	p := startPersistent(t, dir, "everysec")
	c := p.Client(t)
	freeze(t, c, t0)
	assert.Equal(t, []int64{0, 5, 0, -1, 300}, throttle(t, c, "api:alice", 4, 1, 60, 5))
	assert.Equal(t, []int64{0, 5, 2, -1, 180}, throttle(t, c, "api:bob", 4, 1, 60, 3))
	assert.Equal(t, []int64{0, 5, 3, -1, 120}, throttle(t, c, "api:bob", 4, 1, 60, -1), "refund")
	assert.Equal(t, []int64{0, 5, 4, -1, 60}, throttle(t, c, "api:carol", 4, 1, 60, 1))
	assert.EqualValues(t, 1, c.Del(ctx, "api:carol").Val())
	assert.Contains(t, p.Logs(), "persistence=everysec")
	require.Equal(t, 0, p.Signal(t, syscall.SIGTERM), p.Logs())
	assert.Contains(t, p.Logs(), "persistence closed")

	p = startPersistent(t, dir, "always")
	assert.Contains(t, p.Logs(), `msg="recovered throttle state"`)
	assert.Contains(t, p.Logs(), "keys=2")
	c = p.Client(t)
	freeze(t, c, t0)
	assert.Equal(t, []int64{1, 5, 0, 60, 300}, throttle(t, c, "api:alice", 4, 1, 60, 1), "the limit was remembered")
	assert.Equal(t, []int64{0, 5, 2, -1, 180}, throttle(t, c, "api:bob", 4, 1, 60, 1))
	assert.EqualValues(t, 0, c.Exists(ctx, "api:carol").Val(), "DEL was persisted")
	info := infoFields(t, c, "persistence")
	assert.Equal(t, "1", info["persistence_enabled"])
	assert.Equal(t, "always", info["persistence_fsync"])
	assert.Equal(t, "2", info["persistence_recovery_keys"])
	assert.Equal(t, "ok", info["persistence_status"])
	assert.Equal(t, info["persistence_changes_recorded"], info["persistence_changes_synced"], "always: synced before the reply")

	require.NoError(t, c.FlushAll(ctx).Err())
	assert.Equal(t, []int64{0, 5, 4, -1, 60}, throttle(t, c, "after-flush", 4, 1, 60, 1))
	require.Equal(t, 0, p.Signal(t, syscall.SIGTERM), p.Logs())

	p = startPersistent(t, dir, "no")
	c = p.Client(t)
	freeze(t, c, t0)
	assert.EqualValues(t, 1, c.DBSize(ctx).Val(), "FLUSHALL was persisted")
	assert.Equal(t, []int64{0, 5, 3, -1, 120}, throttle(t, c, "after-flush", 4, 1, 60, 1))
}

// TestMemoryModeHasNoPersistence: without --data-dir nothing is written.
func TestMemoryModeHasNoPersistence(t *testing.T) {
	p := startProc(t, nil, "--port", respPort(t))
	info := infoFields(t, p.Client(t), "persistence")
	assert.Equal(t, "0", info["persistence_enabled"])
	assert.Contains(t, p.Logs(), "persistence=off")
}

// TestExpiredWhileDownIsNotLoaded writes keys whose TATs pass before the
// restart (the frozen clock an hour behind the real one) next to keys that
// stay live, and checks recovery loads only the live ones and deletes the
// rest from disk.
func TestExpiredWhileDownIsNotLoaded(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	p := startPersistent(t, dir, "everysec")
	c := p.Client(t)
	t0 := future()
	freeze(t, c, t0)
	for i := range 10 {
		throttle(t, c, fmt.Sprintf("live:%d", i), 4, 1, 60, 2)
	}
	// Last, so that the sweep (which runs on the frozen clock) never sees
	// them expire before the stop.
	freeze(t, c, time.Now().Add(-time.Hour).UnixNano())
	for i := range 30 {
		throttle(t, c, fmt.Sprintf("gone:%d", i), 4, 1, 60, 1) // TAT one minute after an hour ago
	}
	require.Equal(t, 0, p.Signal(t, syscall.SIGTERM), p.Logs())

	p = startPersistent(t, dir, "everysec")
	c = p.Client(t)
	info := infoFields(t, c, "persistence")
	assert.Equal(t, "10", info["persistence_recovery_keys"])
	assert.Equal(t, "30", info["persistence_recovery_expired"])
	assert.EqualValues(t, 10, c.DBSize(ctx).Val())
	freeze(t, c, t0)
	assert.Equal(t, []int64{0, 5, 2, -1, 180}, throttle(t, c, "live:3", 4, 1, 60, 1))
	require.Equal(t, 0, p.Signal(t, syscall.SIGTERM), p.Logs())

	p = startPersistent(t, dir, "everysec")
	info = infoFields(t, p.Client(t), "persistence")
	assert.Equal(t, "10", info["persistence_recovery_keys"])
	assert.Equal(t, "0", info["persistence_recovery_expired"], "expired entries were deleted from disk")
}

// crashBurst is a limit that never refuses during a crash test, with one
// second of TAT per admission: with a frozen clock a key's PTTL in seconds
// is the number of admissions it remembers.
var crashBurst = []any{1000000, 1, 1}

// load runs workers that each send THROTTLE key quantity 1 on random keys
// until stop is closed or the server dies. attempted counts requests sent,
// acked admissions confirmed, and ackedAt (when given) records when.
type load struct {
	keys      []string
	attempted []atomic.Int64
	acked     []atomic.Int64
	mu        sync.Mutex
	ackTimes  [][]time.Time
}

func newLoad(prefix string, n int) *load {
	l := &load{attempted: make([]atomic.Int64, n), acked: make([]atomic.Int64, n), ackTimes: make([][]time.Time, n)}
	for i := range n {
		l.keys = append(l.keys, fmt.Sprintf("%s:%d", prefix, i))
	}
	return l
}

func (l *load) run(c *redis.Client, workers int, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; i < 1_000_000; i++ { // bounded; ends far sooner
				select {
				case <-stop:
					return
				default:
				}
				k := r.IntN(len(l.keys))
				l.attempted[k].Add(1)
				v, err := c.Do(context.Background(), append(append([]any{"THROTTLE", l.keys[k]}, crashBurst...), 1)...).Int64Slice()
				if err != nil {
					return // the server was killed
				}
				if v[0] == 0 {
					now := time.Now()
					l.acked[k].Add(1)
					l.mu.Lock()
					l.ackTimes[k] = append(l.ackTimes[k], now)
					l.mu.Unlock()
				}
			}
		})
	}
	return &wg
}

// remembered is how many admissions the server remembers for key, with its
// clock frozen at the instant the admissions were made.
func remembered(t *testing.T, c *redis.Client, key string) int64 {
	t.Helper()
	ms, err := c.Do(context.Background(), "PTTL", key).Int64()
	require.NoError(t, err)
	if ms == -2 {
		return 0
	}
	require.Zero(t, ms%1000, "PTTL %d of %s is not whole admissions", ms, key)
	return ms / 1000
}

// TestCrashAlwaysForgetsNoAcknowledgedAdmission kills -9 a server under
// concurrent load at a random moment, restarts it, and checks that for
// every key the restarted server remembers at least every admission it
// acknowledged (and no more than were requested) — over a few cycles, each
// also rechecking the keys of the cycles before.
func TestCrashAlwaysForgetsNoAcknowledgedAdmission(t *testing.T) {
	dir := t.TempDir()
	t0 := future()
	var loads []*load
	for cycle := range 3 {
		p := startPersistent(t, dir, "always")
		c := redis.NewClient(&redis.Options{Addr: p.Addr, PoolSize: 8, MaxRetries: -1})
		freeze(t, c, t0)
		for _, l := range loads {
			for i, k := range l.keys {
				n := remembered(t, c, k)
				assert.GreaterOrEqual(t, n, l.acked[i].Load(), "%s forgot acknowledged admissions", k)
				assert.LessOrEqual(t, n, l.attempted[i].Load(), "%s remembers admissions never requested", k)
			}
		}
		l := newLoad(fmt.Sprintf("c%d", cycle), 16)
		loads = append(loads, l)
		stop := make(chan struct{})
		wg := l.run(c, 8, stop)
		time.Sleep(time.Duration(150+rand.IntN(350)) * time.Millisecond) // the random moment of the crash
		require.NoError(t, p.cmd.Process.Kill())
		<-p.done
		close(stop)
		wg.Wait()
		_ = c.Close()
		var acked, attempted int64
		for i := range l.keys {
			acked += l.acked[i].Load()
			attempted += l.attempted[i].Load()
		}
		require.Positive(t, acked, "the load made no admission before the kill")
		t.Logf("cycle %d: %d admissions acknowledged, %d requested before kill -9", cycle, acked, attempted)
	}
	p := startPersistent(t, dir, "always")
	c := p.Client(t)
	freeze(t, c, t0)
	for _, l := range loads {
		for i, k := range l.keys {
			n := remembered(t, c, k)
			assert.GreaterOrEqual(t, n, l.acked[i].Load(), "%s forgot acknowledged admissions", k)
			assert.LessOrEqual(t, n, l.attempted[i].Load(), "%s", k)
		}
	}
}

// TestCrashEverySecLosesAtMostTheSyncInterval checks the everysec bound:
// the write-ahead log is synced within a second of a write, and after kill -9
// every admission acknowledged longer ago than the interval plus a margin is
// remembered. (A process crash in fact loses only the batch being committed,
// which the test reports; the interval bounds a machine crash.)
func TestCrashEverySecLosesAtMostTheSyncInterval(t *testing.T) {
	const interval, margin = time.Second, 500 * time.Millisecond
	dir := t.TempDir()
	t0 := future()
	p := startPersistent(t, dir, "everysec")
	c := redis.NewClient(&redis.Options{Addr: p.Addr, PoolSize: 8, MaxRetries: -1})
	defer c.Close()
	freeze(t, c, t0)

	// Settled writes: synced within the interval without any further write.
	settled := newLoad("settled", 8)
	for i, k := range settled.keys {
		for range i + 1 {
			throttle(t, c, append([]any{k}, append(crashBurst, 1)...)...)
			settled.acked[i].Add(1)
			settled.attempted[i].Add(1)
		}
	}
	wrote := time.Now()
	info := infoFields(t, c, "persistence")
	target, err := strconv.ParseUint(info["persistence_changes_recorded"], 10, 64)
	require.NoError(t, err)
	for {
		synced, err := strconv.ParseUint(infoFields(t, c, "persistence")["persistence_changes_synced"], 10, 64)
		require.NoError(t, err)
		if synced >= target {
			break
		}
		require.Less(t, time.Since(wrote), interval+margin, "everysec left writes unsynced past the interval")
		require.Equal(t, "ok", infoFields(t, c, "persistence")["persistence_status"])
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("everysec synced the settled writes %v after the last one", time.Since(wrote).Round(time.Millisecond))

	// Then a crash under load, at a random moment 2 to 3 s in.
	l := newLoad("busy", 16)
	stop := make(chan struct{})
	wg := l.run(c, 8, stop)
	time.Sleep(time.Duration(2000+rand.IntN(1000)) * time.Millisecond)
	killed := time.Now()
	require.NoError(t, p.cmd.Process.Kill())
	<-p.done
	close(stop)
	wg.Wait()

	p = startPersistent(t, dir, "everysec")
	c2 := p.Client(t)
	freeze(t, c2, t0)
	for i, k := range settled.keys {
		assert.Equal(t, settled.acked[i].Load(), remembered(t, c2, k), k)
	}
	cutoff := killed.Add(-(interval + margin))
	var old, lost int64
	for i, k := range l.keys {
		n := remembered(t, c2, k)
		assert.LessOrEqual(t, n, l.attempted[i].Load(), k)
		var before int64
		for _, at := range l.ackTimes[i] {
			if at.Before(cutoff) {
				before++
			}
		}
		old += before
		assert.GreaterOrEqual(t, n, before, "%s forgot admissions acknowledged over %v before the crash", k, interval+margin)
		lost += max(0, l.acked[i].Load()-n)
	}
	t.Logf("kill -9 under load: %d admissions acknowledged over %v before it all remembered; %d acknowledged admissions lost in all",
		old, interval+margin, lost)
}

// TestSecondSignalDuringShutdown sends SIGTERM while an fsync-always
// server works through a long pipeline, then SIGTERM again once the shutdown
// has begun: the second signal cuts the wait for the connection short, the
// data directory is still closed cleanly, and every admission whose reply
// arrived is remembered.
func TestSecondSignalDuringShutdown(t *testing.T) {
	dir := t.TempDir()
	t0 := future()
	p := startPersistent(t, dir, "always")
	freeze(t, p.Client(t), t0)
	conn, err := net.Dial("tcp", p.Addr)
	require.NoError(t, err)
	defer conn.Close()
	const n = 5000
	var req bytes.Buffer
	for i := range n {
		key := fmt.Sprintf("k%05d", i)
		fmt.Fprintf(&req, "*5\r\n$8\r\nTHROTTLE\r\n$%d\r\n%s\r\n$1\r\n4\r\n$1\r\n1\r\n$2\r\n60\r\n", len(key), key)
	}
	go func() { _, _ = conn.Write(req.Bytes()) }()
	r := bufio.NewReader(conn)
	replies := 0
	readReply := func() bool { // one whole [limited, limit, remaining, retry, reset] reply
		for range 6 {
			if _, err := r.ReadString('\n'); err != nil {
				return false
			}
		}
		replies++
		return true
	}
	require.True(t, readReply(), "the server started on the pipeline")
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	for start := time.Now(); !strings.Contains(p.Logs(), "shutting down"); {
		require.Less(t, time.Since(start), 10*time.Second, p.Logs())
		time.Sleep(5 * time.Millisecond)
	}
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(20*time.Second)))
	for readReply() {
	}
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatal("no exit after two SIGTERMs")
	}
	logs := p.Logs()
	assert.Equal(t, 0, p.cmd.ProcessState.ExitCode(), logs)
	assert.Contains(t, logs, "persistence closed")
	if replies < n {
		assert.Contains(t, logs, "second signal", "the pipeline was cut short by the second signal")
	}
	t.Logf("%d of %d pipelined admissions answered before the shutdown closed the connection", replies, n)

	p = startPersistent(t, dir, "always")
	c := p.Client(t)
	freeze(t, c, t0)
	for i := range replies {
		require.EqualValues(t, 60000, c.PTTL(context.Background(), fmt.Sprintf("k%05d", i)).Val().Milliseconds(), "k%05d", i)
	}
}

// runFails runs the binary expecting it to exit 1 before serving, and
// returns its output.
func runFails(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary(t), append([]string{"--port", respPort(t)}, args...)...).CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, string(out))
	assert.Equal(t, 1, exit.ExitCode(), string(out))
	assert.NotContains(t, string(out), "sluice ready")
	return string(out)
}

func TestDataDirErrorsFailStartup(t *testing.T) {
	t.Run("a file in its place", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "data")
		require.NoError(t, os.WriteFile(p, []byte("precious"), 0o600))
		out := runFails(t, "--data-dir", p)
		assert.Contains(t, out, "sluice: --data-dir: data dir "+p+" is not a directory")
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		assert.Equal(t, "precious", string(b), "never wiped")
	})
	t.Run("held by another running sluice", func(t *testing.T) {
		dir := t.TempDir()
		p := startPersistent(t, dir, "always")
		c := p.Client(t)
		freeze(t, c, future())
		throttle(t, c, "k", 4, 1, 60, 1)
		out := runFails(t, "--data-dir", dir)
		assert.Contains(t, out, "is in use by another running sluice")
		assert.EqualValues(t, 1, c.DBSize(context.Background()).Val(), "the first server goes on")
		require.Equal(t, 0, p.Signal(t, syscall.SIGTERM))
		p = startPersistent(t, dir, "always")
		assert.EqualValues(t, 1, p.Client(t).DBSize(context.Background()).Val(), "nothing was lost")
	})
	t.Run("a directory of other files", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "important.db"), []byte("x"), 0o600))
		out := runFails(t, "--data-dir", dir)
		assert.Contains(t, out, `holds "important.db" and no Sluice data`)
		_, err := os.Stat(filepath.Join(dir, "important.db"))
		assert.NoError(t, err)
	})
	t.Run("unwritable", func(t *testing.T) {
		dir := unwritableDir(t)
		out := runFails(t, "--data-dir", filepath.Join(dir, "data"))
		assert.Contains(t, out, "sluice: --data-dir: create data dir")
	})
	t.Run("an unknown fsync mode", func(t *testing.T) {
		out := runFails(t, "--data-dir", t.TempDir(), "--fsync", "sometimes")
		assert.Contains(t, out, `--fsync: fsync mode "sometimes": must be always, everysec or no`)
	})
}

// unwritableDir returns a directory the process cannot create files in: a
// read-only mode for a normal user; for root, who ignores modes, a tmpfs
// mounted read-only (skipping when mounting is not allowed).
func unwritableDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if os.Geteuid() != 0 {
		require.NoError(t, os.Chmod(dir, 0o500))
		t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
		return dir
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_RDONLY, "size=1m"); err != nil {
		t.Skipf("running as root, where file modes do not stop writes, and cannot mount a read-only tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, 0) })
	return dir
}

// TestDiskFullInAlwaysModeAnswersErrors fills a small tmpfs under the data
// directory: the write that fails is logged and counted, THROTTLE stops
// acknowledging admissions it cannot make durable, and after more room is
// given every acknowledged admission is recovered. Needs root (mount).
func TestDiskFullInAlwaysModeAnswersErrors(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=3m"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	t0 := future()
	p := startPersistent(t, dir, "always")
	c := p.Client(t)
	freeze(t, c, t0)
	ctx := context.Background()
	pad := strings.Repeat("x", 16<<10)
	var acked []string
	var failure error
	for i := range 1000 { // 16 MB of keys: far more than the 3 MB tmpfs holds
		k := fmt.Sprintf("k%04d:%s", i, pad)
		v, err := c.Do(ctx, "THROTTLE", k, 4, 1, 60, 1).Int64Slice()
		if err != nil {
			failure = err
			break
		}
		require.Equal(t, int64(0), v[0])
		acked = append(acked, k)
	}
	require.Error(t, failure, "the disk never filled")
	assert.True(t, strings.HasPrefix(failure.Error(), "ERR decision not durable: persistence failed"), failure.Error())
	t.Logf("%d admissions acknowledged before the disk filled: %v", len(acked), failure)
	info := infoFields(t, c, "persistence")
	assert.Equal(t, "failed", info["persistence_status"])
	assert.NotEqual(t, "0", info["persistence_write_errors"])
	assert.NotEmpty(t, info["persistence_last_error"])
	_, err := c.Do(ctx, "THROTTLE", "k-new", 4, 1, 60, 1).Int64Slice()
	assert.ErrorContains(t, err, "ERR decision not durable")
	v, err := c.Do(ctx, "THROTTLE", acked[0], 4, 1, 60, 0).Int64Slice()
	require.NoError(t, err, "a peek needs nothing durable")
	assert.Equal(t, []int64{0, 5, 4, -1, 60}, v)
	assert.Contains(t, p.Logs(), "persistence: write failed")
	assert.Equal(t, 1, p.Signal(t, syscall.SIGTERM), "a run whose persistence failed exits non-zero")

	require.NoError(t, syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT, "size=64m"))
	p = startPersistent(t, dir, "always")
	c = p.Client(t)
	freeze(t, c, t0)
	for _, k := range acked {
		require.EqualValues(t, 60000, c.PTTL(ctx, k).Val().Milliseconds(), "acknowledged admission of %.5s forgotten", k)
	}
}

// TestRestartRemembersWindowsAndLeases: THROTTLE.WINDOW counters and
// leases survive a restart, the restored lease keeps its id (it can still
// be released), and new ids are random, not a count resumed.
func TestRestartRemembersWindowsAndLeases(t *testing.T) {
	dir := t.TempDir()
	t0 := future()
	t0 -= t0 % int64(time.Minute) // windows are aligned to the epoch: t0 and t0+1s share one
	ctx := context.Background()
	ints := func(c *redis.Client, args ...any) []int64 {
		t.Helper()
		v, err := c.Do(ctx, args...).Int64Slice()
		require.NoError(t, err)
		return v
	}

	p := startPersistent(t, dir, "always")
	c := p.Client(t)
	freeze(t, c, t0)
	ints(c, "THROTTLE.WINDOW", "win", 2, 60, 2, "ALGO", "fixed") // window spent
	ints(c, "THROTTLE.WINDOW", "gone", 1, 60, 1, "ALGO", "fixed")
	require.EqualValues(t, 1, c.Del(ctx, "gone").Val())
	lease := ints(c, "LEASE.ACQUIRE", "jobs", 2, 600000)
	require.EqualValues(t, 0, lease[0])
	released := ints(c, "LEASE.ACQUIRE", "jobs", 2, 600000)
	require.Equal(t, []int64{1, 1}, ints(c, "LEASE.RELEASE", "jobs", released[4]))
	require.Equal(t, 0, p.Signal(t, syscall.SIGTERM))

	p = startPersistent(t, dir, "always")
	c = p.Client(t)
	freeze(t, c, t0+1e9)
	assert.EqualValues(t, 1, ints(c, "THROTTLE.WINDOW", "win", 2, 60, 1, "ALGO", "fixed")[0], "the window stayed spent")
	assert.EqualValues(t, 0, ints(c, "THROTTLE.WINDOW", "gone", 1, 60, 1, "ALGO", "fixed")[0], "DEL was persisted")
	again := ints(c, "LEASE.ACQUIRE", "jobs", 2, 600000)
	assert.EqualValues(t, 0, again[0])
	assert.EqualValues(t, 2, again[2], "the lease held before the restart is still in flight")
	assert.NotEqual(t, again[4], lease[4])
	assert.NotEqual(t, again[4], released[4])
	assert.EqualValues(t, 1, ints(c, "LEASE.ACQUIRE", "jobs", 2, 600000)[0], "both slots are taken")
	assert.Equal(t, []int64{1, 1}, ints(c, "LEASE.RELEASE", "jobs", lease[4]), "the restored lease is released by its id")
	assert.Contains(t, p.Logs(), "windows=1")
	assert.Contains(t, p.Logs(), "lease_keys=1")
}

// TestRestartRemembersCountersAndSlidingLogs: counters and sliding logs are
// kept across a restart like every other kind of state.
func TestRestartRemembersCountersAndSlidingLogs(t *testing.T) {
	dir := t.TempDir()
	t0 := future()
	ctx := context.Background()
	ints := func(c *redis.Client, args ...any) []int64 {
		t.Helper()
		v, err := c.Do(ctx, args...).Int64Slice()
		require.NoError(t, err)
		return v
	}

	p := startPersistent(t, dir, "always")
	c := p.Client(t)
	freeze(t, c, t0)
	require.Equal(t, []int64{7, 60000}, ints(c, "COUNTER.INCRBY", "hits", 7, 60000))
	require.EqualValues(t, 0, ints(c, "SLIDINGLOG.ACQUIRE", "log", 2, 60000, 2)[0])
	require.Equal(t, 0, p.Signal(t, syscall.SIGTERM))

	p = startPersistent(t, dir, "always")
	c = p.Client(t)
	freeze(t, c, t0+1e9)
	assert.Equal(t, []int64{7, 59000}, ints(c, "COUNTER.GET", "hits"))
	assert.EqualValues(t, 1, ints(c, "SLIDINGLOG.ACQUIRE", "log", 2, 60000)[0], "the log stayed full")
	assert.Equal(t, []int64{2, 59000, 59000}, ints(c, "SLIDINGLOG.GET", "log", 60000))
	assert.Contains(t, p.Logs(), "counters=1")
	assert.Contains(t, p.Logs(), "sliding_logs=1")
}
