package persistence

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"
)

// ErrClosed is returned by Wait once Close has begun, and by Sync after it.
var ErrClosed = errors.New("persistence: store closed")

// Wait returns once every change recorded before the call is as durable as
// the mode promises a reply can rely on, or the reason it cannot be. In
// Always mode that means synced to stable storage: Wait blocks for the next
// group commit. In EverySec and No modes replies do not wait, and Wait
// returns at once. In every mode, once the store has failed Wait returns
// its error, and once Close has begun ErrClosed: the caller's change may
// have been dropped, so a reply must not claim it durable.
func (s *Store) Wait() error {
	if err := s.stopped(); err != nil {
		return err
	}
	if !s.RepliesWait() {
		return nil
	}
	target := s.recorded.Load()
	if s.synced.Load() >= target {
		return nil
	}
	s.joined.Add(1)
	return s.waitSynced(target)
}

// RepliesWait reports whether Wait can block: only in Always mode.
func (s *Store) RepliesWait() bool { return s.mode == Always }

// Sync makes every change recorded before the call durable now, whatever the
// mode, and returns the store's error if it cannot.
func (s *Store) Sync() error {
	if err := s.stopped(); err != nil {
		return err
	}
	target := s.recorded.Load()
	if s.synced.Load() >= target {
		return nil
	}
	select {
	case s.syncReq <- struct{}{}:
	default:
	}
	return s.waitSynced(target)
}

// stopped is why the store no longer keeps changes — its failure, or
// ErrClosed once Close has begun — or nil while it does. A change is only
// dropped after failed or closed was set, so the caller that made it sees
// them here.
func (s *Store) stopped() error {
	if !s.failed.Load() && !s.closed.Load() {
		return nil
	}
	if err := s.failure(); err != nil {
		return err
	}
	return ErrClosed
}

// waitSynced blocks until synced reaches target, or returns the store's
// failure; ErrClosed only if target was not reached.
func (s *Store) waitSynced(target uint64) error {
	for {
		s.waitMu.Lock()
		ch, err := s.waitCh, s.err
		s.waitMu.Unlock()
		if err != nil && !errors.Is(err, ErrClosed) {
			return err
		}
		if s.synced.Load() >= target {
			return nil
		}
		if err != nil {
			return err
		}
		<-ch
	}
}

// failure is why the store stopped (ErrClosed after Close), nil while it
// runs.
func (s *Store) failure() error {
	s.waitMu.Lock()
	defer s.waitMu.Unlock()
	return s.err
}

// advance publishes that the changes up to seq are synced, waking waiters.
func (s *Store) advance(seq uint64) {
	s.synced.Store(seq)
	s.lastSync.Store(time.Now().UnixNano())
	s.waitMu.Lock()
	close(s.waitCh)
	s.waitCh = make(chan struct{})
	s.waitMu.Unlock()
}

// fail stops the store writing: waiters and every later Wait and Sync get
// err, later changes are dropped, and so are those waiting in the pending
// log. The error is published under s.mu, so a Record either comes before
// it (and its change is lost with the pending log, which Wait reports) or
// sees the store failed.
func (s *Store) fail(err error) {
	s.writeErrors.Add(1)
	s.log.Error("persistence: write failed; the store stops writing and the on-disk state stays as of the last successful write until restart",
		slog.String("dir", s.dir), slog.Any("err", err))
	s.mu.Lock()
	s.waitMu.Lock()
	if s.err == nil {
		s.err = fmt.Errorf("persistence failed: %w", err)
	}
	s.failed.Store(true)
	close(s.waitCh)
	s.waitCh = make(chan struct{})
	s.waitMu.Unlock()
	s.pending.recycle(s.pending.take(nil))
	s.mu.Unlock()
	s.room.Broadcast()
}

// take hands the writer the pending chunks (reusing spare's storage for
// the next ones) and the sequence number of the last change in them.
func (s *Store) take(spare [][]byte) ([][]byte, uint64) {
	s.mu.Lock()
	chunks, seq := s.pending.take(spare), s.seq
	s.mu.Unlock()
	s.room.Broadcast()
	return chunks, seq
}

// give returns drained chunks for reuse.
func (s *Store) give(chunks [][]byte) {
	s.mu.Lock()
	s.pending.recycle(chunks)
	s.mu.Unlock()
}

