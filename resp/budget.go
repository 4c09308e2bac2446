package resp

import (
	"errors"
	"sync/atomic"
)

// DefaultMaxQueryBufferTotal is the default of Server.MaxQueryBufferTotal:
// 256 MiB of grown read buffers over all connections.
const DefaultMaxQueryBufferTotal = 256 << 20

// errQueryBudget is why a read buffer could not grow: all connections'
// grown buffers together would pass MaxQueryBufferTotal. The connection is
// closed.
var errQueryBudget = errors.New("resp: query buffers of all connections at their total bound")

// queryBudget is the bytes every connection's read buffer holds beyond
// the initial size each starts with, against a bound shared by all of
// them. A nil budget bounds nothing (a reader outside a Server).
type queryBudget struct {
	limit int64
	used  atomic.Int64
}

// reserve takes n bytes from the budget, or reports that they would pass
// the bound (and takes nothing).
func (b *queryBudget) reserve(n int) bool {
	if b == nil {
		return true
	}
	if b.used.Add(int64(n)) > b.limit {
		b.used.Add(-int64(n))
		return false
	}
	return true
}

// give returns n bytes to the budget.
func (b *queryBudget) give(n int) {
	if b != nil && n != 0 {
		b.used.Add(-int64(n))
	}
}
