package commands

import (
	"errors"

	"github.com/sluicehq/sluice/acl"
	"github.com/sluicehq/sluice/topkeys"
)

// What the status page on the metrics listener (package server) asks of
// the command server: the same authentication as AUTH, and THROTTLE.TOP's
// answer for a user.

// ErrTopKeysOff is TopKeysFor's error when decisions are not recorded.
var ErrTopKeysOff = errors.New("top keys are not recorded (top-keys is off)")

// ErrNoPermission is TopKeysFor's error for a user who may not run
// THROTTLE.TOP.
var ErrNoPermission = errors.New("the user may not run THROTTLE.TOP")

// Authenticate checks a user name and password given outside RESP (the
// status page's HTTP Basic authentication) by a client at addr
// ("host:port"), under the guard AUTH uses: an address that failed too
// often waits, or is refused without its password being checked. Failures
// count in INFO's and the metrics' auth failures. It returns the user, or
// nil.
func (s *Server) Authenticate(addr, name, password string) *acl.User {
	a := authAddr(addr)
	wait, ok := s.authGuard.admit(a, s.clock.Now())
	var u *acl.User
	if ok {
		if wait > 0 {
			s.cfg.Sleep(wait)
		}
		u = s.cfg.Users.Authenticate([]byte(name), []byte(password))
		s.authGuard.finish(a, s.clock.Now(), u == nil)
	}
	if u == nil {
		s.authFailures.Add(1)
	}
	return u
}

// TopKeysFor answers q as THROTTLE.TOP would for user u: u must be allowed
// to run it, and sees only the keys its ACL key patterns allow. A nil u
// sees every key (the page served to loopback clients of a server without
// passwords).
func (s *Server) TopKeysFor(u *acl.User, q topkeys.Query) (topkeys.Result, error) {
	if s.top == nil {
		return topkeys.Result{}, ErrTopKeysOff
	}
	if u != nil {
		if !u.CanRun(s.cmds.byName["throttle.top"].acl) {
			return topkeys.Result{}, ErrNoPermission
		}
		if !u.AllKeys() {
			q.Accept = func(k []byte, truncated bool) bool { return !truncated && u.CanAccess(k) }
		}
	}
	return s.top.Top(q), nil
}
