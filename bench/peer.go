package main

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

//go:embed gcra.lua
var gcraLua string

// serverKind is the program a peer runs.
type serverKind int

const (
	serverSluice serverKind = iota
	serverRedis
)

// replyKind is what every reply of a peer's requests must look like.
type replyKind int

const (
	replyThrottle replyKind = iota // [limited, limit, remaining, retry_after, reset_after]
	replyOK                        // +OK
)

// peerDef describes one peer: which server to start with which arguments, and
// which command the load sends it. Adding a peer is adding one entry to
// peerDefs.
type peerDef struct {
	name       string
	server     serverKind
	persistent bool // writes to disk (selects redis-set-always with --compare redis)
	// args returns the server's arguments besides the listen address; dir is
	// a fresh temporary directory the peer owns.
	args func(cfg *Config, dir string) []string
	// command is the request's command name: THROTTLE, CL.THROTTLE, EVALSHA
	// (run the embedded Lua script) or SET.
	command string
}

// redisBase is the configuration every redis peer starts from: no RDB
// snapshots, no AOF, logs on stdout.
func redisBase(dir string) []string {
	return []string{"--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no",
		"--logfile", "", "--loglevel", "warning"}
}

// peerDefs returns every known peer.
func peerDefs() []peerDef {
	sluice := func(extra ...string) func(*Config, string) []string {
		return func(cfg *Config, dir string) []string {
			var a []string
			for _, e := range extra {
				a = append(a, strings.ReplaceAll(e, "{dir}", dir))
			}
			return append(a, cfg.SluiceArgs...)
		}
	}
	redis := func(extra ...string) func(*Config, string) []string {
		return func(cfg *Config, dir string) []string { return append(redisBase(dir), extra...) }
	}
	return []peerDef{
		{name: "sluice", server: serverSluice, command: "THROTTLE", args: sluice()},
		{name: "sluice-everysec", server: serverSluice, persistent: true, command: "THROTTLE",
			args: sluice("--data-dir", "{dir}", "--fsync", "everysec")},
		{name: "sluice-always", server: serverSluice, persistent: true, command: "THROTTLE",
			args: sluice("--data-dir", "{dir}", "--fsync", "always")},
		{name: "sluice-no", server: serverSluice, persistent: true, command: "THROTTLE",
			args: sluice("--data-dir", "{dir}", "--fsync", "no")},
		{name: "redis-lua", server: serverRedis, command: "EVALSHA", args: redis()},
		{name: "redis-set", server: serverRedis, command: "SET", args: redis()},
		{name: "redis-cell", server: serverRedis, command: "CL.THROTTLE",
			args: func(cfg *Config, dir string) []string {
				return append(redisBase(dir), "--loadmodule", cfg.RedisCellModule)
			}},
		{name: "redis-set-always", server: serverRedis, persistent: true, command: "SET",
			args: redis("--appendonly", "yes", "--appendfsync", "always")},
	}
}

// findPeer returns the definition of the named peer.
func findPeer(name string) (peerDef, bool) {
	for _, d := range peerDefs() {
		if d.name == name {
			return d, true
		}
	}
	return peerDef{}, false
}

// replyKind returns what the peer's replies look like.
func (d peerDef) replyKind() replyKind {
	if d.command == "SET" {
		return replyOK
	}
	return replyThrottle
}

// setValue is the value the SET peers store: 19 digits, the size of the Lua
// peer's stored TAT.
const setValue = "1893456000000000000"

// requestArgs returns the arguments of one request, with keyPlaceholder for
// the key. sha is the Lua script's SHA1 for EVALSHA.
func (d peerDef) requestArgs(l Limit, sha string) []string {
	switch d.command {
	case "SET":
		return []string{"SET", keyPlaceholder, setValue}
	case "EVALSHA":
		return append([]string{"EVALSHA", sha, "1", keyPlaceholder}, l.args()...)
	default:
		return append([]string{d.command, keyPlaceholder}, l.args()...)
	}
}

