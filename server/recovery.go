package server

import (
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/commands"
	"github.com/sluicehq/sluice/persistence"
)

// Recovery of the data directory runs after the listeners open, as
// Redis's loading does: meanwhile clients connect and authenticate, INFO
// shows the progress (loading:1 and Redis's loading_* fields), /healthz
// answers 200 and /readyz 503, every command that touches keys (and PING)
// answers -LOADING, and the log reports the progress every second.

// recoveryLogEvery is how often recovery logs its progress.
const recoveryLogEvery = time.Second

// recovery is one run of recovery: its progress, read by INFO and the
// progress log while it runs, and its outcome.
type recovery struct {
	start time.Time
	step  atomic.Pointer[string] // "open", then persistence.Progress's steps
	keys  atomic.Int64
	bytes atomic.Int64
	total atomic.Int64
	hook  func(persistence.Progress) // tests: called with every report, in the recovering goroutine

	done chan struct{} // closed when recovery ends
	err  error         // its outcome, once done is closed
}

// startRecovery opens the data directory and loads it into the keyspace in
// a goroutine of its own, logging the progress every logEvery; it returns
// at once. On success the store is wired in (st.dur) before done closes;
// commands stay in loading until the caller ends it.
func (s *Server) startRecovery(logEvery time.Duration) *recovery {
	r := &recovery{start: time.Now(), done: make(chan struct{}), hook: s.recoveryHook}
	open := "open"
	r.step.Store(&open)
	go func() {
		defer close(r.done)
		stop := r.logProgress(s.log, logEvery)
		defer stop()
		r.err = s.state.recover(s.cfg, s.log, r.progress)
	}()
	return r
}

// recover opens the data directory (replaying its journal), restores what
// it holds into the keyspace and wires the store in as the keyspace's
// journal.
func (st *state) recover(cfg Config, log *slog.Logger, progress func(persistence.Progress)) error {
	d, err := openDurability(cfg, log, progress)
	if err != nil {
		return err
	}
	now := st.clock.Now()
	if err := d.load(st.keys, now); err != nil {
		_ = d.close()
		return err
	}
	st.dur.Store(d)
	return nil
}

// progress records a report of persistence's.
func (r *recovery) progress(p persistence.Progress) {
	if *r.step.Load() != p.Step {
		step := p.Step
		r.step.Store(&step)
	}
	r.keys.Store(int64(p.Keys))
	r.bytes.Store(p.Bytes)
	r.total.Store(p.Total)
	if r.hook != nil {
		r.hook(p)
	}
}

// percent is how far the step in progress is, by its bytes against its
// estimated total (at most 99.99 until the step ends), or -1 when unknown.
func (r *recovery) percent() float64 {
	total := r.total.Load()
	if total <= 0 {
		return -1
	}
	return min(99.99, float64(r.bytes.Load())*100/float64(total))
}

// logProgress logs the progress every interval until the returned function
// is called.
func (r *recovery) logProgress(log *slog.Logger, every time.Duration) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
				log.Info("recovering the data directory; commands answer -LOADING meanwhile",
					slog.String("step", *r.step.Load()),
					slog.Int64("keys", r.keys.Load()),
					slog.Int64("bytes", r.bytes.Load()),
					slog.Int64("total_bytes_estimate", r.total.Load()),
					slog.String("percent", formatPercent(r.percent())),
					slog.Duration("elapsed", time.Since(r.start).Round(time.Millisecond)))
			}
		}
	}()
	return func() { close(quit); <-done }
}

func formatPercent(p float64) string {
	if p < 0 {
		return "unknown"
	}
	return strconv.FormatFloat(p, 'f', 2, 64)
}

// info lists INFO's loading fields, Redis's names first.
func (r *recovery) info() []commands.Setting {
	elapsed := time.Since(r.start)
	bytes, total := r.bytes.Load(), r.total.Load()
	perc := max(r.percent(), 0)
	eta := int64(1) // Redis's answer while it cannot tell
	if bytes > 0 && total > bytes {
		eta = int64(elapsed.Seconds()*float64(total-bytes)/float64(bytes)) + 1
	}
	return []commands.Setting{
		{Name: "loading_start_time", Value: strconv.FormatInt(r.start.Unix(), 10)},
		{Name: "loading_total_bytes", Value: strconv.FormatInt(total, 10)},
		{Name: "loading_loaded_bytes", Value: strconv.FormatInt(bytes, 10)},
		{Name: "loading_loaded_perc", Value: fmt.Sprintf("%.2f", perc)},
		{Name: "loading_eta_seconds", Value: strconv.FormatInt(eta, 10)},
		{Name: "loading_step", Value: *r.step.Load()},
		{Name: "loading_loaded_keys", Value: strconv.FormatInt(r.keys.Load(), 10)},
	}
}
