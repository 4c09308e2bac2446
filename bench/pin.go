package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// pinnedEnv marks a load generator that has already re-executed itself under
// taskset, so it does not do so again. Its value is "CLIENT/SERVER", the plan
// made before the exec (after it, only the client CPUs are visible).
const pinnedEnv = "SLUICE_BENCH_PINNED"

// pinning is where the load generator and the servers run. Empty CPU lists
// mean "not pinned".
type pinning struct {
	Client  string `json:"client_cpus,omitempty"`
	Server  string `json:"server_cpus,omitempty"`
	Note    string `json:"note"`
	taskset string
}

// planPinning decides the CPU sets. With --pin split and at least two allowed
// CPUs it gives the load generator the first half and every server the second
// half (on a 2-CPU machine: client on one CPU, server on the other), unless
// --client-cpus/--server-cpus say otherwise.
func planPinning(cfg *Config) pinning {
	if cfg.Pin == "none" {
		return pinning{Note: "not pinned (--pin none): client and servers share every CPU"}
	}
	ts, err := exec.LookPath("taskset")
	if err != nil {
		return pinning{Note: "not pinned: taskset not found"}
	}
	client, server := cfg.ClientCPUs, cfg.ServerCPUs
	if c, s, ok := strings.Cut(os.Getenv(pinnedEnv), "/"); ok {
		client, server = c, s
	}
	if client == "" || server == "" {
		cpus, err := allowedCPUs()
		if err != nil || len(cpus) < 2 {
			return pinning{Note: fmt.Sprintf("not pinned: need 2 CPUs to split, have %d", len(cpus))}
		}
		half := len(cpus) / 2
		if client == "" {
			client = cpuList(cpus[:half])
		}
		if server == "" {
			server = cpuList(cpus[half:])
		}
	}
	return pinning{
		Client:  client,
		Server:  server,
		Note:    fmt.Sprintf("load generator on CPU %s, servers on CPU %s (taskset)", client, server),
		taskset: ts,
	}
}

// reexec replaces the process with itself running under taskset on the client
// CPUs, once. Go fixes GOMAXPROCS from the CPU affinity at start-up, so
// pinning must happen before the runtime starts, hence exec rather than
// sched_setaffinity. It returns only if it did not exec.
func (p pinning) reexec() error {
	if p.Client == "" || os.Getenv(pinnedEnv) != "" {
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("pin: %w", err)
	}
	argv := append([]string{"taskset", "-c", p.Client, exe}, os.Args[1:]...)
	env := append(os.Environ(), pinnedEnv+"="+p.Client+"/"+p.Server)
	return fmt.Errorf("pin: exec taskset: %w", syscall.Exec(p.taskset, argv, env))
}

// wrap prefixes a server command line with taskset when servers are pinned.
func (p pinning) wrap(argv []string) []string {
	if p.Server == "" {
		return argv
	}
	return append([]string{p.taskset, "-c", p.Server}, argv...)
}

// allowedCPUs returns the CPUs this process may run on, from
// /proc/self/status's Cpus_allowed_list (e.g. "0-3,6").
func allowedCPUs() ([]int, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			return parseCPUList(strings.TrimSpace(v))
		}
	}
	return nil, fmt.Errorf("no Cpus_allowed_list in /proc/self/status")
}

// parseCPUList parses a Linux CPU list such as "0-2,5".
func parseCPUList(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("cpu list %q: %w", s, err)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return nil, fmt.Errorf("cpu list %q: %w", s, err)
			}
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	return out, nil
}

// cpuList formats CPUs as a comma-separated taskset list.
func cpuList(cpus []int) string {
	s := make([]string, len(cpus))
	for i, c := range cpus {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ",")
}
