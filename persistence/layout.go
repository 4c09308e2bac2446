package persistence

import (
	"encoding/binary"
	"fmt"

	"github.com/sluicehq/sluice/keyspace"
)

// The Pebble key space. Each kind of state has its own prefix: a key's
// state of that kind is stored as prefix + key -> 8 bytes of big-endian
// Expires (absolute Unix nanoseconds, so it means the same after a restart)
// followed by the Change's Value (empty for GCRA). The marks under "m/"
// are the store's own.
const (
	gcraPrefix   = "g/"
	windowPrefix = "w/"
	leasePrefix  = "l/"
	// counterPrefix and logPrefix hold counters and sliding logs; a
	// directory of an earlier layout 5 simply has none.
	counterPrefix = "c/"
	logPrefix     = "s/"

	// auxPrefix holds the auxiliary fields (Store.RecordAux): auxPrefix +
	// name -> value.
	auxPrefix = "a/"

	// metaFormat holds the layout version.
	metaFormat = "m/format"
	// metaFolded holds the number of the first journal segment not yet
	// folded (8 bytes big-endian).
	metaFolded = "m/folded"
	// metaOpened holds the number of the last journal segment the writer
	// began (8 bytes big-endian): every segment from metaFolded to it must
	// be on disk, so a missing one is noticed.
	metaOpened = "m/opened"
)

// formatVersion is the only layout this package reads and writes (the
// prefixes and values above, the journal encoding in record.go). Earlier
// development builds stamped versions 1 to 4; a directory stamped with
// any other version is refused.
const formatVersion = "5"

// kinds lists every kind of state with its prefix, in the order Load
// restores them. The prefix's first byte is also the kind's code in the
// journal.
var kinds = [...]struct {
	kind   keyspace.Kind
	prefix string
}{
	{keyspace.GCRA, gcraPrefix},
	{keyspace.Window, windowPrefix},
	{keyspace.Lease, leasePrefix},
	{keyspace.Counter, counterPrefix},
	{keyspace.Log, logPrefix},
}

// kindPrefix is k's prefix, or "" for a kind this package does not know.
func kindPrefix(k keyspace.Kind) string {
	for _, e := range kinds {
		if e.kind == k {
			return e.prefix
		}
	}
	return ""
}

// kindCode is k's one-byte code in the journal (its prefix's first byte),
// or 0 for a kind this package does not know.
func kindCode(k keyspace.Kind) byte {
	if p := kindPrefix(k); p != "" {
		return p[0]
	}
	return 0
}

// kindOfCode is kindCode's inverse.
func kindOfCode(code byte) (keyspace.Kind, bool) {
	for _, e := range kinds {
		if e.prefix[0] == code {
			return e.kind, true
		}
	}
	return 0, false
}

// appendValue appends the stored value of a state: expires, then value.
func appendValue(dst []byte, expires int64, value []byte) []byte {
	return append(binary.BigEndian.AppendUint64(dst, uint64(expires)), value...)
}

// parseValue splits a stored value into its expiry and the Change's Value
// (aliasing v).
func parseValue(v []byte) (expires int64, value []byte, err error) {
	if len(v) < 8 {
		return 0, nil, fmt.Errorf("value of %d bytes, shorter than its expiry", len(v))
	}
	expires = int64(binary.BigEndian.Uint64(v))
	if expires <= 0 {
		return 0, nil, fmt.Errorf("expiry %d is not a time", expires)
	}
	return expires, v[8:], nil
}

// prefixEnd is the first key after every key starting with prefix (whose
// last byte is not 0xff: prefixes end in '/').
func prefixEnd(prefix string) []byte {
	end := []byte(prefix)
	end[len(end)-1]++
	return end
}
