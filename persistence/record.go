package persistence

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/sluicehq/sluice/keyspace"
)

// Record journals one change of the keyspace. It implements
// keyspace.Journal and is called under the changed key's shard lock (every
// shard lock, for a Flush), so the changes of one key arrive in order. It
// does no I/O and, in steady state, no allocation: it copies the change
// into the pending log and wakes the writer. It blocks only while
// MaxPending bytes already wait for a writer that cannot keep up. Once the
// store has failed or Close has begun the change is dropped and counted
// (see Wait). A Change whose Op or Kind this package does not know is a
// bug in the caller: Record panics.
func (s *Store) Record(c keyspace.Change) {
	var code byte
	switch c.Op {
	case keyspace.Set, keyspace.Delete:
		if code = kindCode(c.Kind); code == 0 {
			panic(fmt.Sprintf("persistence: a change of unknown kind %d", c.Kind))
		}
	case keyspace.Flush:
	default:
		panic(fmt.Sprintf("persistence: a change with unknown op %d", c.Op))
	}
	s.mu.Lock()
	if !s.admit() {
		s.mu.Unlock()
		return
	}
	empty := s.pending.size == 0
	s.pending.append(c, code)
	switch c.Op {
	case keyspace.Set:
		s.keysWritten.Add(1)
	case keyspace.Delete:
		s.keysDeleted.Add(1)
	default:
		s.flushes.Add(1)
	}
	s.seq++
	s.recorded.Store(s.seq)
	s.mu.Unlock()
	if empty {
		s.wake()
	}
}

// admit waits for room in the pending log and reports whether a change may
// be appended; a change that may not is counted as dropped. Called with
// s.mu held.
func (s *Store) admit() bool {
	for s.pending.size >= s.maxPending && !s.closing && !s.failed.Load() {
		s.room.Wait()
	}
	if s.closing || s.failed.Load() {
		s.dropped.Add(1)
		return false
	}
	return true
}

// wake tells the writer that the pending log is no longer empty.
func (s *Store) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Recorded is how many changes have been handed to the store so far,
// whether it kept them or, failed or closed, dropped them: a caller that
// sees it move made a change, and Wait then tells whether it is durable.
func (s *Store) Recorded() uint64 { return s.recorded.Load() + s.dropped.Load() }

// RecordAux journals an auxiliary field of the data, name = value, in
// order with the changes: a field recorded after a change is never on
// disk without that change, so it can describe what the data holds (a
// replica records the replication stream's ID and the offset it applied,
// as Redis keeps repl-id and repl-offset among its RDB's aux fields). The
// last value recorded for a name is folded into Pebble and read back by
// Aux after the next Open. Like Record it does no I/O; it is dropped once
// the store has failed or Close has begun, and counts as no change.
func (s *Store) RecordAux(name string, value []byte) {
	s.mu.Lock()
	if !s.admit() {
		s.mu.Unlock()
		return
	}
	empty := s.pending.size == 0
	s.pending.appendAux(name, value)
	s.mu.Unlock()
	if empty {
		s.wake()
	}
}

// The pending log's encoding of a change, which is also the journal's (a
// journal record is a run of them). A key or value is a uvarint length and
// its bytes, a kind its one-byte code (see kindCode), an expiry 8 bytes
// big-endian:
//
//	set     opSet|createdFlag?  kind  key  expires  value
//	delete  opDelete            kind  key
//	flush   opFlush
//	aux     opAux               name  value     (RecordAux)
const (
	opSet    byte = 1
	opDelete byte = 2
	opFlush  byte = 3
	opAux    byte = 4
	// createdFlag marks a set whose Change was Created.
	createdFlag byte = 0x80
)

const (
	chunkSize     = 64 << 10 // pending log chunk
	maxFreeChunks = 64       // chunks kept for reuse (4 MiB)
)

// pendingLog is the encoded changes waiting for the writer, in chunks, so
// that appending never copies what is already buffered however far the
// writer falls behind. A change never spans two chunks. It is not safe for
// concurrent use: Store.mu guards it.
type pendingLog struct {
	chunks [][]byte
	size   int      // bytes in chunks
	free   [][]byte // drained chunks of chunkSize, for reuse
}

// tail returns the last chunk, first adding one when it has less than n
// bytes of room.
func (p *pendingLog) tail(n int) *[]byte {
	if k := len(p.chunks); k > 0 && cap(p.chunks[k-1])-len(p.chunks[k-1]) >= n {
		return &p.chunks[k-1]
	}
	var c []byte
	if k := len(p.free); k > 0 && n <= chunkSize {
		c, p.free = p.free[k-1], p.free[:k-1]
	} else {
		c = make([]byte, 0, max(n, chunkSize))
	}
	p.chunks = append(p.chunks, c)
	return &p.chunks[len(p.chunks)-1]
}

