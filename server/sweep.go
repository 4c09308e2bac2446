package server

import "time"

// sweeper runs the expiry sweep in a goroutine of its own: one step every
// interval until stop.
type sweeper struct {
	stopc chan struct{}
	done  chan struct{}
}

// startSweeper calls step every interval until stop is called.
func startSweeper(interval time.Duration, step func()) *sweeper {
	w := &sweeper{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-w.stopc:
				return
			case <-tick.C:
				step()
			}
		}
	}()
	return w
}

// stop ends the sweep and waits for a step in progress to finish (the sweep
// journals, so persistence closes only after it). It accepts a nil sweeper
// (never started) and must be called once.
func (w *sweeper) stop() {
	if w == nil {
		return
	}
	close(w.stopc)
	<-w.done
}
