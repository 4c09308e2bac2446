package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Kernel work per request is counted with perf stat's system call
// tracepoints on the server process, enabled only for the measured window
// (perf starts disabled before the warm-up and is switched on and off
// through its --control descriptors, so its start-up is not in the count).

// perfEvent is one counter: a perf event, optionally with a filter.
type perfEvent struct {
	name   string // as perf prints it in -x output
	filter string // tracepoint filter, "" = none
}

// perfEvents are the counters, in the order KernelCounts lists them. An
// event this kernel does not have (epoll_wait on arm64) is dropped by
// probePerf.
var perfEvents = []perfEvent{
	{name: "raw_syscalls:sys_enter"},
	{name: "syscalls:sys_enter_read"},
	{name: "syscalls:sys_exit_read", filter: "ret == -11"}, // EAGAIN
	{name: "syscalls:sys_enter_write"},
	{name: "syscalls:sys_enter_writev"}, // Redis writes a multi-part reply with writev
	{name: "syscalls:sys_enter_epoll_wait"},
	{name: "syscalls:sys_enter_epoll_pwait"},
	{name: "context-switches"},
}

// KernelCounts are a server's system calls and context switches per
// request over a measured run, from perf stat.
type KernelCounts struct {
	Syscalls        float64 `json:"syscalls_per_req"`
	Reads           float64 `json:"reads_per_req"`
	ReadsEAGAIN     float64 `json:"eagain_reads_per_req"` // reads that found nothing
	Writes          float64 `json:"writes_per_req"`       // write + writev
	EpollWaits      float64 `json:"epoll_waits_per_req"`  // epoll_wait + epoll_pwait
	ContextSwitches float64 `json:"context_switches_per_req"`
}

// perfArgs returns perf stat's -e/--filter arguments for events.
func perfArgs(events []perfEvent) []string {
	var args []string
	for _, e := range events {
		args = append(args, "-e", e.name)
		if e.filter != "" {
			args = append(args, "--filter", e.filter)
		}
	}
	return args
}

// probePerf returns the events perf can count here, or why it cannot
// (not installed, tracepoints not permitted).
func probePerf(ctx context.Context) ([]perfEvent, string) {
	bin, err := exec.LookPath("perf")
	if err != nil {
		return nil, "perf is not installed: no system call counts"
	}
	var ok []perfEvent
	var lastErr string
	for _, e := range perfEvents {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		out, err := exec.CommandContext(pctx, bin, append(append([]string{"stat", "-x,"}, perfArgs([]perfEvent{e})...), "--", "true")...).CombinedOutput()
		cancel()
		if err == nil {
			ok = append(ok, e)
		} else {
			lastErr = lastLines(strings.TrimSpace(string(out)), 2)
		}
	}
	if len(ok) == 0 || ok[0].name != "raw_syscalls:sys_enter" {
		return nil, "perf cannot count system call tracepoints here (try as root, or kernel.perf_event_paranoid=-1): " + lastErr
	}
	return ok, ""
}

// perfStat is a perf stat process attached to a server, counting while
// enabled.
type perfStat struct {
	cmd    *exec.Cmd
	ctl    *os.File // commands to perf
	ack    *bufio.Reader
	ackF   *os.File
	out    string // perf's -o file
	events []perfEvent
}

// startPerf attaches perf stat to pid with every counter disabled.
func startPerf(pid int, events []perfEvent, dir string) (*perfStat, error) {
	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	ackR, ackW, err := os.Pipe()
	if err != nil {
		ctlR.Close()
		ctlW.Close()
		return nil, err
	}
	f, err := os.CreateTemp(dir, "perf-*.csv")
	if err != nil {
		return nil, err
	}
	f.Close()
	args := append([]string{"stat", "-x,", "-D", "-1", "--control", "fd:3,4", "-o", f.Name(), "-p", strconv.Itoa(pid)}, perfArgs(events)...)
	cmd := exec.Command("perf", args...)
	cmd.ExtraFiles = []*os.File{ctlR, ackW} // fds 3 and 4
	err = cmd.Start()
	ctlR.Close()
	ackW.Close()
	if err != nil {
		ctlW.Close()
		ackR.Close()
		return nil, err
	}
	return &perfStat{cmd: cmd, ctl: ctlW, ack: bufio.NewReader(ackR), ackF: ackR, out: f.Name(), events: events}, nil
}

// command sends "enable" or "disable" and waits for perf's acknowledgement.
func (p *perfStat) command(c string) error {
	if _, err := p.ctl.WriteString(c + "\n"); err != nil {
		return err
	}
	_ = p.ackF.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := p.ack.ReadString('\n')
	if err != nil {
		return fmt.Errorf("perf %s: %w", c, err)
	}
	if !strings.HasPrefix(strings.Trim(line, "\x00"), "ack") {
		return fmt.Errorf("perf %s: unexpected reply %q", c, line)
	}
	return nil
}

// finish stops perf and returns its counts divided by requests.
func (p *perfStat) finish(requests uint64) (KernelCounts, error) {
	defer os.Remove(p.out)
	defer p.ctl.Close()
	defer p.ackF.Close()
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
		return KernelCounts{}, errors.New("perf did not stop")
	}
	b, err := os.ReadFile(p.out)
	if err != nil {
		return KernelCounts{}, err
	}
	counts := parsePerfCSV(string(b))
	if requests == 0 {
		return KernelCounts{}, errors.New("no requests while perf counted")
	}
	per := func(name string) float64 { return float64(counts[name]) / float64(requests) }
	return KernelCounts{
		Syscalls:        per("raw_syscalls:sys_enter"),
		Reads:           per("syscalls:sys_enter_read"),
		ReadsEAGAIN:     per("syscalls:sys_exit_read"),
		Writes:          per("syscalls:sys_enter_write") + per("syscalls:sys_enter_writev"),
		EpollWaits:      per("syscalls:sys_enter_epoll_wait") + per("syscalls:sys_enter_epoll_pwait"),
		ContextSwitches: per("context-switches"),
	}, nil
}

// parsePerfCSV reads perf stat -x, output: "value,unit,event,..." lines;
// "<not counted>" and "<not supported>" count as 0.
func parsePerfCSV(s string) map[string]uint64 {
	out := map[string]uint64{}
	for _, line := range strings.Split(s, "\n") {
		f := strings.Split(line, ",")
		if len(f) < 3 || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := strconv.ParseUint(strings.TrimSpace(f[0]), 10, 64)
		if err != nil {
			v = 0
		}
		out[f[2]] += v
	}
	return out
}
