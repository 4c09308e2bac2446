package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Limit is the THROTTLE configuration every request of a throughput run uses.
type Limit struct {
	MaxBurst int64 `json:"max_burst"`
	Count    int64 `json:"count"`
	Period   int64 `json:"period"`
	Quantity int64 `json:"quantity"`
}

// args returns the limit as the four THROTTLE arguments after the key.
func (l Limit) args() []string {
	return []string{
		strconv.FormatInt(l.MaxBurst, 10), strconv.FormatInt(l.Count, 10),
		strconv.FormatInt(l.Period, 10), strconv.FormatInt(l.Quantity, 10),
	}
}

func (l Limit) String() string { return strings.Join(l.args(), " ") }

// parseLimit parses "max_burst count period [quantity]", separated by spaces
// or commas.
func parseLimit(s string) (Limit, error) {
	f := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' })
	if len(f) != 3 && len(f) != 4 {
		return Limit{}, fmt.Errorf("limit %q: want \"max_burst count period [quantity]\"", s)
	}
	n := make([]int64, 4)
	n[3] = 1
	for i, p := range f {
		v, err := strconv.ParseInt(p, 10, 64)
		if err != nil {
			return Limit{}, fmt.Errorf("limit %q: %w", s, err)
		}
		n[i] = v
	}
	l := Limit{MaxBurst: n[0], Count: n[1], Period: n[2], Quantity: n[3]}
	if l.MaxBurst < 0 || l.Count < 1 || l.Period < 1 {
		return Limit{}, fmt.Errorf("limit %q: need max_burst >= 0, count >= 1, period >= 1", s)
	}
	return l, nil
}

// Workload is one traffic pattern: a key distribution driven by Conns
// connections, each sending Pipeline requests per round trip.
type Workload struct {
	Name     string `json:"name"` // as written in --workloads
	Dist     dist   `json:"-"`
	Keys     uint64 `json:"keys"`
	Conns    int    `json:"conns"`
	Pipeline int    `json:"pipeline"`
}

// parseWorkloads parses a comma-separated list of DIST[/pN][/cN], where DIST
// is hot, uniform or zipf, pN sets the pipeline depth and cN the number of
// connections (defaulting to conns and pipeline).
func parseWorkloads(s string, conns, pipeline int, uniformKeys, zipfKeys uint64) ([]Workload, error) {
	var out []Workload
	for _, spec := range strings.Split(s, ",") {
		spec = strings.TrimSpace(spec)
		if spec == "" {
			continue
		}
		parts := strings.Split(spec, "/")
		w := Workload{Name: spec, Conns: conns, Pipeline: pipeline}
		switch parts[0] {
		case "hot":
			w.Dist, w.Keys = distHot, 1
		case "uniform":
			w.Dist, w.Keys = distUniform, uniformKeys
		case "zipf":
			w.Dist, w.Keys = distZipf, zipfKeys
		default:
			return nil, fmt.Errorf("workload %q: distribution must be hot, uniform or zipf", spec)
		}
		for _, opt := range parts[1:] {
			if len(opt) < 2 {
				return nil, fmt.Errorf("workload %q: bad option %q", spec, opt)
			}
			n, err := strconv.Atoi(opt[1:])
			if err != nil || n < 1 {
				return nil, fmt.Errorf("workload %q: option %q needs a positive integer", spec, opt)
			}
			switch opt[0] {
			case 'p':
				w.Pipeline = n
			case 'c':
				w.Conns = n
			default:
				return nil, fmt.Errorf("workload %q: unknown option %q (want pN or cN)", spec, opt)
			}
		}
		out = append(out, w)
	}
	return out, nil
}