// append encodes c, whose kind has code (unused for a flush).
func (p *pendingLog) append(c keyspace.Change, code byte) {
	if c.Op == keyspace.Flush {
		t := p.tail(1)
		*t = append(*t, opFlush)
		p.size++
		return
	}
	t := p.tail(2 + 2*binary.MaxVarintLen64 + len(c.Key) + 8 + len(c.Value))
	n := len(*t)
	op := opDelete
	if c.Op == keyspace.Set {
		op = opSet
		if c.Created {
			op |= createdFlag
		}
	}
	*t = append(*t, op, code)
	*t = binary.AppendUvarint(*t, uint64(len(c.Key)))
	*t = append(*t, c.Key...)
	if c.Op == keyspace.Set {
		*t = binary.BigEndian.AppendUint64(*t, uint64(c.Expires))
		*t = binary.AppendUvarint(*t, uint64(len(c.Value)))
		*t = append(*t, c.Value...)
	}
	p.size += len(*t) - n
}

// appendAux encodes an auxiliary field.
func (p *pendingLog) appendAux(name string, value []byte) {
	t := p.tail(1 + 2*binary.MaxVarintLen64 + len(name) + len(value))
	n := len(*t)
	*t = append(*t, opAux)
	*t = binary.AppendUvarint(*t, uint64(len(name)))
	*t = append(*t, name...)
	*t = binary.AppendUvarint(*t, uint64(len(value)))
	*t = append(*t, value...)
	p.size += len(*t) - n
}

// take hands over the chunks, leaving the log empty; dst's storage is
// reused for the log's next chunk list.
func (p *pendingLog) take(dst [][]byte) [][]byte {
	out := p.chunks
	p.chunks, p.size = dst[:0], 0
	return out
}

// recycle keeps drained chunks for reuse and clears the list.
func (p *pendingLog) recycle(chunks [][]byte) {
	for i, c := range chunks {
		if cap(c) == chunkSize && len(p.free) < maxFreeChunks {
			p.free = append(p.free, c[:0])
		}
		chunks[i] = nil
	}
}

// errCorrupt says a journal record does not decode.
var errCorrupt = errors.New("corrupt journal record")

// decode calls fn with every change encoded in b, in order, stopping at the
// first error, and skips auxiliary fields. The Change's Key and Value alias
// b.
func decode(b []byte, fn func(c keyspace.Change) error) error { return decodeAux(b, fn, nil) }

// decodeAux is decode that also calls aux, when not nil, with every
// auxiliary field, in order with the changes. name and value alias b.
func decodeAux(b []byte, fn func(c keyspace.Change) error, aux func(name, value []byte) error) error {
	for p := 0; p < len(b); {
		op := b[p]
		p++
		if op == opFlush {
			if err := fn(keyspace.Change{Op: keyspace.Flush}); err != nil {
				return err
			}
			continue
		}
		if op == opAux {
			var name, value []byte
			var err error
			if name, p, err = field(b, p); err != nil {
				return err
			}
			if value, p, err = field(b, p); err != nil {
				return err
			}
			if aux != nil {
				if err := aux(name, value); err != nil {
					return err
				}
			}
			continue
		}
		c := keyspace.Change{Created: op&createdFlag != 0}
		switch op &^ createdFlag {
		case opSet:
			c.Op = keyspace.Set
		case opDelete:
			if c.Created {
				return fmt.Errorf("%w: operation %#x", errCorrupt, op)
			}
			c.Op = keyspace.Delete
		default:
			return fmt.Errorf("%w: operation %#x", errCorrupt, op)
		}
		if p >= len(b) {
			return fmt.Errorf("%w: truncated change", errCorrupt)
		}
		kind, ok := kindOfCode(b[p])
		if !ok {
			return fmt.Errorf("%w: kind %#x", errCorrupt, b[p])
		}
		c.Kind = kind
		p++
		var err error
		if c.Key, p, err = field(b, p); err != nil {
			return err
		}
		if c.Op == keyspace.Set {
			if len(b)-p < 8 {
				return fmt.Errorf("%w: truncated change", errCorrupt)
			}
			c.Expires = int64(binary.BigEndian.Uint64(b[p:]))
			if c.Value, p, err = field(b, p+8); err != nil {
				return err
			}
		}
		if err := fn(c); err != nil {
			return err
		}
	}
	return nil
}

// field reads the length-prefixed bytes at b[p:] and returns them and the
// position after them.
func field(b []byte, p int) ([]byte, int, error) {
	n, w := binary.Uvarint(b[p:])
	if w <= 0 || n > uint64(len(b)-p-w) {
		return nil, p, fmt.Errorf("%w: truncated change", errCorrupt)
	}
	p += w
	return b[p : p+int(n) : p+int(n)], p + int(n), nil
}
