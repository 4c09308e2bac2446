package keyspace

import (
	"fmt"

	"github.com/sluicehq/sluice/counter"
	"github.com/sluicehq/sluice/lease"
	"github.com/sluicehq/sluice/slidinglog"
)

// Restore applies one change of a stream, as recovery from disk does (and
// as a replica will): the same Change a Journal received puts the same
// state back. Nothing is journalled. A Set whose state expired at now
// removes the key's state of that kind instead; a lease restored live keeps
// its ID, which later acquisitions on its key never draw (see newLeaseID).
// It fails, changing nothing, on a Change it cannot read.
func (ks *Keyspace) Restore(c Change, now int64) error { return ks.restore(c, now, false) }

// Apply applies one change of a primary's stream, as Restore does, and
// journals what it changed, under the key's shard lock like any other
// change: a replica's own journal (its disk) receives the same stream, in
// order with the replica's own changes (the sweep, peeks dropping expired
// state). Created is worked out from this keyspace, not taken from c; a
// Set already expired at now is journalled as the Delete it became, and a
// Delete of nothing is not journalled.
func (ks *Keyspace) Apply(c Change, now int64) error { return ks.restore(c, now, true) }

func (ks *Keyspace) restore(c Change, now int64, journal bool) error {
	if c.Op == Flush {
		ks.lockAll()
		ks.flushLocked()
		if journal {
			ks.record(Change{Op: Flush})
		}
		ks.unlockAll()
		return nil
	}
	if c.Op != Set && c.Op != Delete {
		return fmt.Errorf("restore: unknown op %d", c.Op)
	}
	if !c.Kind.Valid() {
		return fmt.Errorf("restore: unknown kind %d", c.Kind)
	}
	set := c.Op == Set && c.Expires > now
	var we windowEntry
	var ls []lease.Lease
	var cs counter.State
	var le logEntry
	if c.Op == Set {
		var err error
		switch c.Kind {
		case GCRA:
			if len(c.Value) != 0 {
				return fmt.Errorf("restore: gcra state of %q carries %d value bytes", c.Key, len(c.Value))
			}
		case Window:
			if we, err = decodeWindow(c.Value, c.Expires); err != nil {
				return fmt.Errorf("restore: window state of %q: %w", c.Key, err)
			}
		case Lease:
			if ls, err = lease.Decode(c.Value); err != nil {
				return fmt.Errorf("restore: leases of %q: %w", c.Key, err)
			}
			if ls = lease.Live(ls, now); len(ls) == 0 {
				set = false
			}
		case Counter:
			if cs, err = counter.Decode(c.Value, c.Expires); err != nil {
				return fmt.Errorf("restore: counter of %q: %w", c.Key, err)
			}
		case Log:
			if le.entries, err = slidinglog.Decode(c.Value); err != nil {
				return fmt.Errorf("restore: sliding log of %q: %w", c.Key, err)
			}
			le.expires = c.Expires
		}
	}
	s, h := ks.locate(c.Key)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch c.Kind {
	case GCRA:
		i, found := s.tats.Find(c.Key, h)
		switch {
		case set && found:
			s.tats.SetValue(i, c.Expires)
		case set:
			if _, err := s.tats.Insert(c.Key, h, c.Expires); err != nil {
				return err
			}
			s.added(GCRA, c.Key, h)
		case found:
			s.tats.Remove(i)
			s.removed(GCRA, c.Key, h)
		}
		if journal {
			ks.journalRestored(c, set, found)
		}
	case Window:
		found := restoreIn(s, &s.windows, Window, c.Key, h, set, we)
		if journal {
			ks.journalRestored(c, set, found)
		}
	case Lease:
		found := restoreIn(s, &s.leases, Lease, c.Key, h, set, ls)
		if journal {
			if set {
				// Only the live leases were stored: journal those.
				s.buf = lease.Encode(s.buf[:0], ls)
				c.Value, c.Expires = s.buf, lease.Last(ls)
			}
			ks.journalRestored(c, set, found)
		}
	case Counter:
		found := restoreIn(s, &s.counters, Counter, c.Key, h, set, cs)
		if journal {
			ks.journalRestored(c, set, found)
		}
	case Log:
		found := restoreIn(s, &s.logs, Log, c.Key, h, set, le)
		if journal {
			ks.journalRestored(c, set, found)
		}
	}
	return nil
}

// restoreIn stores v under key in *m when set, else removes key from it,
// keeping the shard's name count, and reports whether key was there. It
// serves every kind kept in a Go map. Called with s.mu held.
func restoreIn[V any](s *shard, m *map[string]V, k Kind, key []byte, h uint64, set bool, v V) (found bool) {
	_, found = (*m)[string(key)]
	switch {
	case set:
		if *m == nil {
			*m = map[string]V{}
		}
		(*m)[string(key)] = v
		if !found {
			s.added(k, key, h)
		}
	case found:
		delete(*m, string(key))
		s.removed(k, key, h)
	}
	return found
}

// Range calls fn with a Set change for every kind of state of every key,
// as a journal would have received it, one shard at a time under that
// shard's lock (so fn must be quick and must copy what it keeps). Applying
// them with Restore to an empty keyspace rebuilds this one: a snapshot.
func (ks *Keyspace) Range(fn func(c Change)) {
	var buf []byte
	for i := range ks.shards {
		s := &ks.shards[i]
		s.mu.Lock()
		s.tats.Range(func(key []byte, tat int64) {
			fn(Change{Op: Set, Kind: GCRA, Key: key, Expires: tat})
		})
		for k, e := range s.windows {
			buf = appendWindow(buf[:0], e)
			fn(Change{Op: Set, Kind: Window, Key: []byte(k), Expires: e.expires, Value: buf})
		}
		for k, ls := range s.leases {
			buf = lease.Encode(buf[:0], ls)
			fn(Change{Op: Set, Kind: Lease, Key: []byte(k), Expires: lease.Last(ls), Value: buf})
		}
		for k, st := range s.counters {
			buf = counter.Encode(buf[:0], st)
			fn(Change{Op: Set, Kind: Counter, Key: []byte(k), Expires: st.Expires, Value: buf})
		}
		for k, e := range s.logs {
			buf = slidinglog.Encode(buf[:0], e.entries)
			fn(Change{Op: Set, Kind: Log, Key: []byte(k), Expires: e.expires, Value: buf})
		}
		s.mu.Unlock()
	}
}

// journalRestored journals what restoring c did to a key that held state
// of c's kind (found) and now holds it (set) or not. Called with the key's
// shard lock held.
func (ks *Keyspace) journalRestored(c Change, set, found bool) {
	switch {
	case set:
		ks.record(Change{Op: Set, Kind: c.Kind, Created: !found, Key: c.Key, Expires: c.Expires, Value: c.Value})
	case found:
		ks.record(Change{Op: Delete, Kind: c.Kind, Key: c.Key})
	}
}