// Config is the whole configuration of one benchmark invocation, filled from
// the command line by [parseConfig] (flag names and defaults in [newFlagSet])
// and checked by [Config.validate].
type Config struct {
	Peers           []string      // peers to run, in order (--peers expanded by --compare and --redis-cell-module)
	Compare         string        // "" or "redis"
	Baseline        string        // peer the ratio column divides by each peer (default sluice)
	Workloads       []Workload    // default uniform, uniform/p16, hot, zipf
	Conns           int           // default connections per workload (50)
	Pipeline        int           // default pipeline depth (1)
	Requests        int64         // measured requests per run; 0 = unbounded
	Duration        time.Duration // measured time per run (5s); 0 = unbounded
	Warmup          time.Duration // unmeasured time before each run (500ms)
	Limit           Limit         // THROTTLE arguments (15 30 60 1)
	UniformKeys     uint64        // uniform key space (100,000)
	ZipfKeys        uint64        // zipf key space (1,000,000)
	ZipfS           float64       // zipf exponent (1.1)
	ZipfV           float64       // zipf offset (1)
	Seed            uint64        // key picker seed (1)
	Pin             string        // "split" (default) or "none"
	ClientCPUs      string        // taskset list for the generator; "" = first half
	ServerCPUs      string        // taskset list for the servers; "" = second half
	JSON            bool          // JSON instead of tables
	Memory          bool          // memory mode instead of throughput
	Attack          int           // slowloris connections beside a flood for the "+attack" runs (0: none)
	MemoryKeys      uint64        // keys loaded by memory mode (1,000,000)
	Progress        time.Duration // progress line interval (1s); 0 = none
	SluiceBin       string        // prebuilt sluice; "" = build SluicePkg
	SluicePkg       string        // package to build (./cmd/sluice)
	SluiceArgs      []string      // extra arguments for every sluice peer
	RedisServer     string        // redis-server binary (from PATH)
	RedisCellModule string        // libredis_cell.so; "" = no redis-cell peer
	TempDir         string        // parent of the peers' data directories ($TMPDIR)
	StartTimeout    time.Duration // how long a peer may take to answer PING (10s)
	CPUProfile      string        // file for the generator's CPU profile; "" = none
	Repeat          int           // rounds of every workload on every peer (1)
	Perf            string        // "auto" (default): count system calls with perf when it can; "off"
}

const usageHead = `Usage: go run ./bench [flags]

Side-by-side benchmark of Sluice's THROTTLE against Redis-based rate limiters.
Every peer is started as a child process on 127.0.0.1 (a fresh one per
workload), driven by the same closed-loop load, and killed at the end.

Peers (--peers, plus what --compare and --redis-cell-module add):
  sluice            ./cmd/sluice, in memory
  sluice-everysec   ./cmd/sluice --data-dir TMP --fsync everysec
  sluice-always     ./cmd/sluice --data-dir TMP --fsync always
  sluice-no         ./cmd/sluice --data-dir TMP --fsync no
  redis-lua         redis-server + the GCRA Lua script (EVALSHA)    [--compare redis]
  redis-set         redis-server doing SET key value: the floor     [--compare redis]
  redis-cell        redis-server --loadmodule PATH, CL.THROTTLE      [--redis-cell-module PATH]
  redis-set-always  redis-server, AOF appendfsync always, SET        [--compare redis with a persistent sluice peer]

Workloads (--workloads): comma-separated DIST[/pN][/cN]; DIST is hot (one
key), uniform (--uniform-keys keys) or zipf (--zipf-keys keys); pN sets the
pipeline depth, cN the connection count. Example: hot,uniform/p16/c10.

Output: a progress line on stderr, a table (or --json) on stdout.

Flags (one dash or two):
`

