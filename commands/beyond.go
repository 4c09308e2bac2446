package commands

import (
	"runtime"
	"sync"
	"weak"
)

// beyondCommands declares the commands that go beyond redis-cell (multi-limit
// checks, named policies, other algorithms, concurrency leases). Their
// handlers live in the beyond_*.go files.
func beyondCommands() []*Command {
	return []*Command{
		multiCommand(),
	}
}

// beyond is the state of the commands beyond redis-cell that the GCRA table
// does not hold: the policies, the window counters and the leases. GCRA
// state (THROTTLE.MULTI, GCRA policies) lives in the server's gcra.Table.
type beyond struct {
}

// beyondStates maps each Server to its beyond state. The Server type is
// declared elsewhere; this side table keeps the beyond commands
// self-contained. Keys are weak, and an entry is removed when its Server is
// collected, so servers started by tests do not leak their state.
var beyondStates sync.Map // weak.Pointer[Server] -> *beyond

// beyondOf returns s's beyond state, creating it on first use.
func beyondOf(s *Server) *beyond {
	w := weak.Make(s)
	if v, ok := beyondStates.Load(w); ok {
		return v.(*beyond)
	}
	v, loaded := beyondStates.LoadOrStore(w, newBeyond())
	if !loaded {
		runtime.AddCleanup(s, func(w weak.Pointer[Server]) { beyondStates.Delete(w) }, w)
	}
	return v.(*beyond)
}

func newBeyond() *beyond {
	return &beyond{}
}
