package commands

// beyondCommands declares the commands that go beyond redis-cell (multi-limit
// checks, named policies, other algorithms, concurrency leases).
func beyondCommands() []*Command { return nil }