// newFlagSet declares every flag, bound to cfg's fields with their defaults.
func newFlagSet(cfg *Config, out io.Writer, peers, workloads, limit, sluiceArgs *string) *flag.FlagSet {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprint(out, usageHead)
		fs.PrintDefaults()
	}
	fs.StringVar(peers, "peers", "sluice", "comma-separated peers to run (see the list above)")
	fs.StringVar(&cfg.Compare, "compare", "", `"redis" adds redis-lua and redis-set (and redis-set-always with a persistent sluice peer)`)
	fs.StringVar(&cfg.Baseline, "baseline", "sluice", "peer whose ops/s the ratio column divides by each peer's")
	fs.StringVar(workloads, "workloads", "uniform,uniform/p16,hot,zipf", "workloads to run, DIST[/pN][/cN],...")
	fs.IntVar(&cfg.Conns, "conns", 50, "connections per workload (like redis-benchmark -c)")
	fs.IntVar(&cfg.Pipeline, "pipeline", 1, "requests per round trip on each connection (like redis-benchmark -P)")
	fs.Int64Var(&cfg.Requests, "requests", 0, "stop each run after this many measured requests (0: no limit; like redis-benchmark -n)")
	fs.DurationVar(&cfg.Duration, "duration", 5*time.Second, "measured length of each run (0: no limit, needs --requests)")
	fs.DurationVar(&cfg.Warmup, "warmup", 500*time.Millisecond, "unmeasured load before each run's measurement starts")
	fs.StringVar(limit, "limit", "15 30 60 1", `THROTTLE arguments after the key: "max_burst count period [quantity]"`)
	fs.Uint64Var(&cfg.UniformKeys, "uniform-keys", 100_000, "key space of the uniform distribution")
	fs.Uint64Var(&cfg.ZipfKeys, "zipf-keys", 1_000_000, "key space of the zipf distribution")
	fs.Float64Var(&cfg.ZipfS, "zipf-s", 1.1, "zipf exponent s (> 1): P(key k) ~ (zipf-v + k)^-s")
	fs.Float64Var(&cfg.ZipfV, "zipf-v", 1, "zipf offset v (>= 1)")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the key pickers (each connection derives its own)")
	fs.StringVar(&cfg.Pin, "pin", "split", `CPU pinning: "split" puts the load generator and the servers on disjoint CPU sets with taskset; "none" lets them share every CPU`)
	fs.StringVar(&cfg.ClientCPUs, "client-cpus", "", "taskset CPU list for the load generator with --pin split (default: first half of the allowed CPUs)")
	fs.StringVar(&cfg.ServerCPUs, "server-cpus", "", "taskset CPU list for every server with --pin split (default: second half of the allowed CPUs)")
	fs.BoolVar(&cfg.JSON, "json", false, "print machine-readable JSON on stdout instead of tables")
	fs.BoolVar(&cfg.Memory, "memory", false, "memory mode: load --memory-keys live keys into each peer and report bytes per key instead of throughput")
	fs.Uint64Var(&cfg.MemoryKeys, "memory-keys", 1_000_000, "distinct live keys loaded by --memory")
	fs.DurationVar(&cfg.Progress, "progress", time.Second, "interval of the progress line on stderr (0: none)")
	fs.StringVar(&cfg.SluiceBin, "sluice-bin", "", "use this sluice binary instead of building --sluice-pkg")
	fs.StringVar(&cfg.SluicePkg, "sluice-pkg", "./cmd/sluice", "package built (go build, from the module root) for the sluice peers")
	fs.StringVar(sluiceArgs, "sluice-args", "", "extra space-separated arguments for every sluice peer")
	fs.StringVar(&cfg.RedisServer, "redis-server", "redis-server", "redis-server binary for the redis peers")
	fs.StringVar(&cfg.RedisCellModule, "redis-cell-module", "", "path of libredis_cell.so; adds the redis-cell peer")
	fs.StringVar(&cfg.TempDir, "tmp-dir", "", "parent of the peers' temporary data directories (default: $TMPDIR or /tmp); put it on the disk you want fsync measured on")
	fs.DurationVar(&cfg.StartTimeout, "start-timeout", 10*time.Second, "how long a peer may take to answer PING")
	fs.IntVar(&cfg.Attack, "attack", 0, "also run every workload on every peer with this many slowloris connections (a byte a second) and one non-reading pipeline flood attached, reported as PEER+attack")
	fs.IntVar(&cfg.Repeat, "repeat", 1, "run every workload on every peer this many times, interleaved, and report the median run (by ops/s) with the range")
	fs.StringVar(&cfg.Perf, "perf", "auto", `"auto" counts every server's system calls and context switches per request with perf stat when perf is installed and permitted (a note says why not otherwise); "off" skips it`)
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write the load generator's CPU profile to this file (to check it is not the bottleneck)")
	return fs
}