// tailBuffer keeps the last max bytes written to it: a child's output, kept
// for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(bytes.ToValidUTF8(t.buf, []byte("?"))))
}

// peer is a running server.
type peer struct {
	def    peerDef
	addr   string
	pid    int
	dir    string
	sha    string // SHA1 of the Lua script on redis-lua
	cmd    *exec.Cmd
	out    *tailBuffer
	exited chan struct{} // closed when the process has exited
}

// launcher starts peers. It builds the sluice binary at most once.
type launcher struct {
	cfg  *Config
	pin  pinning
	root string // temporary directory holding every peer's directory

	buildOnce sync.Once
	sluiceBin string
	buildErr  error
}

// sluiceBinary returns the sluice binary, building --sluice-pkg on first use.
func (l *launcher) sluiceBinary(ctx context.Context) (string, error) {
	l.buildOnce.Do(func() {
		if l.cfg.SluiceBin != "" {
			l.sluiceBin = l.cfg.SluiceBin
			return
		}
		modDir, err := moduleRoot(ctx)
		if err != nil {
			l.buildErr = err
			return
		}
		bin := filepath.Join(l.root, "sluice")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, l.cfg.SluicePkg)
		cmd.Dir = modDir
		out, err := cmd.CombinedOutput()
		if err != nil {
			l.buildErr = fmt.Errorf("go build %s: %w: %s", l.cfg.SluicePkg, err, lastLines(string(out), 6))
			return
		}
		l.sluiceBin = bin
	})
	return l.sluiceBin, l.buildErr
}

// moduleRoot returns the directory of the main module's go.mod.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside a Go module: run from the sluice repository or pass --sluice-bin")
	}
	return filepath.Dir(gomod), nil
}

// lastLines returns at most n trailing lines of s, joined by " | ".
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// freePort asks the kernel for a free TCP port on 127.0.0.1. Another process
// may take it before the peer binds it; start retries in that case.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// start launches a fresh instance of def, waits until it answers PING,
// prepares it (loads the Lua script) and checks that one request gets a
// well-formed reply. An error means the peer is unavailable.
func (l *launcher) start(ctx context.Context, def peerDef) (*peer, error) {
	var bin string
	switch def.server {
	case serverSluice:
		b, err := l.sluiceBinary(ctx)
		if err != nil {
			return nil, err
		}
		bin = b
	case serverRedis:
		b, err := exec.LookPath(l.cfg.RedisServer)
		if err != nil {
			return nil, fmt.Errorf("redis-server: %w", err)
		}
		bin = b
		if def.name == "redis-cell" && l.cfg.RedisCellModule == "" {
			return nil, errors.New("redis-cell needs --redis-cell-module PATH")
		}
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		p, err := l.startOnce(ctx, def, bin)
		if err == nil {
			return p, nil
		}
		lastErr = err
		// Only a lost race for the port is worth another try.
		if !strings.Contains(strings.ToLower(err.Error()), "in use") {
			break
		}
	}
	return nil, lastErr
}

func (l *launcher) startOnce(ctx context.Context, def peerDef, bin string) (*peer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(l.root, def.name+"-")
	if err != nil {
		return nil, err
	}
	// Both servers take --bind and --port (redis-server accepts any
	// configuration directive as a --flag).
	argv := append([]string{bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port)}, def.args(l.cfg, dir)...)
	argv = l.pin.wrap(argv)
	p := &peer{
		def:    def,
		addr:   net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		dir:    dir,
		out:    &tailBuffer{max: 8 << 10},
		exited: make(chan struct{}),
	}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	// Own process group, and killed if the load generator dies first.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	p.pid = p.cmd.Process.Pid
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	if err := p.waitReady(ctx, l.cfg.StartTimeout); err != nil {
		p.stop()
		return nil, err
	}
	if err := p.prepare(ctx, l.cfg.Limit); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// waitReady polls the peer with PING until it answers +PONG.