// run is the writer: it commits whatever accumulated, syncing per mode,
// until Close.
func (s *Store) run() {
	defer close(s.done)
	defer close(s.foldReq)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armed := false // timer runs: EverySec has unsynced writes
	gather := time.NewTimer(time.Hour)
	gather.Stop()
	var spare [][]byte
	for {
		var forced, due, quit bool
		select {
		case <-s.kick:
			if s.mode == Always {
				s.group()
			} else {
				forced, quit = s.gather(gather)
			}
		case <-s.syncReq:
			forced = true
		case <-timer.C:
			armed, due = false, true
		case <-s.quit:
			quit = true
		case done := <-s.foldNowReq:
			s.rotate(done)
			continue
		}
		chunks, seq := s.take(spare)
		spare = chunks[:0] // the next take's storage; the chunks go back by give
		if s.mode == Always {
			s.joined.Store(0)
		}
		if s.failed.Load() {
			s.give(chunks)
			if quit {
				return
			}
			continue
		}
		syncNow := forced || due || quit || s.mode == Always
		if len(chunks) > 0 {
			err := s.commit(chunks, syncNow)
			s.give(chunks)
			if err != nil {
				s.fail(err)
				continue
			}
			s.written.Store(seq)
			if syncNow {
				s.advance(seq)
			}
			if s.seg.w.Size() >= int64(s.foldBytes) {
				// The segment is full: closing syncs it, so everything
				// written so far is durable.
				if err := s.closeSegment(); err != nil {
					s.fail(err)
					continue
				}
				s.advance(seq)
			}
			s.maybeFold()
		} else if syncNow && s.synced.Load() < s.written.Load() {
			if err := s.syncSegment(); err != nil {
				s.fail(err)
				continue
			}
			s.advance(s.written.Load())
		}
		if s.synced.Load() < s.written.Load() && s.mode == EverySec && !armed {
			timer.Reset(s.interval)
			armed = true
		}
		if quit {
			if err := s.closeSegment(); err != nil {
				s.fail(err)
			}
			return
		}
	}
}

// maxGroupYields bounds how many times the writer yields while an
// Always-mode group forms (see group).
const maxGroupYields = 64

// group lets an Always-mode group commit form before the writer takes it.
// The connection that woke the writer has just recorded a change, and the
// others whose requests arrived with it are runnable but have not run yet:
// a woken goroutine takes the scheduler's next slot. Committing at once
// would sync one change while they wait for the next sync, and on one CPU,
// where the sync holds the only scheduler thread (see syncSegment), groups
// collapse to a change or two. The writer therefore yields to every
// runnable goroutine, again while a yield brought new callers of Wait (at
// most maxGroupYields times), and then takes the group: every request
// already read joins this sync, and those arriving during it are gathered
// for the next one, as in a single-threaded server such as Redis.
func (s *Store) group() {
	for range maxGroupYields {
		n := s.joined.Load()
		runtime.Gosched()
		if s.joined.Load() == n {
			return
		}
	}
}

// coalesce is how long the writer lets changes gather in EverySec and No
// modes, where replies do not wait for it, before writing them:
// under load one write then carries many, saving the server's CPU.
const coalesce = time.Millisecond

// gather waits coalesce on t, or less when Sync or Close asks.
func (s *Store) gather(t *time.Timer) (forced, quit bool) {
	t.Reset(coalesce)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.syncReq:
		forced = true
	case <-s.quit:
		quit = true
	}
	return forced, quit
}

// maxBatchBytes bounds a journal record: a far-behind backlog goes in
// several records, which folds and replays read one at a time.
const maxBatchBytes = 512 << 10

// commit appends the pending chunks to the writer's segment as
// records of at most maxBatchBytes (whole chunks each), hands them to the
// operating system in one write where it can, and with sync waits for the
// disk too.
func (s *Store) commit(chunks [][]byte, sync bool) error {
	if s.seg == nil {
		if err := s.openSegment(); err != nil {
			return err
		}
	}
	w := s.seg.w
	for i := 0; i < len(chunks); {
		n, j := len(chunks[i]), i+1
		for ; j < len(chunks) && n+len(chunks[j]) <= maxBatchBytes; j++ {
			n += len(chunks[j])
		}
		rw, err := w.Next()
		if err != nil {
			return err
		}
		for _, c := range chunks[i:j] {
			if _, err := rw.Write(c); err != nil {
				return err
			}
		}
		s.unfolded.Add(int64(n))
		s.batches.Add(1)
		i = j
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if sync {
		return s.syncSegment()
	}
	return nil
}

// maybeFold hands the folder the segments the writer closed, unless it is
// still folding earlier ones.
func (s *Store) maybeFold() {
	closed := s.nextSegment
	if s.seg != nil {
		closed = s.seg.num
	}
	if closed <= s.foldAsked || s.folding.Load() {
		return
	}
	s.folding.Store(true)
	s.unfolded.Store(0)
	s.foldAsked = closed
	s.foldReq <- foldJob{to: closed}
}

// rotate closes the writer's segment, whatever it holds, and hands every
// closed segment to the folder, which reports the fold's outcome to done
// (see foldNow).
func (s *Store) rotate(done chan error) {
	if s.failed.Load() {
		done <- s.failure()
		return
	}
	if s.seg != nil {
		written := s.written.Load()
		if err := s.closeSegment(); err != nil {
			s.fail(err)
			done <- s.failure()
			return
		}
		s.advance(written) // closing synced everything written
	}
	s.folding.Store(true)
	s.unfolded.Store(0)
	s.foldAsked = s.nextSegment
	s.foldReq <- foldJob{to: s.nextSegment, done: done}
}
