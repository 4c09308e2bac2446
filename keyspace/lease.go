package keyspace

import (
	crand "crypto/rand"
	"encoding/binary"
	"math/rand/v2"
	"sync"

	"github.com/sluicehq/sluice/lease"
)

// Acquire takes a lease on key for ttl nanoseconds (see lease.TTL) when
// fewer than max unexpired leases are held at now.
func (ks *Keyspace) Acquire(key []byte, now, max, ttl int64) (lease.Result, error) {
	if max < 1 {
		return lease.Result{}, lease.ErrMax
	}
	s, h := ks.locate(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	ls, found := s.leases[string(key)]
	ls = lease.Live(ls, now)
	id := int64(-1)
	if lease.Free(ls, max) {
		id = ks.newLeaseID(s, ls)
	}
	ls, r := lease.Acquire(ls, now, max, ttl, id)
	ks.saveLeases(s, key, h, ls, found, r.Acquired, now)
	return r, nil
}

// Release ends lease id on key. It reports whether the lease was held (not
// already released or expired) and how many leases remain in flight.
func (ks *Keyspace) Release(key []byte, id, now int64) (released bool, inFlight int64) {
	s, h := ks.locate(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	ls, found := s.leases[string(key)]
	ls, released = lease.Release(lease.Live(ls, now), id)
	ks.saveLeases(s, key, h, ls, found, released, now)
	return released, int64(len(ls))
}

// Renew makes lease id on key expire ttl nanoseconds after now. It reports
// whether the lease was still held (a lease that expired or was released
// cannot be renewed: acquire again) and how many are in flight.
func (ks *Keyspace) Renew(key []byte, id, now, ttl int64) (renewed bool, inFlight int64) {
	s, h := ks.locate(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	ls, found := s.leases[string(key)]
	ls = lease.Live(ls, now)
	renewed = lease.Renew(ls, id, now, ttl)
	ks.saveLeases(s, key, h, ls, found, renewed, now)
	return renewed, int64(len(ls))
}

// InFlight counts key's unexpired leases at now.
func (ks *Keyspace) InFlight(key []byte, now int64) int64 {
	s, _ := ks.locate(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	n := int64(0)
	for _, l := range s.leases[string(key)] {
		if l.Expires > now {
			n++
		}
	}
	return n
}

// newLeaseID draws a lease ID for a key of s whose live leases are live:
// random in 1..lease.MaxID and held by none of them (see lease.NewID). The
// generator is per shard, used under its lock: ChaCha8 costs a few
// nanoseconds where reading crypto/rand costs ~180 ns, and its output is
// as unpredictable as its seed, 32 bytes from crypto/rand. Called with
// s.mu held.
func (ks *Keyspace) newLeaseID(s *shard, live []lease.Lease) int64 {
	if f := ks.fixedLeaseIDs.Load(); f != nil {
		f.mu.Lock()
		defer f.mu.Unlock()
		return lease.NewID(live, f.src)
	}
	if s.leaseIDs == nil {
		var seed [32]byte
		_, _ = crand.Read(seed[:]) // never fails (it crashes the program instead)
		s.leaseIDs = rand.NewChaCha8(seed)
	}
	return lease.NewID(live, s.leaseIDs)
}

// fixedLeaseIDs is the one generator of every shard once FixLeaseIDs was
// called: IDs then follow the order of the acquisitions, whatever shards
// their keys hash to.
type fixedLeaseIDs struct {
	mu  sync.Mutex
	src *rand.ChaCha8
}

// FixLeaseIDs makes lease IDs a fixed sequence drawn from seed in the order
// leases are acquired, so that tests and specification files can name the
// IDs they will be given. A server never calls it: its IDs are
// unpredictable.
func (ks *Keyspace) FixLeaseIDs(seed uint64) {
	var b [32]byte
	binary.LittleEndian.PutUint64(b[:], seed)
	ks.fixedLeaseIDs.Store(&fixedLeaseIDs{src: rand.NewChaCha8(b)})
}

// saveLeases stores ls, the key's live leases after a call, dropping the
// key when none is left, and journals it when it changed (changed: the
// call took, released or renewed one; leases that merely expired need no
// record, a restore drops them anyway). found says the key held leases
// before; a new key makes the shard examine a few others for expiry.
// Called with s.mu held.
func (ks *Keyspace) saveLeases(s *shard, key []byte, h uint64, ls []lease.Lease, found, changed bool, now int64) {
	switch {
	case len(ls) == 0:
		if found {
			ks.removeLeases(s, key, h)
		}
		return
	case found:
		s.leases[string(key)] = ls // Live may have shortened it in place
	default:
		ks.sweepLeases(s, now, sampleOnWrite)
		if s.leases == nil {
			s.leases = map[string][]lease.Lease{}
		}
		s.leases[string(key)] = ls
		s.added(Lease, key, h)
	}
	if changed {
		s.buf = lease.Encode(s.buf[:0], ls)
		ks.record(Change{Op: Set, Kind: Lease, Created: !found, Key: key, Expires: lease.Last(ls), Value: s.buf})
	}
}

// removeLeases drops key's leases and journals it. Called with s.mu held.
func (ks *Keyspace) removeLeases(s *shard, key []byte, h uint64) {
	delete(s.leases, string(key))
	ks.record(Change{Op: Delete, Kind: Lease, Key: key})
	s.removed(Lease, key, h)
}

// sweepLeases examines up to budget lease keys, starting at a random one,
// drops their expired leases and removes the keys left with none. Called
// with s.mu held.
func (ks *Keyspace) sweepLeases(s *shard, now int64, budget int) int {
	n, removed := 0, 0
	for k, ls := range s.leases {
		if n >= budget {
			break
		}
		n++
		if lease.Last(ls) <= now {
			key := []byte(k)
			ks.removeLeases(s, key, ks.hash(key))
			removed++
		} else if live := lease.Live(ls, now); len(live) != len(ls) {
			s.leases[k] = live
		}
	}
	return removed
}