func (p *peer) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited during start-up (%s): %s", p.def.name, p.cmd.ProcessState, lastLines(p.out.String(), 6))
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		dctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		c, err := dial(dctx, p.addr)
		cancel()
		if err == nil {
			v, err := c.Do(2*time.Second, "PING")
			c.Close()
			if err == nil && v.Kind == '+' && v.Str == "PONG" {
				return nil
			}
			if err == nil {
				err = fmt.Errorf("PING answered %s", v)
			}
			lastErr = err
		} else {
			lastErr = err
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer PING within %s (last error: %v): %s", p.def.name, timeout, lastErr, lastLines(p.out.String(), 6))
}

// prepare loads the Lua script on redis-lua and checks that the peer answers
// one real request with a reply of the expected shape.
func (p *peer) prepare(ctx context.Context, l Limit) error {
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	c, err := dial(dctx, p.addr)
	cancel()
	if err != nil {
		return err
	}
	defer c.Close()
	if p.def.command == "EVALSHA" {
		v, err := c.Do(5*time.Second, "SCRIPT", "LOAD", gcraLua)
		if err != nil {
			return fmt.Errorf("SCRIPT LOAD: %w", err)
		}
		if v.Kind != '$' || len(v.Str) != 40 {
			return fmt.Errorf("SCRIPT LOAD answered %s", v)
		}
		p.sha = v.Str
	}
	args := p.def.requestArgs(l, p.sha)
	for i, a := range args {
		if a == keyPlaceholder {
			args[i] = "sluice-bench:probe"
		}
	}
	v, err := c.Do(5*time.Second, args...)
	if err != nil {
		return fmt.Errorf("probe %s: %w", args[0], err)
	}
	if err := v.Err(); err != nil {
		return fmt.Errorf("probe %s: %w", strings.Join(args, " "), err)
	}
	switch p.def.replyKind() {
	case replyThrottle:
		if n, ok := v.Ints(); !ok || len(n) != 5 || n[1] != l.MaxBurst+1 {
			return fmt.Errorf("probe %s: want [limited %d remaining retry reset], got %s", args[0], l.MaxBurst+1, v)
		}
	case replyOK:
		if v.Kind != '+' || v.Str != "OK" {
			return fmt.Errorf("probe %s: want OK, got %s", args[0], v)
		}
	}
	_, err = c.Do(5*time.Second, "DEL", "sluice-bench:probe")
	return err
}

// stop terminates the peer: SIGTERM, then SIGKILL to its process group after
// five seconds.
func (p *peer) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		<-p.exited
	}
}

// crashReport describes the peer's end when it exited by itself (for
// example it crashed under load), or returns "" while it is still running.
// Either way it stops the peer.
func (p *peer) crashReport() string {
	select {
	case <-p.exited:
		return fmt.Sprintf(" (%s %s: %s)", p.def.name, p.cmd.ProcessState, lastLines(p.out.String(), 6))
	case <-time.After(200 * time.Millisecond):
		p.stop()
		return ""
	}
}

// cpuTimes is a process's CPU time so far, split into user and kernel mode.
type cpuTimes struct{ user, system time.Duration }

// total is user plus kernel time.
func (c cpuTimes) total() time.Duration { return c.user + c.system }

// sub is the CPU time spent between an earlier sample and c.
func (c cpuTimes) sub(earlier cpuTimes) cpuTimes {
	return cpuTimes{user: c.user - earlier.user, system: c.system - earlier.system}
}

// procCPUTime reads utime and stime of a process from /proc/PID/stat
// (counted in ticks of 1/100 s, Linux's USER_HZ).
func procCPUTime(pid int) (cpuTimes, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return cpuTimes{}, err
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is field 3, utime 14, stime 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return cpuTimes{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return cpuTimes{}, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return cpuTimes{}, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	const tick = 10 * time.Millisecond
	return cpuTimes{user: time.Duration(ut) * tick, system: time.Duration(st) * tick}, nil
}

// rssBytes returns the peer's resident set size from /proc/PID/status.
func (p *peer) rssBytes() (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("VmRSS: unexpected %q", line)
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS in /proc/PID/status")
}
