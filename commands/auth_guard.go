package commands

import (
	"net/netip"
	"sync"
	"time"
)

// Failed authentication is slowed per client address and capped per
// connection, so that passwords cannot be guessed at wire speed (Redis
// answers every AUTH at once; 355k guesses a second on one connection
// were measured against Sluice before this guard).
const (
	// authFreeFailures is how many failures an address makes before its
	// attempts wait: a mistyped password costs nothing.
	authFreeFailures = 10
	// authFirstDelay is the wait after the free failures; it doubles with
	// every further failure up to authMaxDelay, so an address guessing
	// without pause settles at one attempt per authMaxDelay.
	authFirstDelay = 10 * time.Millisecond
	authMaxDelay   = time.Second
	// authMaxWait bounds how long an attempt queues behind the other
	// attempts of its address (parallel connections wait in turn); one that
	// would wait longer is refused without its password being checked.
	authMaxWait = 5 * time.Second
	// authForget is how long an address must go without a failure for its
	// count to start again from zero.
	authForget = 10 * time.Minute
	// authConnFailures is how many failures a connection makes before it
	// is closed, after the reply to the last one.
	authConnFailures = 10
	// authMaxAddrs bounds the addresses remembered; beyond it, idle ones are
	// forgotten first, then any.
	authMaxAddrs = 1 << 16
)

// authGuard keeps, per client address, the failed authentications and when
// the next attempt may be checked. Times are the server clock's Unix
// nanoseconds. Safe for concurrent use.
type authGuard struct {
	mu    sync.Mutex
	addrs map[netip.Prefix]*authRecord
}

type authRecord struct {
	failures int   // since the last pause of authForget
	pending  int   // attempts admitted and not yet finished
	last     int64 // the last failure
	next     int64 // before this, attempts wait (see admit)
}

// authAddr is the key a client address is remembered under: the IPv4
// address, or the IPv6 /64 (one host usually holds a whole /64). An
// address that does not parse (a Unix socket) is one key for all.
func authAddr(addr string) netip.Prefix {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return netip.Prefix{}
	}
	ip := ap.Addr().Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

// admit reserves the turn of an attempt from addr at now: it returns how
// long the attempt must wait before its credentials are checked, or ok
// false when it would wait more than authMaxWait: it is refused unchecked.
// Attempts still being checked count as failures here, so that many
// connections trying at once do not all pass as free: the first
// authFreeFailures of an address wait nothing, the next ones wait their
// turns. Every admitted attempt must be finished.
func (g *authGuard) admit(addr netip.Prefix, now int64) (wait time.Duration, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.addrs[addr]
	if r != nil && r.pending == 0 && now-r.last >= int64(authForget) {
		r.failures = 0
	}
	if r == nil {
		if g.addrs == nil {
			g.addrs = map[netip.Prefix]*authRecord{}
		}
		if len(g.addrs) >= authMaxAddrs {
			g.evict(now)
		}
		r = &authRecord{}
		g.addrs[addr] = r
	}
	n := r.failures + r.pending
	if n < authFreeFailures {
		r.pending++
		return 0, true
	}
	turn := max(now, r.next)
	if turn-now > int64(authMaxWait) {
		return 0, false
	}
	r.next = turn + int64(authDelay(n))
	r.pending++
	return time.Duration(turn - now), true
}

// authDelay is the spacing between checked attempts of an address with
// failures failed ones: authFirstDelay doubled per failure beyond the free
// ones, at most authMaxDelay.
func authDelay(failures int) time.Duration {
	n := failures - authFreeFailures
	if n >= 20 {
		return authMaxDelay
	}
	return min(authFirstDelay<<n, authMaxDelay)
}

// finish ends an admitted attempt from addr at now, failed or not. An
// address with nothing pending and no failure is forgotten.
func (g *authGuard) finish(addr netip.Prefix, now int64, failed bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.addrs[addr]
	if r == nil {
		return // evicted meanwhile
	}
	r.pending--
	if failed {
		r.failures++
		r.last = now
	}
	if r.pending == 0 && r.failures == 0 {
		delete(g.addrs, addr)
	}
}

// evict forgets the addresses without pending attempts and idle for
// authForget, or, when none is, any address without pending attempts (the
// map's iteration order picks it), or at worst any one. Called with g.mu
// held.
func (g *authGuard) evict(now int64) {
	for a, r := range g.addrs {
		if r.pending == 0 && now-r.last >= int64(authForget) {
			delete(g.addrs, a)
		}
	}
	for a, r := range g.addrs {
		if len(g.addrs) < authMaxAddrs {
			return
		}
		if r.pending == 0 {
			delete(g.addrs, a)
		}
	}
	for a := range g.addrs {
		if len(g.addrs) < authMaxAddrs {
			return
		}
		delete(g.addrs, a)
	}
}
