package keyspace

import (
	"github.com/sluicehq/sluice/slidinglog"
)

// logEntry is one key's sliding log and when its last entry stops counting.
type logEntry struct {
	entries []slidinglog.Entry
	expires int64
}

// LogAcquire admits quantity requests to key's sliding log under l at now
// (see slidinglog.Acquire) and stores the outcome. Entries older than l's
// period are dropped: one key is meant to serve one limit.
func (ks *Keyspace) LogAcquire(key []byte, now int64, l slidinglog.Limit, quantity int64) slidinglog.Result {
	s, h := ks.locate(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, found := s.logs[string(key)]
	// Acquire changes nothing it is given unless it admits, so the stored
	// log stays as journalled when a request is refused or only peeks.
	live, r := slidinglog.Acquire(slidinglog.Counting(e.entries, now, l.Period()), now, l, quantity)
	switch {
	case len(live) == 0:
		if found {
			ks.removeLog(s, key, h)
		}
	case r.Limited || quantity == 0:
	default:
		if !found {
			ks.sweepLogs(s, now, sampleOnWrite)
			if s.logs == nil {
				s.logs = map[string]logEntry{}
			}
			s.added(Log, key, h)
		}
		if len(live) <= cap(e.entries) { // drop what stopped counting, in place
			n := copy(e.entries[:cap(e.entries)], live)
			clear(e.entries[n:cap(e.entries)])
			live = e.entries[:n]
		}
		e = logEntry{entries: live, expires: max(e.expires, slidinglog.Expires(live, l.Period()))}
		s.logs[string(key)] = e
		s.buf = slidinglog.Encode(s.buf[:0], e.entries)
		ks.record(Change{Op: Set, Kind: Log, Created: !found, Key: key, Expires: e.expires, Value: s.buf})
	}
	return r
}

// LogWindow describes the requests of key's sliding log made less than
// period nanoseconds before now.
func (ks *Keyspace) LogWindow(key []byte, now, period int64) slidinglog.Window {
	s, _ := ks.locate(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.logs[string(key)]
	if e.expires <= now {
		return slidinglog.Window{}
	}
	return slidinglog.Stat(slidinglog.Counting(e.entries, now, period), now, period)
}

// removeLog drops key's sliding log and journals it. Called with s.mu held.
func (ks *Keyspace) removeLog(s *shard, key []byte, h uint64) {
	delete(s.logs, string(key))
	ks.record(Change{Op: Delete, Kind: Log, Key: key})
	s.removed(Log, key, h)
}

// sweepLogs examines up to budget logs, starting at a random one, and
// removes those whose entries have all stopped counting at now. Called
// with s.mu held.
func (ks *Keyspace) sweepLogs(s *shard, now int64, budget int) int {
	n, removed := 0, 0
	for k, e := range s.logs {
		if n >= budget {
			break
		}
		n++
		if e.expires <= now {
			key := []byte(k)
			ks.removeLog(s, key, ks.hash(key))
			removed++
		}
	}
	return removed
}
