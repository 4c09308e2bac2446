package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// loadSpec is one run: a workload against one running peer.
type loadSpec struct {
	Workload Workload
	Addr     string
	Request  request   // template; every connection copies it
	Reply    replyKind // what every reply must look like
	Limit    int64     // the limit element THROTTLE replies must carry
	Duration time.Duration
	Warmup   time.Duration
	Requests int64 // measured requests over all connections; 0 = no bound
	ZipfS    float64
	ZipfV    float64
	Seed     uint64

	ServerPID int // sampled for CPU time; 0 = none
	// PerfEvents, if set, are counted on ServerPID with perf stat during
	// the measured window (perf's output file goes to PerfDir).
	PerfEvents []perfEvent
	PerfDir    string

	Progress    time.Duration // 0: no progress line
	ProgressOut io.Writer
	Label       string // progress line prefix
	Terminal    bool   // rewrite the progress line in place
}

// loadResult is what a run measured, after the warm-up.
type loadResult struct {
	Ops       uint64
	Elapsed   time.Duration
	Hist      *Histogram
	Allowed   uint64
	Limited   uint64
	Bad       uint64 // well-formed replies of the wrong shape or values
	ServerCPU cpuTimes
	ClientCPU time.Duration
	Kernel    *KernelCounts // nil without perf
}

// stallTimeout aborts a run whose connections have all stopped getting
// replies.
const stallTimeout = 10 * time.Second

// worker drives one connection. Only its own goroutine touches it during the
// run, except ops, which the monitor reads atomically.
type worker struct {
	c     *client
	req   request
	pick  *keyPicker
	depth int
	quota uint64 // measured requests this connection sends; 0 = no bound
	reply replyKind
	limit int64

	hist    Histogram
	allowed uint64
	limited uint64
	bad     uint64
	end     time.Time
	err     error

	_   [64]byte // keep ops on its own cache line
	ops atomic.Uint64
	_   [64]byte
}

// run sends batches of depth requests and reads their replies until the
// deadline, the quota or an abort. Latency is from just before the batch is
// written to the moment each reply has been parsed, as redis-benchmark
// measures pipelined requests.
func (w *worker) run(start <-chan struct{}, warmEnd, deadline time.Time, abort *atomic.Bool) {
	var ints [5]int64
	var measured uint64
	recording := false
	<-start
	for !abort.Load() {
		t0 := time.Now()
		if !deadline.IsZero() && !t0.Before(deadline) {
			break
		}
		if !recording && !t0.Before(warmEnd) {
			recording = true
		}
		n := uint64(w.depth)
		if recording && w.quota > 0 {
			if measured >= w.quota {
				break
			}
			n = min(n, w.quota-measured)
		}
		for i := uint64(0); i < n; i++ {
			w.req.setKey(w.pick.next())
			_, _ = w.c.w.Write(w.req.buf) // errors resurface from Flush
		}
		if err := w.c.w.Flush(); err != nil {
			w.err = fmt.Errorf("write: %w", err)
			abort.Store(true)
			break
		}
		for i := uint64(0); i < n; i++ {
			var err error
			if w.reply == replyOK {
				err = w.c.readStatus("OK")
			} else {
				err = w.c.readIntArray(ints[:])
			}
			t := time.Now()
			if err != nil && !errors.Is(err, errShape) {
				w.err = err
				abort.Store(true)
				w.end = t
				return
			}
			if !recording {
				continue
			}
			w.hist.Record(int64(t.Sub(t0)))
			switch {
			case err != nil:
				w.bad++
			case w.reply == replyOK:
			case ints[1] != w.limit || ints[2] < 0 || ints[2] > w.limit:
				w.bad++
			case ints[0] == 0:
				w.allowed++
			case ints[0] == 1:
				w.limited++
			default:
				w.bad++
			}
		}
		if recording {
			measured += n
		}
		w.ops.Add(n)
	}
	w.end = time.Now()
}

