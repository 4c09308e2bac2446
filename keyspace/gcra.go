package keyspace

import (
	"bytes"
	"errors"

	"github.com/sluicehq/sluice/gcra"
	"github.com/sluicehq/sluice/keyspace/internal/table"
)

// ErrShardFull is returned when a new key would take one shard's key
// arena past its bound (2 GiB).
var ErrShardFull = table.ErrFull

// ErrNoChecks is returned by ThrottleMulti when it is given no checks.
var ErrNoChecks = errors.New("at least one limit is required")

// Throttle applies one GCRA request of quantity to key at instant now and
// stores the result. On an existing key it allocates nothing.
func (ks *Keyspace) Throttle(key []byte, now int64, l gcra.Limit, quantity int64) (gcra.Result, error) {
	s, h := ks.locate(key)
	s.mu.Lock()
	i, found := s.tats.Find(key, h)
	var tat int64
	if found {
		tat = s.tats.Value(i)
	}
	newTAT, r, err := gcra.Decide(tat, now, l, quantity)
	if err == nil {
		if r.Limited {
			s.limited++
		} else {
			s.allowed++
		}
		err = ks.storeTAT(s, i, found, key, h, tat, newTAT, now)
	}
	s.mu.Unlock()
	return r, err
}

// storeTAT writes newTAT for key (in slot i when found), dropping the key
// when newTAT is not after now. Called with s.mu held.
func (ks *Keyspace) storeTAT(s *shard, i int, found bool, key []byte, h uint64, old, newTAT, now int64) error {
	switch {
	case newTAT <= now:
		if found {
			ks.removeTAT(s, i, key, h)
		}
	case found:
		if newTAT != old {
			s.tats.SetValue(i, newTAT)
			ks.record(Change{Op: Set, Kind: GCRA, Key: key, Expires: newTAT})
		}
	default:
		if _, err := s.tats.Insert(key, h, newTAT); err != nil {
			return err
		}
		s.added(GCRA, key, h)
		ks.record(Change{Op: Set, Kind: GCRA, Created: true, Key: key, Expires: newTAT})
	}
	return nil
}

// removeTAT removes slot i of s, which holds key, and journals it. Called
// with s.mu held; key must not alias the table's arena.
func (ks *Keyspace) removeTAT(s *shard, i int, key []byte, h uint64) {
	ks.record(Change{Op: Delete, Kind: GCRA, Key: key})
	s.tats.Remove(i)
	s.removed(GCRA, key, h)
}

// Check is one limit of a multi-limit GCRA request: the key whose TAT it
// uses and the limit that applies to it.
type Check struct {
	Key   []byte
	Limit gcra.Limit
}

// ThrottleMulti applies one request of quantity to every check at instant
// now, atomically: it admits only when every check admits, and then stores
// every new TAT; when any check refuses it stores nothing at all. results
// must have len(checks) elements; it receives one Result per check.
//
// When the request is admitted, results[i] is what THROTTLE would have
// replied for check i. When it is refused, a check that refused on its own
// reports its refusal (Limited, RetryAfter), and a check that would have
// admitted reports its state as it stands, nothing charged (a peek). A key
// named by several checks is charged once per check, in order, as if the
// checks ran one after another under one lock.
//
// The distinct shards involved are locked in ascending order, so
// concurrent multi-limit requests over overlapping keys cannot deadlock;
// the work done under the locks is linear in the number of checks. The
// only failure after a decision is [ErrShardFull] while inserting a new
// key; inserts happen before any update and are rolled back, so even then
// nothing is stored.
func (ks *Keyspace) ThrottleMulti(checks []Check, now int64, quantity int64, results []gcra.Result) (limited bool, err error) {
	if len(checks) == 0 {
		return false, ErrNoChecks
	}
	if len(results) != len(checks) {
		panic("keyspace: ThrottleMulti: len(results) != len(checks)")
	}
	var buf [8]multiSlot
	ms := buf[:0]
	if len(checks) > len(buf) {
		ms = make([]multiSlot, 0, len(checks))
	}
	var shardBuf [8]uint64
	order := shardBuf[:0]
	for _, c := range checks {
		h := ks.hash(c.Key)
		ms = append(ms, multiSlot{hash: h, shard: h & ks.mask, prior: -1, next: -1})
		order = append(order, h&ks.mask)
	}
	linkPriors(checks, ms)
	defer ks.unlockShards(ks.lockShards(order))

	// Decide every check against the state as the earlier checks of this
	// same request would leave it.
	for i, c := range checks {
		m := &ms[i]
		s := &ks.shards[m.shard]
		if m.prior >= 0 {
			m.old = ms[m.prior].newTAT
			m.found = ms[m.prior].found
		} else {
			var slot int
			slot, m.found = s.tats.Find(c.Key, m.hash)
			if m.found {
				m.old = s.tats.Value(slot)
			}
		}
		m.newTAT, results[i], err = gcra.Decide(m.old, now, c.Limit, quantity)
		if err != nil {
			return false, err
		}
		if results[i].Limited {
			limited = true
		}
	}
	if limited {
		// Nothing is charged: report the checks that would have admitted
		// as they stand, from the stored state.
		for i, c := range checks {
			if results[i].Limited {
				continue
			}
			tat, _ := ks.shards[ms[i].shard].tats.Get(c.Key, ms[i].hash)
			_, results[i], _ = gcra.Decide(tat, now, c.Limit, 0) // a peek cannot fail
		}
		for _, m := range ms {
			ks.shards[m.shard].limited++
		}
		return true, nil
	}
	return false, ks.commitMulti(checks, ms, now)
}