// parseConfig parses the command line into a validated Config. It returns
// flag.ErrHelp after printing the usage for -h/--help.
func parseConfig(args []string, out io.Writer) (Config, error) {
	var cfg Config
	var peers, workloads, limit, sluiceArgs string
	fs := newFlagSet(&cfg, out, &peers, &workloads, &limit, &sluiceArgs)
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q (see --help)", fs.Args())
	}
	var errs []error
	var err error
	if cfg.Limit, err = parseLimit(limit); err != nil {
		errs = append(errs, err)
	}
	if cfg.Workloads, err = parseWorkloads(workloads, cfg.Conns, cfg.Pipeline, cfg.UniformKeys, cfg.ZipfKeys); err != nil {
		errs = append(errs, err)
	}
	cfg.SluiceArgs = strings.Fields(sluiceArgs)
	cfg.Peers = resolvePeers(peers, cfg.Compare, cfg.RedisCellModule != "")
	if cfg.TempDir == "" {
		cfg.TempDir = os.TempDir()
	}
	if err := cfg.validate(); err != nil {
		errs = append(errs, err)
	}
	return cfg, errors.Join(errs...)
}

// resolvePeers expands --peers with what --compare and --redis-cell-module
// add, without duplicates, in a stable order.
func resolvePeers(list, compare string, cell bool) []string {
	var out []string
	seen := map[string]bool{}
	add := func(name string) {
		if name != "" && !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	persistent := false
	for _, p := range strings.Split(list, ",") {
		p = strings.TrimSpace(p)
		add(p)
		if d, ok := findPeer(p); ok && d.persistent {
			persistent = true // brings in redis-set-always with --compare redis
		}
	}
	if compare == "redis" {
		add("redis-lua")
		add("redis-set")
		if persistent {
			add("redis-set-always")
		}
	}
	if cell {
		add("redis-cell")
	}
	return out
}

// validate reports every problem with the configuration at once.
func (c *Config) validate() error {
	var errs []error
	if c.Compare != "" && c.Compare != "redis" {
		errs = append(errs, fmt.Errorf("--compare %q: only \"redis\" is supported", c.Compare))
	}
	if len(c.Peers) == 0 {
		errs = append(errs, errors.New("no peers selected"))
	}
	for _, p := range c.Peers {
		if _, ok := findPeer(p); !ok {
			errs = append(errs, fmt.Errorf("unknown peer %q", p))
		}
	}
	if len(c.Workloads) == 0 && !c.Memory {
		errs = append(errs, errors.New("no workloads selected"))
	}
	if c.Conns < 1 || c.Pipeline < 1 || c.Repeat < 1 {
		errs = append(errs, errors.New("--conns, --pipeline and --repeat must be at least 1"))
	}
	if c.Requests < 0 || c.Duration < 0 || c.Warmup < 0 || c.Progress < 0 {
		errs = append(errs, errors.New("--requests, --duration, --warmup and --progress must not be negative"))
	}
	if c.Requests == 0 && c.Duration == 0 {
		errs = append(errs, errors.New("set --duration or --requests (or both) to bound each run"))
	}
	for _, w := range c.Workloads {
		if c.Requests > 0 && c.Requests < int64(w.Conns) {
			errs = append(errs, fmt.Errorf("--requests %d is less than the %d connections of workload %s", c.Requests, w.Conns, w.Name))
			break
		}
	}
	if c.UniformKeys < 1 || c.ZipfKeys < 1 || c.MemoryKeys < 1 {
		errs = append(errs, errors.New("key spaces must hold at least one key"))
	}
	if c.ZipfS <= 1 || c.ZipfV < 1 {
		errs = append(errs, errors.New("--zipf-s must be > 1 and --zipf-v >= 1"))
	}
	if c.Pin != "split" && c.Pin != "none" {
		errs = append(errs, fmt.Errorf("--pin %q: want split or none", c.Pin))
	}
	if c.Perf != "auto" && c.Perf != "off" {
		errs = append(errs, fmt.Errorf("--perf %q: want auto or off", c.Perf))
	}
	if c.StartTimeout <= 0 {
		errs = append(errs, errors.New("--start-timeout must be positive"))
	}
	return errors.Join(errs...)
}