// runLoad runs one workload against one peer and returns its measurements.
// An error reply from the server, a broken connection or a stall aborts the
// run with an error.
func runLoad(ctx context.Context, spec loadSpec) (loadResult, error) {
	wl := spec.Workload
	workers := make([]*worker, wl.Conns)
	defer func() {
		for _, w := range workers {
			if w != nil && w.c != nil {
				w.c.Close()
			}
		}
	}()
	for i := range workers {
		pick, err := newKeyPicker(wl.Dist, wl.Keys, spec.ZipfS, spec.ZipfV, spec.Seed, uint64(i))
		if err != nil {
			return loadResult{}, err
		}
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		c, err := dial(dctx, spec.Addr)
		cancel()
		if err != nil {
			return loadResult{}, fmt.Errorf("connection %d: %w", i, err)
		}
		req := spec.Request
		req.buf = append([]byte(nil), spec.Request.buf...)
		workers[i] = &worker{c: c, req: req, pick: pick, depth: wl.Pipeline, reply: spec.Reply, limit: spec.Limit}
	}
	if spec.Requests > 0 {
		per, extra := uint64(spec.Requests)/uint64(wl.Conns), uint64(spec.Requests)%uint64(wl.Conns)
		for i, w := range workers {
			w.quota = per
			if uint64(i) < extra {
				w.quota++
			}
		}
	}

	var abort atomic.Bool
	startCh := make(chan struct{})
	var wg sync.WaitGroup
	t0 := time.Now()
	warmEnd := t0.Add(spec.Warmup)
	var deadline time.Time
	if spec.Duration > 0 {
		deadline = warmEnd.Add(spec.Duration)
	}
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(startCh, warmEnd, deadline, &abort)
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	// perf starts (disabled) now, so that its start-up overlaps the warm-up.
	var perf *perfStat
	if len(spec.PerfEvents) > 0 && spec.ServerPID != 0 {
		var err error
		if perf, err = startPerf(spec.ServerPID, spec.PerfEvents, spec.PerfDir); err != nil {
			return loadResult{}, fmt.Errorf("perf: %w", err)
		}
	}
	opsNow := func() uint64 {
		var n uint64
		for _, w := range workers {
			n += w.ops.Load()
		}
		return n
	}

	// CPU time is sampled when the measurement starts and after it ends;
	// perf counts between the same points, over the requests completed in
	// between.
	var cpuMu sync.Mutex
	var srvStart cpuTimes
	var cliStart time.Duration
	var perfOps uint64
	var perfErr error
	sampleStart := time.AfterFunc(spec.Warmup, func() {
		cpuMu.Lock()
		defer cpuMu.Unlock()
		srvStart, _ = procCPUTimeOpt(spec.ServerPID)
		cliStart = selfCPUTime()
		if perf != nil {
			perfErr = perf.command("enable")
			perfOps = opsNow()
		}
	})
	defer sampleStart.Stop()
	close(startCh)

	stallErr := monitor(ctx, spec, workers, t0, done, &abort)
	<-done

	sampleStart.Stop()
	cpuMu.Lock()
	srvEnd, _ := procCPUTimeOpt(spec.ServerPID)
	cliEnd := selfCPUTime()
	res := loadResult{Hist: &Histogram{}, ServerCPU: srvEnd.sub(srvStart), ClientCPU: cliEnd - cliStart}
	if perf != nil {
		if perfErr == nil {
			perfErr = perf.command("disable")
		}
		kc, err := perf.finish(opsNow() - perfOps)
		if perfErr == nil && err == nil {
			res.Kernel = &kc
		} else if stallErr == nil && ctx.Err() == nil {
			cpuMu.Unlock()
			return res, fmt.Errorf("perf: %w", errors.Join(perfErr, err))
		}
	}
	cpuMu.Unlock()

	if stallErr != nil {
		return res, stallErr
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	var end time.Time
	for i, w := range workers {
		if w.err != nil {
			return res, fmt.Errorf("connection %d: %w", i, w.err)
		}
		res.Hist.Merge(&w.hist)
		res.Allowed += w.allowed
		res.Limited += w.limited
		res.Bad += w.bad
		if w.end.After(end) {
			end = w.end
		}
	}
	res.Ops = res.Hist.Count()
	if end.After(warmEnd) {
		res.Elapsed = end.Sub(warmEnd)
	}
	return res, nil
}

// monitor prints the progress line and watches for cancellation and stalls
// until done is closed. On cancellation or a stall it aborts the run and
// closes the connections so that blocked reads return.
func monitor(ctx context.Context, spec loadSpec, workers []*worker, t0 time.Time, done <-chan struct{}, abort *atomic.Bool) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var lastOps uint64
	lastChange := t0
	lastPrint, lastPrintOps := t0, uint64(0)
	printed := false
	defer func() {
		if printed && spec.Terminal {
			fmt.Fprint(spec.ProgressOut, "\r\033[K")
		}
	}()
	kill := func() {
		abort.Store(true)
		for _, w := range workers {
			w.c.Close()
		}
	}
	for {
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			kill()
			return ctx.Err()
		case now := <-tick.C:
			var ops uint64
			for _, w := range workers {
				ops += w.ops.Load()
			}
			if ops != lastOps {
				lastOps, lastChange = ops, now
			} else if now.Sub(lastChange) > stallTimeout {
				kill()
				return fmt.Errorf("no replies for %s: the server stopped answering", stallTimeout)
			}
			if spec.Progress > 0 && now.Sub(lastPrint) >= spec.Progress {
				rate := float64(ops-lastPrintOps) / now.Sub(lastPrint).Seconds()
				phase := ""
				if now.Sub(t0) < spec.Warmup {
					phase = " (warm-up)"
				}
				line := fmt.Sprintf("%s %5.1fs %11d ops %10.0f ops/s%s", spec.Label, now.Sub(t0).Seconds(), ops, rate, phase)
				if spec.Terminal {
					fmt.Fprintf(spec.ProgressOut, "\r\033[K%s", line)
				} else {
					fmt.Fprintln(spec.ProgressOut, line)
				}
				printed = true
				lastPrint, lastPrintOps = now, ops
			}
		}
	}
}

// procCPUTimeOpt is procCPUTime, or zero when pid is 0.
func procCPUTimeOpt(pid int) (cpuTimes, error) {
	if pid == 0 {
		return cpuTimes{}, nil
	}
	return procCPUTime(pid)
}

// selfCPUTime returns this process's user+system CPU time so far.
func selfCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