// multiSlot is ThrottleMulti's working state for one check.
type multiSlot struct {
	hash   uint64
	shard  uint64
	prior  int   // index of the last earlier check on the same key, or -1
	next   int   // index of the next check on the same key, or -1
	found  bool  // the key was stored before this request
	old    int64 // TAT before this check
	newTAT int64 // TAT after this check
}

// linkPriors links each check to the previous and next checks on the same
// key, in linear time for long requests.
func linkPriors(checks []Check, ms []multiSlot) {
	if len(checks) <= 16 {
		for i := range checks {
			for j := i - 1; j >= 0; j-- {
				if ms[j].hash == ms[i].hash && bytes.Equal(checks[j].Key, checks[i].Key) {
					ms[i].prior, ms[j].next = j, i
					break
				}
			}
		}
		return
	}
	last := make(map[string]int, len(checks))
	for i, c := range checks {
		if j, ok := last[string(c.Key)]; ok {
			ms[i].prior, ms[j].next = j, i
		}
		last[string(c.Key)] = i
	}
}

// commitMulti stores the final TAT of every distinct key, inserts first so
// a full shard can be rolled back before anything else changed. Called with
// every involved shard locked.
func (ks *Keyspace) commitMulti(checks []Check, ms []multiSlot, now int64) error {
	// A check's found says whether its key existed before the request
	// (later checks on a key inherit it from the first); only the last
	// check on a key (next < 0) stores.
	var inserted []int
	for i, c := range checks {
		m := &ms[i]
		if m.next >= 0 || m.found || m.newTAT <= now {
			continue
		}
		s := &ks.shards[m.shard]
		if _, err := s.tats.Insert(c.Key, m.hash, m.newTAT); err != nil {
			for _, j := range inserted {
				js := &ks.shards[ms[j].shard]
				if slot, ok := js.tats.Find(checks[j].Key, ms[j].hash); ok {
					js.tats.Remove(slot)
				}
			}
			return err
		}
		inserted = append(inserted, i)
	}
	for _, i := range inserted {
		s := &ks.shards[ms[i].shard]
		s.added(GCRA, checks[i].Key, ms[i].hash)
		ks.record(Change{Op: Set, Kind: GCRA, Created: true, Key: checks[i].Key, Expires: ms[i].newTAT})
	}
	for i, c := range checks {
		m := &ms[i]
		s := &ks.shards[m.shard]
		s.allowed++
		if m.next >= 0 || !m.found {
			continue
		}
		slot, found := s.tats.Find(c.Key, m.hash)
		if !found {
			continue
		}
		switch tat := m.newTAT; {
		case tat <= now:
			ks.removeTAT(s, slot, c.Key, m.hash)
		case tat != s.tats.Value(slot):
			s.tats.SetValue(slot, tat)
			ks.record(Change{Op: Set, Kind: GCRA, Key: c.Key, Expires: tat})
		}
	}
	return nil
}

// TAT returns key's TAT when it is after now.
func (ks *Keyspace) TAT(key []byte, now int64) (int64, bool) {
	s, h := ks.locate(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if tat, ok := s.tats.Get(key, h); ok && tat > now {
		return tat, true
	}
	return 0, false
}
