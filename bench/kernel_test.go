package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestParsePerfCSV: counts are read by event name, uncounted events are 0,
// comments and blank lines are skipped.
func TestParsePerfCSV(t *testing.T) {
	out := "# started on Fri Nov 27 20:50:36 2026\n\n" +
		"2544,,raw_syscalls:sys_enter,61502105,100.00,,\n" +
		"<not counted>,,syscalls:sys_exit_read,0,100.00,,\n" +
		"52,,context-switches,61537982,100.00,,\n" +
		"Events disabled\n"
	assert.Equal(t, map[string]uint64{
		"raw_syscalls:sys_enter": 2544, "syscalls:sys_exit_read": 0, "context-switches": 52,
	}, parsePerfCSV(out))
}

// TestPerfArgs: a filter follows its event.
func TestPerfArgs(t *testing.T) {
	assert.Equal(t, []string{"-e", "raw_syscalls:sys_enter", "-e", "syscalls:sys_exit_read", "--filter", "ret == -11"},
		perfArgs([]perfEvent{{name: "raw_syscalls:sys_enter"}, {name: "syscalls:sys_exit_read", filter: "ret == -11"}}))
}

// TestWriteKernel: the cost table shows CPU for every peer, counts where
// perf gave them, "-" where not, and the note that says why.
func TestWriteKernel(t *testing.T) {
	r := Report{PerfNote: "perf is not installed: no system call counts", Results: []Result{
		{Workload: "uniform", Peer: "sluice", Pipeline: 1, ServerCPUPerReq: 9.5, ServerUserPerReq: 2.25,
			Kernel: &KernelCounts{Syscalls: 2.125, Reads: 1, Writes: 1, EpollWaits: 0.125, ContextSwitches: 0.03}},
		{Workload: "uniform", Peer: "redis-set", Pipeline: 1, ServerCPUPerReq: 10.25, ServerUserPerReq: 3},
	}}
	var b strings.Builder
	if err := r.writeKernel(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	assert.Contains(t, out, "# server cost per request; perf is not installed")
	assert.Regexp(t, `sluice\s+1\s+9\.50\s+2\.25\s+2\.125\s+1\.000\s+0\.000\s+1\.000\s+0\.125\s+0\.0300`, out)
	assert.Regexp(t, `redis-set\s+1\s+10\.25\s+3\.00\s+-\s+-\s+-\s+-\s+-\s+-`, out)
}
