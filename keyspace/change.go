package keyspace

// Kind is what a piece of a key's state is for. One key name may hold state
// of several kinds at once (THROTTLE and THROTTLE.WINDOW on the same name
// keep separate counters); DEL, EXISTS, TTL and DBSIZE see the key as one.
type Kind uint8

// The kinds of state.
const (
	// GCRA is a theoretical arrival time (THROTTLE, CL.THROTTLE,
	// THROTTLE.MULTI, GCRA policies). It is its own expiry: Change.Value
	// is empty.
	GCRA Kind = 1
	// Window is a window counter (THROTTLE.WINDOW, window policies).
	Window Kind = 2
	// Lease is a key's set of concurrency leases (LEASE.*).
	Lease Kind = 3
	// Counter is an expiring counter (COUNTER.*): the fixed window of the
	// limits library, express-rate-limit and httprate.
	Counter Kind = 4
	// Log is a sliding log (SLIDINGLOG.*): the instants of the requests
	// admitted within a period, the limits library's moving window.
	Log Kind = 5
)

// lastKind is the largest Kind.
const lastKind = Log

// Valid reports whether k is one of the kinds above (a stream read from
// disk or a network may hold anything).
func (k Kind) Valid() bool { return k >= GCRA && k <= lastKind }

// String names the kind as INFO and logs spell it.
func (k Kind) String() string {
	switch k {
	case GCRA:
		return "gcra"
	case Window:
		return "window"
	case Lease:
		return "lease"
	case Counter:
		return "counter"
	case Log:
		return "log"
	}
	return "unknown"
}

// Op is what a Change does.
type Op uint8

// The operations of the change stream.
const (
	// Set says Key now holds Value, of Kind, until Expires.
	Set Op = 1
	// Delete says Key no longer holds state of Kind.
	Delete Op = 2
	// Flush says every key lost its state of every kind (FLUSHALL).
	Flush Op = 3
)

// String names the operation.
func (o Op) String() string {
	switch o {
	case Set:
		return "set"
	case Delete:
		return "delete"
	case Flush:
		return "flush"
	}
	return "unknown"
}

// Change is one entry of the keyspace's change stream: every change to any
// kind of state is one Change, delivered to the [Journal] in the order the
// changes happened to each key (changes to one key never overtake each
// other; a Flush is ordered against every key). Recovery from disk and,
// later, following a primary apply the same stream with
// [Keyspace.Restore].
type Change struct {
	Op   Op
	Kind Kind // Set and Delete
	// Created is set on a Set when the key held no state of Kind just
	// before it: a consumer may then know there is nothing older of the
	// key's to remove should the key be deleted again.
	Created bool
	// Key is the key; it is only valid during Journal.Record.
	Key []byte
	// Expires is when the state stops mattering, in Unix nanoseconds (for
	// GCRA it is the TAT itself). Set only.
	Expires int64
	// Value is the encoded state of Kind besides its expiry: empty for
	// GCRA, the counters for Window, the leases for Lease, the value for
	// Counter, the entries for Log. The keyspace
	// alone knows the encoding; consumers store and return it as bytes.
	// It is only valid during Journal.Record.
	Value []byte
}

// Journal receives the change stream. Record is called while the changed
// key's shard lock is held (every shard lock, for a Flush), so it must be
// quick, must not call back into the keyspace, and must copy what it keeps.
// Persistence implements it; replication consumes the same stream.
type Journal interface {
	Record(c Change)
}

// Tee returns a Journal that hands every change to each of journals, in
// the order given, within the one Record call (so under the same shard
// lock, and in the same order for all of them). Nil journals are skipped;
// with none left Tee returns nil, with one it returns that one.
func Tee(journals ...Journal) Journal {
	var js tee
	for _, j := range journals {
		if j != nil {
			js = append(js, j)
		}
	}
	switch len(js) {
	case 0:
		return nil
	case 1:
		return js[0]
	}
	return js
}

// tee is a Journal fanning each change out to several.
type tee []Journal

// Record hands c to every journal of t in turn.
func (t tee) Record(c Change) {
	for _, j := range t {
		j.Record(c)
	}
}
