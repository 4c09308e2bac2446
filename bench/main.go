// Command bench benchmarks Sluice's THROTTLE side by side with Redis-based
// rate limiters: redis-server running a GCRA Lua script of the same
// semantics, redis-cell's CL.THROTTLE, and plain SET as the floor.
//
// It starts every peer itself (a fresh child process per workload, on
// 127.0.0.1, pinned with taskset to CPUs apart from the load generator's),
// drives it with a closed-loop load written here (one goroutine and one
// hand-rolled RESP connection per client, pre-encoded requests, replies
// parsed without allocation, per-connection latency histograms merged at
// the end) and prints throughput, latency percentiles, allowed/limited
// counts and the ratio of Sluice's throughput to each peer's. --memory
// measures bytes per live key instead.
//
//	go run ./bench --compare redis
//	go run ./bench --help
//
// See bench/README.md for the peers, the CPU pinning and how to read the
// results.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole program; it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseConfig(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

	pin := planPinning(&cfg)
	if err := pin.reexec(); err != nil {
		log.Warn("running unpinned", slog.Any("err", err))
		pin = pinning{Note: "not pinned: " + err.Error()}
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(stderr, "bench: --cpuprofile: %v\n", err)
			return 1
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}

	root, err := os.MkdirTemp(cfg.TempDir, "sluice-bench-")
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	defer os.RemoveAll(root)
	warnTmpfs(log, &cfg, root)

	b := &bench{
		cfg:      &cfg,
		log:      log,
		launcher: &launcher{cfg: &cfg, pin: pin, root: root},
		progress: stderr,
		terminal: isTerminal(stderr),
		report: Report{
			Mode:    "throughput",
			Started: time.Now().UTC(),
			Host: Host{OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: onlineCPUs(),
				GoVersion: runtime.Version(), RedisVersion: redisVersion(ctx, &cfg)},
			Pinning:  pin,
			Limit:    cfg.Limit,
			Duration: cfg.Duration.String(),
			Warmup:   cfg.Warmup.String(),
			Requests: cfg.Requests,
			Baseline: cfg.Baseline,
		},
		unavailable: map[string]bool{},
	}
	if !cfg.Memory {
		if cfg.Perf == "off" {
			b.report.PerfNote = "--perf off: no system call counts"
		} else {
			b.perfEvents, b.report.PerfNote = probePerf(ctx)
		}
	}
	if cfg.Memory {
		b.report.Mode, b.report.Limit = "memory", memoryLimit()
		err = b.runMemory(ctx)
	} else {
		err = b.runThroughput(ctx)
	}
	if err != nil {
		b.report.Error = err.Error()
	}
	b.report.fillRatios()
	if cfg.JSON {
		err = b.report.writeJSON(stdout)
	} else {
		err = b.report.writeText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	if b.report.Error != "" {
		fmt.Fprintf(stderr, "bench: aborted: %s\n", b.report.Error)
		return 1
	}
	if len(b.report.Results) == 0 && len(b.report.Memory) == 0 {
		fmt.Fprintln(stderr, "bench: no peer could be run")
		return 1
	}
	return 0
}

// bench holds the state of one invocation.
type bench struct {
	cfg         *Config
	log         *slog.Logger
	launcher    *launcher
	progress    io.Writer
	terminal    bool
	report      Report
	unavailable map[string]bool
	perfEvents  []perfEvent // counted on every server; nil: perf unavailable or off
}

// startPeer starts a fresh instance of the named peer, or records it as
// unavailable (once) and returns nil.
func (b *bench) startPeer(ctx context.Context, name string) (*peer, error) {
	if b.unavailable[name] {
		return nil, nil
	}
	def, _ := findPeer(name)
	p, err := b.launcher.start(ctx, def)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		b.unavailable[name] = true
		b.report.Unavailable = append(b.report.Unavailable, Unavailable{Peer: name, Reason: err.Error()})
		b.log.Warn("peer unavailable", slog.String("peer", name), slog.Any("err", err))
		return nil, nil
	}
	return p, nil
}

// runThroughput runs every workload against every peer, workload by workload
// (and round by round with --repeat) so that slow drift of the machine
// affects all peers alike. Each run gets a freshly started server: no keys or
// expiry work left over from the previous run, and nothing else running on
// the server CPUs.
func (b *bench) runThroughput(ctx context.Context) error {
	cfg := b.cfg
	runs := map[runKey][]Result{}
	defer func() { b.report.Results = medians(cfg, runs) }()
	for round := 0; round < cfg.Repeat; round++ {
		for _, wl := range cfg.Workloads {
			for _, name := range cfg.Peers {
				p, err := b.startPeer(ctx, name)
				if err != nil {
					return err
				}
				if p == nil {
					continue
				}
				res, err := b.runOne(ctx, wl, p)
				if err != nil {
					return fmt.Errorf("%s on %s: %w%s", wl.Name, name, err, p.crashReport())
				}
				p.stop()
				b.record(runs, wl, name, res)
				if cfg.Attack <= 0 {
					continue
				}
				if p, err = b.startPeer(ctx, name); err != nil || p == nil {
					return err
				}
				att := startAttack(ctx, p.addr, cfg.Attack)
				res, err = b.runOne(ctx, wl, p)
				att.stop()
				if err != nil {
					return fmt.Errorf("%s on %s under attack: %w%s", wl.Name, name, err, p.crashReport())
				}
				p.stop()
				res.Peer = name + "+attack"
				b.record(runs, wl, res.Peer, res)
			}
		}
	}
	return nil
}

