package gcra

import (
	"bytes"
	"errors"
	"slices"
)

// ErrNoChecks is returned by [Table.ThrottleMulti] when it is given no checks.
var ErrNoChecks = errors.New("ERR at least one limit is required")

// Check is one limit of a multi-limit request: the key whose state it uses
// and the limit that applies to it.
type Check struct {
	Key   []byte
	Limit Limit
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
// The distinct shards involved are locked in ascending shard order, so
// concurrent multi-limit requests over overlapping keys cannot deadlock.
// The only failure after a decision is [ErrShardFull] while inserting a new
// key; inserts happen before any update and are rolled back, so even then
// nothing is stored.
func (t *Table) ThrottleMulti(checks []Check, now int64, quantity int64, results []Result) (limited bool, err error) {
	if len(checks) == 0 {
		return false, ErrNoChecks
	}
	if len(results) != len(checks) {
		panic("gcra: ThrottleMulti: len(results) != len(checks)")
	}
	var buf [8]multiSlot
	ms := buf[:0]
	if len(checks) > len(buf) {
		ms = make([]multiSlot, 0, len(checks))
	}
	var shardBuf [8]uint64
	order := shardBuf[:0]
	for _, c := range checks {
		h := hashKey(t, c.Key)
		idx := h & t.mask
		ms = append(ms, multiSlot{hash: h, shard: idx})
		if !slices.Contains(order, idx) {
			order = append(order, idx)
		}
	}
	slices.Sort(order)
	for _, idx := range order {
		t.shards[idx].mu.Lock()
	}
	defer func() {
		for _, idx := range order {
			t.shards[idx].mu.Unlock()
		}
	}()

	// Decide every check against the state as the earlier checks of this
	// same request would leave it.
	for i, c := range checks {
		m := &ms[i]
		s := &t.shards[m.shard]
		m.prior = -1
		for j := i - 1; j >= 0; j-- {
			if bytes.Equal(checks[j].Key, c.Key) {
				m.prior = j
				break
			}
		}
		if m.prior >= 0 {
			m.old = ms[m.prior].newTAT
			m.found = ms[m.prior].found
		} else {
			var slot int
			slot, m.found = s.find(c.Key, m.hash)
			if m.found {
				m.old = s.slots[slot].tat
			}
		}
		m.newTAT, results[i], err = Decide(m.old, now, c.Limit, quantity)
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
			var tat int64
			s := &t.shards[ms[i].shard]
			if slot, found := s.find(c.Key, ms[i].hash); found {
				tat = s.slots[slot].tat
			}
			_, results[i], _ = Decide(tat, now, c.Limit, 0) // a peek cannot fail
		}
		for _, m := range ms {
			t.shards[m.shard].limited++
		}
		return true, nil
	}
	return false, t.commitMulti(checks, ms, now)
}

// multiSlot is ThrottleMulti's working state for one check.
type multiSlot struct {
	hash   uint64
	shard  uint64
	prior  int   // index of the last earlier check on the same key, or -1
	found  bool  // the key was stored before this request
	old    int64 // TAT before this check
	newTAT int64 // TAT after this check
}

// commitMulti stores the final TAT of every distinct key, inserts first so
// a full shard can be rolled back before anything else changed. Called with
// every involved shard locked.
func (t *Table) commitMulti(checks []Check, ms []multiSlot, now int64) error {
	final := func(i int) bool { // whether check i is the last one on its key
		for j := i + 1; j < len(checks); j++ {
			if ms[j].prior == i {
				return false
			}
		}
		return true
	}
	firstFound := func(i int) bool { // whether the key existed before the request
		for ms[i].prior >= 0 {
			i = ms[i].prior
		}
		return ms[i].found
	}
	var inserted []int
	for i, c := range checks {
		if !final(i) || firstFound(i) || ms[i].newTAT <= now {
			continue
		}
		s := &t.shards[ms[i].shard]
		slot, err := s.insert(c.Key, ms[i].hash, ms[i].newTAT)
		if err != nil {
			for _, j := range inserted {
				js := &t.shards[ms[j].shard]
				if slot, ok := js.find(checks[j].Key, ms[j].hash); ok {
					js.remove(slot)
				}
			}
			return err
		}
		inserted = append(inserted, i)
		t.changed(s, slot, c.Key, true)
	}
	for i, c := range checks {
		s := &t.shards[ms[i].shard]
		s.allowed++
		if !final(i) || !firstFound(i) {
			continue
		}
		slot, found := s.find(c.Key, ms[i].hash)
		if !found {
			continue
		}
		switch tat := ms[i].newTAT; {
		case tat <= now:
			t.remove(s, slot, c.Key)
		case tat != s.slots[slot].tat:
			s.slots[slot].tat = tat
			t.changed(s, slot, c.Key, false)
		}
	}
	return nil
}

func hashKey(t *Table, key []byte) uint64 {
	_, h := t.locate(key)
	return h
}
