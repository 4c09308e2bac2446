package keyspace

import (
	"encoding/binary"
	"errors"

	"github.com/sluicehq/sluice/gcra"
	"github.com/sluicehq/sluice/window"
)

// windowEntry is one key's window counters; period tells which limit they
// count for (a request with another period starts afresh) and expires when
// they stop mattering.
type windowEntry struct {
	st      window.State
	period  int64
	expires int64
}

// windowBytes is the size of an encoded windowEntry's Value: Start, Curr,
// Prev and period, big-endian (the expiry travels as Change.Expires).
const windowBytes = 32

func appendWindow(dst []byte, e windowEntry) []byte {
	for _, v := range [4]int64{e.st.Start, e.st.Curr, e.st.Prev, e.period} {
		dst = binary.BigEndian.AppendUint64(dst, uint64(v))
	}
	return dst
}

// errWindowEncoding is returned by Restore for window bytes appendWindow
// did not produce.
var errWindowEncoding = errors.New("malformed window encoding")

func decodeWindow(b []byte, expires int64) (windowEntry, error) {
	if len(b) != windowBytes {
		return windowEntry{}, errWindowEncoding
	}
	var v [4]int64
	for i := range v {
		v[i] = int64(binary.BigEndian.Uint64(b[8*i:]))
	}
	if v[3] <= 0 {
		return windowEntry{}, errWindowEncoding
	}
	return windowEntry{st: window.State{Start: v[0], Curr: v[1], Prev: v[2]}, period: v[3], expires: expires}, nil
}

// sampleOnWrite is how many other keys of a shard a new window or lease key
// makes the shard examine for expiry, so memory stays proportional to the
// live keys even between sweeps (Redis's lazy expiry, made active on
// writes).
const sampleOnWrite = 2

// Take applies one window request of quantity to key at instant now with
// algorithm a and limit l, and stores the outcome.
func (ks *Keyspace) Take(a window.Algorithm, key []byte, now int64, l window.Limit, quantity int64) gcra.Result {
	s, h := ks.locate(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	st, _ := s.windowState(key, l)
	newSt, r := window.Decide(a, st, now, l, quantity)
	if !r.Limited {
		ks.saveWindow(s, key, h, newSt, a, l, now)
	}
	return r
}

// WindowCheck is one limit of a multi-limit window request.
type WindowCheck struct {
	Key   []byte
	Limit window.Limit
}

// TakeMulti applies one request of quantity to every check atomically, as
// ThrottleMulti does: admitted only when every check admits, and then all
// are charged; refused, nothing is, and the checks that would have
// admitted report their state as it stands. results must have len(checks)
// elements. The distinct shards are locked in ascending order.
func (ks *Keyspace) TakeMulti(a window.Algorithm, checks []WindowCheck, now int64, quantity int64, results []gcra.Result) (limited bool) {
	hashes := make([]uint64, len(checks))
	order := make([]uint64, len(checks))
	for i, c := range checks {
		hashes[i] = ks.hash(c.Key)
		order[i] = hashes[i] & ks.mask
	}
	defer ks.unlockShards(ks.lockShards(order))
	shardOf := func(i int) *shard { return &ks.shards[hashes[i]&ks.mask] }
	states := make([]window.State, len(checks))
	type keyPeriod struct {
		key    string
		period int64
	}
	last := make(map[keyPeriod]int, len(checks)) // a key named twice sees the earlier charge
	for i, c := range checks {
		kp := keyPeriod{string(c.Key), c.Limit.Period()}
		var st window.State
		if j, ok := last[kp]; ok {
			st = states[j]
		} else {
			st, _ = shardOf(i).windowState(c.Key, c.Limit)
		}
		last[kp] = i
		states[i], results[i] = window.Decide(a, st, now, c.Limit, quantity)
		limited = limited || results[i].Limited
	}
	if limited {
		for i, c := range checks {
			if !results[i].Limited {
				st, _ := shardOf(i).windowState(c.Key, c.Limit)
				_, results[i] = window.Decide(a, st, now, c.Limit, 0)
			}
		}
		return true
	}
	for i, c := range checks {
		ks.saveWindow(shardOf(i), c.Key, hashes[i], states[i], a, c.Limit, now)
	}
	return false
}

// windowState returns key's counters for limit l, or the zero State, and
// whether the key holds window state at all. Called with s.mu held.
func (s *shard) windowState(key []byte, l window.Limit) (window.State, bool) {
	e, ok := s.windows[string(key)]
	if !ok || e.period != l.Period() {
		return window.State{}, ok
	}
	return e.st, true
}

// saveWindow stores st, or drops the key's window state when st no longer
// matters; a new key also makes the shard examine a few others for expiry.
// Called with s.mu held.
func (ks *Keyspace) saveWindow(s *shard, key []byte, h uint64, st window.State, a window.Algorithm, l window.Limit, now int64) {
	exp := st.Expires(a, l)
	_, found := s.windows[string(key)]
	if exp <= now {
		if found {
			ks.removeWindow(s, key, h)
		}
		return
	}
	e := windowEntry{st: st, period: l.Period(), expires: exp}
	if !found {
		ks.sweepWindows(s, now, sampleOnWrite)
		if s.windows == nil {
			s.windows = map[string]windowEntry{}
		}
	}
	s.windows[string(key)] = e
	if !found {
		s.added(Window, key, h)
	}
	s.buf = appendWindow(s.buf[:0], e)
	ks.record(Change{Op: Set, Kind: Window, Created: !found, Key: key, Expires: exp, Value: s.buf})
}

// removeWindow drops key's window state and journals it. Called with s.mu
// held.
func (ks *Keyspace) removeWindow(s *shard, key []byte, h uint64) {
	delete(s.windows, string(key))
	ks.record(Change{Op: Delete, Kind: Window, Key: key})
	s.removed(Window, key, h)
}

// sweepWindows examines up to budget window keys, starting at a random one
// (Go's map iteration order), and removes those expired at now. Called
// with s.mu held.
func (ks *Keyspace) sweepWindows(s *shard, now int64, budget int) int {
	n, removed := 0, 0
	for k, e := range s.windows {
		if n >= budget {
			break
		}
		n++
		if e.expires <= now {
			key := []byte(k)
			ks.removeWindow(s, key, ks.hash(key))
			removed++
		}
	}
	return removed
}