// record keeps one run's result.
func (b *bench) record(runs map[runKey][]Result, wl Workload, peer string, res Result) {
	k := runKey{wl.Name, peer}
	runs[k] = append(runs[k], res)
	if res.BadReplies > 0 {
		b.log.Warn("bad replies", slog.String("workload", wl.Name), slog.String("peer", peer),
			slog.Uint64("count", res.BadReplies))
	}
}

// runKey identifies the runs of one workload on one peer.
type runKey struct{ workload, peer string }

// medians returns, for every workload and peer in the configured order, the
// median of its runs by ops/s (the lower middle one for an even count), with
// every run's ops/s attached when there were several.
func medians(cfg *Config, runs map[runKey][]Result) []Result {
	var out []Result
	peers := cfg.Peers
	if cfg.Attack > 0 {
		peers = nil
		for _, name := range cfg.Peers {
			peers = append(peers, name, name+"+attack")
		}
	}
	for _, wl := range cfg.Workloads {
		for _, name := range peers {
			rs := runs[runKey{wl.Name, name}]
			if len(rs) == 0 {
				continue
			}
			sorted := slices.Clone(rs)
			slices.SortFunc(sorted, func(a, b Result) int { return cmp.Compare(a.OpsPerSec, b.OpsPerSec) })
			m := sorted[(len(sorted)-1)/2]
			if len(rs) > 1 {
				for _, r := range rs {
					m.RunsOpsPerSec = append(m.RunsOpsPerSec, r.OpsPerSec)
				}
			}
			out = append(out, m)
		}
	}
	return out
}

// runOne drives one running peer with one workload.
func (b *bench) runOne(ctx context.Context, wl Workload, p *peer) (Result, error) {
	cfg := b.cfg
	width := keyWidth(wl.Keys)
	req, err := newRequest("bench:", width, p.def.requestArgs(cfg.Limit, p.sha)...)
	if err != nil {
		return Result{}, err
	}
	spec := loadSpec{
		Workload: wl, Addr: p.addr, Request: req, Reply: p.def.replyKind(), Limit: cfg.Limit.MaxBurst + 1,
		Duration: cfg.Duration, Warmup: cfg.Warmup, Requests: cfg.Requests,
		ZipfS: cfg.ZipfS, ZipfV: cfg.ZipfV, Seed: cfg.Seed, ServerPID: p.pid,
		PerfEvents: b.perfEvents, PerfDir: b.launcher.root,
		Progress: cfg.Progress, ProgressOut: b.progress, Terminal: b.terminal,
		Label: fmt.Sprintf("%-14s %-16s", wl.Name, p.def.name),
	}
	r, err := runLoad(ctx, spec)
	if err != nil {
		return Result{}, err
	}
	return newResult(wl, p.def.name, p.def.replyKind() == replyThrottle, r), nil
}

// runMemory measures bytes per live key on a fresh instance of every peer.
func (b *bench) runMemory(ctx context.Context) error {
	for _, name := range b.cfg.Peers {
		p, err := b.startPeer(ctx, name)
		if err != nil {
			return err
		}
		if p == nil {
			continue
		}
		fmt.Fprintf(b.progress, "memory: loading %d keys into %s\n", b.cfg.MemoryKeys, name)
		m, err := measureMemory(ctx, p, b.cfg.MemoryKeys)
		p.stop()
		if err != nil {
			return fmt.Errorf("memory on %s: %w", name, err)
		}
		b.report.Memory = append(b.report.Memory, m)
	}
	return nil
}

// redisVersion returns redis-server's version when a redis peer is selected.
func redisVersion(ctx context.Context, cfg *Config) string {
	for _, name := range cfg.Peers {
		if d, _ := findPeer(name); d.server == serverRedis {
			out, err := exec.CommandContext(ctx, cfg.RedisServer, "--version").Output()
			if err != nil {
				return ""
			}
			for _, f := range strings.Fields(string(out)) {
				if v, ok := strings.CutPrefix(f, "v="); ok {
					return v
				}
			}
			return strings.TrimSpace(string(out))
		}
	}
	return ""
}

// onlineCPUs returns the number of CPUs the machine has online, which after
// pinning is more than runtime.NumCPU sees.
func onlineCPUs() int {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err == nil {
		if cpus, err := parseCPUList(strings.TrimSpace(string(b))); err == nil && len(cpus) > 0 {
			return len(cpus)
		}
	}
	return runtime.NumCPU()
}

// isTerminal reports whether w is a character device, so the progress line
// can be rewritten in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// warnTmpfs warns when persistent peers would fsync on tmpfs, where fsync
// costs nothing and the comparison means little.
func warnTmpfs(log *slog.Logger, cfg *Config, dir string) {
	const tmpfsMagic = 0x01021994
	persistent := false
	for _, name := range cfg.Peers {
		if d, _ := findPeer(name); d.persistent {
			persistent = true
		}
	}
	var st syscall.Statfs_t
	if persistent && syscall.Statfs(dir, &st) == nil && st.Type == tmpfsMagic {
		log.Warn("data directories are on tmpfs: fsync is free there; use --tmp-dir on a real disk", slog.String("dir", dir))
	}
}
