package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"
)

// Report is everything one invocation measured; --json prints it as is.
type Report struct {
	Mode     string    `json:"mode"` // "throughput" or "memory"
	Started  time.Time `json:"started"`
	Host     Host      `json:"host"`
	Pinning  pinning   `json:"pinning"`
	Limit    Limit     `json:"limit"`
	Duration string    `json:"duration"`
	Warmup   string    `json:"warmup"`
	Requests int64     `json:"requests,omitempty"`
	Baseline string    `json:"baseline"`
	// PerfNote says why system calls were not counted ("" when they were).
	PerfNote    string         `json:"perf_note,omitempty"`
	Results     []Result       `json:"results,omitempty"`
	Memory      []MemoryResult `json:"memory,omitempty"`
	Unavailable []Unavailable  `json:"unavailable,omitempty"`
	Error       string         `json:"error,omitempty"`
}

// Host describes the machine and the servers' versions.
type Host struct {
	OS           string `json:"os"`
	Arch         string `json:"arch"`
	CPUs         int    `json:"cpus"`
	GoVersion    string `json:"go_version"`
	RedisVersion string `json:"redis_version,omitempty"`
}

// Result is one workload against one peer.
type Result struct {
	Workload     string  `json:"workload"`
	Distribution string  `json:"distribution"`
	Keys         uint64  `json:"keys"`
	Peer         string  `json:"peer"`
	Conns        int     `json:"conns"`
	Pipeline     int     `json:"pipeline"`
	Ops          uint64  `json:"ops"`
	Seconds      float64 `json:"seconds"`
	OpsPerSec    float64 `json:"ops_per_sec"`
	P50Micros    float64 `json:"p50_us"`
	P99Micros    float64 `json:"p99_us"`
	P999Micros   float64 `json:"p999_us"`
	MaxMicros    float64 `json:"max_us"`
	MeanMicros   float64 `json:"mean_us"`
	Allowed      uint64  `json:"allowed"`
	Limited      uint64  `json:"limited"`
	BadReplies   uint64  `json:"bad_replies"`
	ServerCPU    float64 `json:"server_cpu_pct"` // % of one CPU
	ClientCPU    float64 `json:"client_cpu_pct"` // % of one CPU
	// ServerCPUPerReq is the server's CPU time (utime+stime) per measured
	// request, in microseconds.
	ServerCPUPerReq float64 `json:"server_cpu_us_per_req"`
	// ServerUserPerReq is the part of ServerCPUPerReq spent in user mode
	// (utime): the server's own code, without the system calls' kernel work.
	ServerUserPerReq float64 `json:"server_user_us_per_req"`
	// Kernel is the server's system calls and context switches per
	// request (nil without perf).
	Kernel *KernelCounts `json:"kernel,omitempty"`
	// BaselineRatio is the baseline peer's ops/s divided by this peer's,
	// in the same workload (0 when the baseline did not run).
	BaselineRatio float64 `json:"baseline_ratio,omitempty"`
	// RunsOpsPerSec is every run's ops/s, in run order, with --repeat > 1;
	// the other fields are the median run's.
	RunsOpsPerSec []float64 `json:"runs_ops_per_sec,omitempty"`
	throttle      bool
}

// MemoryResult is the memory one peer needs for Keys live keys. A value of -1
// means the server does not report it.
type MemoryResult struct {
	Peer           string  `json:"peer"`
	Keys           uint64  `json:"keys"`
	DBSize         int64   `json:"dbsize"`
	RSSBefore      int64   `json:"rss_before"`
	RSSAfter       int64   `json:"rss_after"`
	RSSPerKey      float64 `json:"rss_bytes_per_key"`
	UsedBefore     int64   `json:"used_memory_before"`
	UsedAfter      int64   `json:"used_memory_after"`
	UsedPerKey     float64 `json:"used_memory_bytes_per_key"`
	LoadSeconds    float64 `json:"load_seconds"`
	LimitedReplies uint64  `json:"limited_replies"`
}

// Unavailable is a peer that could not be started or did not answer.
type Unavailable struct {
	Peer   string `json:"peer"`
	Reason string `json:"reason"`
}

// newResult turns a run's measurements into a Result.
func newResult(wl Workload, peerName string, throttle bool, r loadResult) Result {
	us := func(ns int64) float64 { return float64(ns) / 1e3 }
	res := Result{
		Workload: wl.Name, Distribution: wl.Dist.String(), Keys: wl.Keys, Peer: peerName,
		Conns: wl.Conns, Pipeline: wl.Pipeline, Ops: r.Ops, Seconds: r.Elapsed.Seconds(),
		P50Micros: us(r.Hist.Quantile(0.50)), P99Micros: us(r.Hist.Quantile(0.99)),
		P999Micros: us(r.Hist.Quantile(0.999)), MaxMicros: us(r.Hist.Max()), MeanMicros: r.Hist.Mean() / 1e3,
		Allowed: r.Allowed, Limited: r.Limited, BadReplies: r.Bad, throttle: throttle,
		Kernel: r.Kernel,
	}
	if r.Ops > 0 {
		res.ServerCPUPerReq = float64(r.ServerCPU.total().Nanoseconds()) / 1e3 / float64(r.Ops)
		res.ServerUserPerReq = float64(r.ServerCPU.user.Nanoseconds()) / 1e3 / float64(r.Ops)
	}
	if r.Elapsed > 0 {
		res.OpsPerSec = float64(r.Ops) / r.Elapsed.Seconds()
		res.ServerCPU = 100 * r.ServerCPU.total().Seconds() / r.Elapsed.Seconds()
		res.ClientCPU = 100 * r.ClientCPU.Seconds() / r.Elapsed.Seconds()
	}
	return res
}

