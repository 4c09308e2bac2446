package commands

import (
	"github.com/sluicehq/sluice/lease"
	"github.com/sluicehq/sluice/resp"
)

// leaseCommands declares LEASE.ACQUIRE, LEASE.RELEASE and LEASE.RENEW.
func leaseCommands() []*Command {
	return []*Command{
		{Name: "lease.acquire", Arity: 4, Flags: FlagWrite | FlagDenyOOM | FlagFast,
			Categories: []string{"@write", "@fast", "@throttle"}, Group: "throttle", Since: "0.2.0",
			FirstKey: 1, LastKey: 1, Step: 1,
			Summary: "Takes a concurrency lease on a key when fewer than max are held; a lease expires after ttl_ms unless renewed. " +
				"Replies [limited, max, in_flight, free_after_ms, lease_id] (lease_id -1 when refused): the id is a random integer in 1..2^62, unguessable.",
			Complexity: "O(N) where N is the number of leases held on the key",
			Args:       []Arg{{Name: "key", Type: "key"}, {Name: "max", Type: "integer"}, {Name: "ttl_ms", Type: "integer"}},
			Handler:    leaseAcquire,
		},
		{Name: "lease.release", Arity: 3, Flags: FlagWrite | FlagFast,
			Categories: []string{"@write", "@fast", "@throttle"}, Group: "throttle", Since: "0.2.0",
			FirstKey: 1, LastKey: 1, Step: 1,
			Summary:    "Ends a lease. Replies [released (1, or 0 when it had expired or was released already), in_flight].",
			Complexity: "O(N) where N is the number of leases held on the key",
			Args:       []Arg{{Name: "key", Type: "key"}, {Name: "lease_id", Type: "integer"}},
			Handler:    leaseRelease,
		},
		{Name: "lease.renew", Arity: 4, Flags: FlagWrite | FlagFast,
			Categories: []string{"@write", "@fast", "@throttle"}, Group: "throttle", Since: "0.2.0",
			FirstKey: 1, LastKey: 1, Step: 1,
			Summary:    "Extends a held lease to expire ttl_ms from now. Replies [renewed (1, or 0 when it had expired or was released), in_flight].",
			Complexity: "O(N) where N is the number of leases held on the key",
			Args:       []Arg{{Name: "key", Type: "key"}, {Name: "lease_id", Type: "integer"}, {Name: "ttl_ms", Type: "integer"}},
			Handler:    leaseRenew,
		},
	}
}

// ceilMS rounds nanoseconds up to whole milliseconds, so a client that
// waits that long finds the slot free.
func ceilMS(ns int64) int64 { return (ns + 999_999) / 1_000_000 }

// leaseAcquire serves LEASE.ACQUIRE key max ttl_ms.
func leaseAcquire(s *Server, c *resp.Conn, args [][]byte) {
	v, err := parseInts(args[2:])
	if err != nil {
		c.WriteError(errorReply(err))
		return
	}
	if v[0] > s.cfg.MaxLeasesPerKey {
		c.WriteError(errLeaseMaxTooLarge(s.cfg.MaxLeasesPerKey))
		return
	}
	ttl, err := lease.TTL(v[1])
	if err != nil {
		c.WriteError(errorReply(err))
		return
	}
	r, err := s.keys.Acquire(args[1], s.now(c), v[0], ttl)
	if err != nil {
		c.WriteError(errorReply(err))
		return
	}
	c.WriteArray(5)
	c.WriteInt(int64(boolInt(!r.Acquired)))
	c.WriteInt(r.Max)
	c.WriteInt(r.InFlight)
	c.WriteInt(ceilMS(r.FreeAfter))
	c.WriteInt(r.ID)
}

// leaseRelease serves LEASE.RELEASE key lease_id.
func leaseRelease(s *Server, c *resp.Conn, args [][]byte) {
	id, err := parseInt(args[2])
	if err != nil {
		c.WriteError(errorReply(err))
		return
	}
	ok, n := s.keys.Release(args[1], id, s.now(c))
	c.WriteArray(2)
	c.WriteInt(int64(boolInt(ok)))
	c.WriteInt(n)
}

// leaseRenew serves LEASE.RENEW key lease_id ttl_ms.
func leaseRenew(s *Server, c *resp.Conn, args [][]byte) {
	v, err := parseInts(args[2:])
	if err != nil {
		c.WriteError(errorReply(err))
		return
	}
	ttl, err := lease.TTL(v[1])
	if err != nil {
		c.WriteError(errorReply(err))
		return
	}
	ok, n := s.keys.Renew(args[1], v[0], s.now(c), ttl)
	c.WriteArray(2)
	c.WriteInt(int64(boolInt(ok)))
	c.WriteInt(n)
}
