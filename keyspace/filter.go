package keyspace

// EachKey calls fn once with the name of every key holding state of any
// kind, one shard at a time under that shard's lock: fn must be quick and
// must copy a key it keeps. It visits every key, so it costs O(keys); the
// cluster's per-slot commands use it rather than keep an index that every
// THROTTLE would pay for.
func (ks *Keyspace) EachKey(fn func(key []byte)) {
	for i := range ks.shards {
		s := &ks.shards[i]
		s.mu.Lock()
		s.eachKey(ks, fn)
		s.mu.Unlock()
	}
}

// eachKey calls fn with each name of s once, whatever kinds it holds.
// Called with s.mu held.
func (s *shard) eachKey(ks *Keyspace, fn func(key []byte)) {
	s.tats.Range(func(key []byte, _ int64) { fn(key) })
	for k := range s.windows {
		if _, ok := s.tats.Find([]byte(k), ks.hash([]byte(k))); !ok {
			fn([]byte(k))
		}
	}
	for k := range s.leases {
		if _, ok := s.windows[k]; ok {
			continue
		}
		if _, ok := s.tats.Find([]byte(k), ks.hash([]byte(k))); !ok {
			fn([]byte(k))
		}
	}
}

// DeleteIf removes every kind of state of the keys of shard i (0 to
// Shards()-1) for which drop reports true, and returns how many keys it
// removed. drop runs under the shard's lock, so it must be quick; the keys
// are then deleted one by one as Delete does (each change journalled), so
// commands on the shard wait at most one scan of it. A cluster node that
// loses slots calls it shard by shard, in the background.
func (ks *Keyspace) DeleteIf(i int, drop func(key []byte) bool, now int64) int {
	s := &ks.shards[i]
	var doomed [][]byte
	s.mu.Lock()
	s.eachKey(ks, func(key []byte) {
		if drop(key) {
			doomed = append(doomed, append([]byte(nil), key...))
		}
	})
	s.mu.Unlock()
	for _, key := range doomed {
		ks.Delete(key, now)
	}
	return len(doomed)
}