// fillRatios sets every result's BaselineRatio from the baseline peer's result
// in the same workload.
func (r *Report) fillRatios() {
	base := map[string]float64{}
	for _, res := range r.Results {
		if res.Peer == r.Baseline {
			base[res.Workload] = res.OpsPerSec
		}
	}
	for i := range r.Results {
		if b := base[r.Results[i].Workload]; b > 0 && r.Results[i].OpsPerSec > 0 {
			r.Results[i].BaselineRatio = b / r.Results[i].OpsPerSec
		}
	}
}

// writeJSON prints the report as indented JSON.
func (r *Report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// writeText prints the report as tables.
func (r *Report) writeText(w io.Writer) error {
	if r.Mode == "memory" {
		fmt.Fprintf(w, "# memory: one THROTTLE %s per key, pipelined", r.Limit)
	} else {
		fmt.Fprintf(w, "# limit %s, %s measured after %s warm-up", r.Limit, r.Duration, r.Warmup)
		if r.Requests > 0 {
			fmt.Fprintf(w, " (or %d requests)", r.Requests)
		}
	}
	fmt.Fprintf(w, "; %s\n", r.Pinning.Note)
	fmt.Fprintf(w, "# %s/%s, %d CPUs, %s", r.Host.OS, r.Host.Arch, r.Host.CPUs, r.Host.GoVersion)
	if r.Host.RedisVersion != "" {
		fmt.Fprintf(w, ", redis %s", r.Host.RedisVersion)
	}
	fmt.Fprintln(w)
	if len(r.Results) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		repeated := len(r.Results[0].RunsOpsPerSec) > 0
		rangeHead := ""
		if repeated {
			rangeHead = "runs ops/s\t"
		}
		fmt.Fprintf(tw, "workload\tpeer\tconns\tpipe\tops/s\t%sp50 ms\tp99 ms\tp99.9 ms\tallowed\tlimited\t%s/peer\tsrv cpu\tcli cpu\t\n", rangeHead, r.Baseline)
		for _, x := range r.Results {
			allowed, limited := "-", "-"
			if x.throttle {
				allowed, limited = strconv.FormatUint(x.Allowed, 10), strconv.FormatUint(x.Limited, 10)
			}
			ratio := "n/a"
			if x.BaselineRatio > 0 {
				ratio = fmt.Sprintf("%.2fx", x.BaselineRatio)
			}
			spread := ""
			if repeated {
				spread = fmt.Sprintf("%.0f-%.0f\t", slices.Min(x.RunsOpsPerSec), slices.Max(x.RunsOpsPerSec))
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.0f\t%s%.3f\t%.3f\t%.3f\t%s\t%s\t%s\t%.0f%%\t%.0f%%\t\n",
				x.Workload, x.Peer, x.Conns, x.Pipeline, x.OpsPerSec, spread,
				x.P50Micros/1e3, x.P99Micros/1e3, x.P999Micros/1e3,
				allowed, limited, ratio, x.ServerCPU, x.ClientCPU)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if err := r.writeKernel(w); err != nil {
			return err
		}
		for _, x := range r.Results {
			if x.BadReplies > 0 {
				fmt.Fprintf(w, "! %s on %s: %d replies of the wrong shape or values\n", x.Workload, x.Peer, x.BadReplies)
			}
		}
	}
	if len(r.Memory) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "peer\tkeys\tdbsize\tused_memory Δ\tB/key\tRSS Δ\tB/key\tload s\t\n")
		for _, m := range r.Memory {
			used, usedPer := "n/a", "n/a"
			if m.UsedBefore >= 0 && m.UsedAfter >= 0 {
				used, usedPer = mib(m.UsedAfter-m.UsedBefore), fmt.Sprintf("%.1f", m.UsedPerKey)
			}
			dbsize := "n/a"
			if m.DBSize >= 0 {
				dbsize = strconv.FormatInt(m.DBSize, 10)
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%.1f\t%.2f\t\n", m.Peer, m.Keys, dbsize, used, usedPer,
				mib(m.RSSAfter-m.RSSBefore), m.RSSPerKey, m.LoadSeconds)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, u := range r.Unavailable {
		fmt.Fprintf(w, "! %s unavailable: %s\n", u.Peer, u.Reason)
	}
	if r.Error != "" {
		fmt.Fprintf(w, "! aborted: %s\n", r.Error)
	}
	return nil
}

// writeKernel prints the server's cost per request: CPU time always,
// system calls and context switches when perf counted them.
func (r *Report) writeKernel(w io.Writer) error {
	fmt.Fprintln(w)
	if r.PerfNote != "" {
		fmt.Fprintf(w, "# server cost per request; %s\n", r.PerfNote)
	} else {
		fmt.Fprintln(w, "# server cost per request: CPU (all, and user mode only) from /proc/PID/stat, system calls and context switches from perf stat")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "workload\tpeer\tpipe\tcpu µs\tuser µs\tsyscalls\tread\tEAGAIN\twrite\tepoll\tctx sw\t\n")
	for _, x := range r.Results {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.2f\t%.2f\t", x.Workload, x.Peer, x.Pipeline, x.ServerCPUPerReq, x.ServerUserPerReq)
		if k := x.Kernel; k != nil {
			fmt.Fprintf(tw, "%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.4f\t\n", k.Syscalls, k.Reads, k.ReadsEAGAIN, k.Writes, k.EpollWaits, k.ContextSwitches)
		} else {
			fmt.Fprintf(tw, "-\t-\t-\t-\t-\t-\t\n")
		}
	}
	return tw.Flush()
}

// mib formats a byte count in MiB.
func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
