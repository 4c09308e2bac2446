package persistence

import (
	"github.com/cockroachdb/pebble"
)

// Progress is how far recovery has come. Open reports it while it replays
// the journal a previous run left (Step "replay"), Load while it restores
// keys (Step "load"), to Options.Progress, from the goroutine that called
// them.
type Progress struct {
	Step  string // "replay" or "load"
	Keys  int    // load: keys read so far (restored, expired or malformed)
	Bytes int64  // bytes read so far in this step
	// Total estimates the bytes this step reads (the journal's file sizes,
	// which preallocation makes larger than what they hold until they are
	// nearly full; Pebble's raw table sizes); 0 when unknown. Bytes may stay
	// below it, or pass it, before the step ends.
	Total int64
}

// loadReportEvery is how many keys Load reads between two reports.
const loadReportEvery = 1024

// progressState is the step in progress, for the reports.
type progressState struct {
	report func(Progress)
	p      Progress
}

// replayProgress wraps each, the fold's handler of journal records, so
// that it reports progress once per record; segs are the segments the
// replay reads. Without Options.Progress it returns each.
func (s *Store) replayProgress(segs []uint64, each func(rec []byte) error) func(rec []byte) error {
	if s.progress == nil {
		return each
	}
	ps := progressState{report: s.progress, p: Progress{Step: "replay"}}
	for _, n := range segs {
		if fi, err := s.fs.Stat(s.fs.PathJoin(s.journal, segmentName(n))); err == nil {
			ps.p.Total += fi.Size()
		}
	}
	return func(rec []byte) error {
		ps.p.Bytes += int64(len(rec))
		ps.report(ps.p)
		return each(rec)
	}
}

// loaded counts one key Load read (its Pebble key and value were n bytes)
// and reports every loadReportEvery keys.
func (s *Store) loaded(n int) {
	if s.progress == nil {
		return
	}
	ps := &s.loadProgress
	if ps.report == nil {
		ps.report, ps.p = s.progress, Progress{Step: "load", Total: s.loadEstimate()}
	}
	ps.p.Keys++
	ps.p.Bytes += int64(n) + 8 // Pebble counts a key's 8-byte trailer in its raw size
	if ps.p.Keys%loadReportEvery == 0 {
		ps.report(ps.p)
	}
}

// loadEstimate is about what Load reads: the raw bytes of Pebble's tables,
// once its memtables are flushed into tables (the replay at Open leaves
// them full; the flush writes them once, as Pebble would soon after).
// Versions of a key that a newer one hides count too, so it errs high.
func (s *Store) loadEstimate() int64 {
	var n int64
	if err := guard(s.db.Flush); err != nil {
		n += int64(s.db.Metrics().MemTable.Size) // an upper bound instead
	}
	if levels, err := s.db.SSTables(pebble.WithProperties()); err == nil {
		for _, level := range levels {
			for _, t := range level {
				if t.Properties != nil {
					n += int64(t.Properties.RawKeySize + t.Properties.RawValueSize)
				}
			}
		}
	}
	return n
}
