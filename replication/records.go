package replication

import (
	"fmt"

	"github.com/sluicehq/sluice/keyspace"
)

// AppendRecord appends c, a Set or a Delete, to b in the stream's record
// encoding (see stream.go). Slot migration ships a slot's keys to another
// node in it: the same bytes a replica applies.
func AppendRecord(b []byte, c keyspace.Change) []byte { return appendChange(b, c) }

// DecodeRecords calls fn with each record of b, in order; b must hold
// only whole Set and Delete records. The Change's Key and Value alias b.
// It stops at fn's first error, and fails on a record cut short or of
// another kind.
func DecodeRecords(b []byte, fn func(keyspace.Change) error) error {
	for len(b) > 0 {
		r, n, err := decodeRecord(b)
		switch {
		case err != nil:
			return err
		case n == 0:
			return fmt.Errorf("%w: a record cut short", errCorrupt)
		case r.tag != tagSet && r.tag != tagDelete:
			return fmt.Errorf("%w: tag %q where a Set or a Delete was expected", errCorrupt, r.tag)
		}
		if err := fn(r.change); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}
