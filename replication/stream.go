package replication

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/sluicehq/sluice/keyspace"
)

// The replication stream is a sequence of records, each starting with a
// tag byte. Offsets count the stream's bytes, as Redis's
// master_repl_offset does, so every node of a chain that mirrors the same
// bytes agrees on them. A record:
//
//	'S' kind uvarint(len key) key expires(8, little endian) uvarint(len value) value   a Set
//	'D' kind uvarint(len key) key                                                      a Delete
//	'F'                                                                                a Flush
//	'P' clock(8, little endian)       a heartbeat: the primary's wall clock, Unix ns
//	'A'                               GETACK: the replica acknowledges its offset now
//
// A full resynchronisation's snapshot is a sequence of 'S' records.
const (
	tagSet    byte = 'S'
	tagDelete byte = 'D'
	tagFlush  byte = 'F'
	tagPing   byte = 'P'
	tagGetAck byte = 'A'
)

// maxField bounds a key or value length a decoder accepts: far above any
// key a client can send (--proto-max-bulk-len) or any lease set, low
// enough that a corrupt length is found at once instead of buffering
// forever.
const maxField = 64 << 20

// errCorrupt is a stream the decoder cannot read.
var errCorrupt = errors.New("replication stream corrupt")

// appendChange appends c's record to b.
func appendChange(b []byte, c keyspace.Change) []byte {
	switch c.Op {
	case keyspace.Set:
		b = append(b, tagSet, byte(c.Kind))
		b = binary.AppendUvarint(b, uint64(len(c.Key)))
		b = append(b, c.Key...)
		b = binary.LittleEndian.AppendUint64(b, uint64(c.Expires))
		b = binary.AppendUvarint(b, uint64(len(c.Value)))
		return append(b, c.Value...)
	case keyspace.Delete:
		b = append(b, tagDelete, byte(c.Kind))
		b = binary.AppendUvarint(b, uint64(len(c.Key)))
		return append(b, c.Key...)
	case keyspace.Flush:
		return append(b, tagFlush)
	}
	panic(fmt.Sprintf("replication: change with unknown op %d", c.Op))
}

// appendPing appends a heartbeat carrying the sender's wall clock.
func appendPing(b []byte, unixNanos int64) []byte {
	return binary.LittleEndian.AppendUint64(append(b, tagPing), uint64(unixNanos))
}

// record is one decoded record. Change's Key and Value alias the decoded
// bytes.
type record struct {
	tag    byte
	change keyspace.Change // tagSet, tagDelete, tagFlush
	clock  int64           // tagPing
}

// decodeRecord decodes the record at the start of b. It returns the
// number of bytes it took, 0 when b holds only part of a record, or
// errCorrupt.
func decodeRecord(b []byte) (record, int, error) {
	if len(b) == 0 {
		return record{}, 0, nil
	}
	switch tag := b[0]; tag {
	case tagFlush:
		return record{tag: tag, change: keyspace.Change{Op: keyspace.Flush}}, 1, nil
	case tagGetAck:
		return record{tag: tag}, 1, nil
	case tagPing:
		if len(b) < 9 {
			return record{}, 0, nil
		}
		return record{tag: tag, clock: int64(binary.LittleEndian.Uint64(b[1:]))}, 9, nil
	case tagSet, tagDelete:
		if len(b) < 2 {
			return record{}, 0, nil
		}
		kind := keyspace.Kind(b[1])
		if !kind.Valid() {
			return record{}, 0, fmt.Errorf("%w: kind %d", errCorrupt, kind)
		}
		key, n, err := field(b, 2)
		if n == 0 || err != nil {
			return record{}, 0, err
		}
		if tag == tagDelete {
			return record{tag: tag, change: keyspace.Change{Op: keyspace.Delete, Kind: kind, Key: key}}, n, nil
		}
		if len(b) < n+8 {
			return record{}, 0, nil
		}
		expires := int64(binary.LittleEndian.Uint64(b[n:]))
		value, end, err := field(b, n+8)
		if end == 0 || err != nil {
			return record{}, 0, err
		}
		c := keyspace.Change{Op: keyspace.Set, Kind: kind, Key: key, Expires: expires, Value: value}
		return record{tag: tag, change: c}, end, nil
	default:
		return record{}, 0, fmt.Errorf("%w: tag %q", errCorrupt, tag)
	}
}

// field decodes the length-prefixed field at b[at:], returning it and the
// offset just past it, or end 0 when b holds only part of it.
func field(b []byte, at int) (f []byte, end int, err error) {
	n, w := binary.Uvarint(b[at:])
	switch {
	case w == 0:
		return nil, 0, nil
	case w < 0 || n > maxField:
		return nil, 0, fmt.Errorf("%w: field length", errCorrupt)
	}
	start := at + w
	if uint64(len(b)-start) < n {
		return nil, 0, nil
	}
	end = start + int(n)
	return b[start:end:end], end, nil
}
