package keyspace

import (
	"github.com/sluicehq/sluice/counter"
)

// IncrBy adds amount to key's counter at now (see counter.Incr): a key
// without a live counter starts at zero and keeps it for ttl nanoseconds;
// elastic moves the expiry to ttl from now on every call. It returns the
// counter as stored; on counter.ErrOverflow nothing changes.
func (ks *Keyspace) IncrBy(key []byte, now, amount, ttl int64, elastic bool) (counter.State, error) {
	s, h := ks.locate(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	old, found := s.counters[string(key)]
	st, err := counter.Incr(old, now, amount, ttl, elastic)
	if err != nil {
		return counter.Live(old, now), err
	}
	if !found {
		ks.sweepCounters(s, now, sampleOnWrite)
		if s.counters == nil {
			s.counters = map[string]counter.State{}
		}
		s.added(Counter, key, h)
	}
	s.counters[string(key)] = st
	s.buf = counter.Encode(s.buf[:0], st)
	ks.record(Change{Op: Set, Kind: Counter, Created: !found, Key: key, Expires: st.Expires, Value: s.buf})
	return st, nil
}

// Counter returns key's counter as it stands at now (the zero State when
// it has none, or it expired).
func (ks *Keyspace) Counter(key []byte, now int64) counter.State {
	s, _ := ks.locate(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	return counter.Live(s.counters[string(key)], now)
}

// removeCounter drops key's counter and journals it. Called with s.mu held.
func (ks *Keyspace) removeCounter(s *shard, key []byte, h uint64) {
	delete(s.counters, string(key))
	ks.record(Change{Op: Delete, Kind: Counter, Key: key})
	s.removed(Counter, key, h)
}

// sweepCounters examines up to budget counters, starting at a random one,
// and removes those expired at now. Called with s.mu held.
func (ks *Keyspace) sweepCounters(s *shard, now int64, budget int) int {
	n, removed := 0, 0
	for k, st := range s.counters {
		if n >= budget {
			break
		}
		n++
		if st.Expires <= now {
			key := []byte(k)
			ks.removeCounter(s, key, ks.hash(key))
			removed++
		}
	}
	return removed
}
