package acl

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Users is the set of accounts. The "default" user always exists: connections
// start as it, and it is the user of a one-argument AUTH.
type Users struct {
	byName  map[string]*User
	defined map[string]bool // the names Load defined
}

// NewUsers returns the accounts for a server whose default user has the
// given password, or no password at all when it is empty.
func NewUsers(requirepass string) *Users {
	u := &User{Name: "default", Enabled: true, allKeys: true}
	_ = u.apply("allcommands", nil)
	if requirepass == "" {
		u.NoPass = true
	} else {
		_ = u.apply(">"+requirepass, nil)
	}
	return &Users{byName: map[string]*User{"default": u}, defined: map[string]bool{}}
}

// Load adds users from an ACL file, or replaces the default user: one
// "user <name> <rule>..." per line; blank lines and lines starting with '#'
// are skipped. A rule naming a command or category that cat does not know
// is refused (ErrUnknownRule), and so is a name defined twice. Every
// problem is reported, with its line number; when there is one, no user is
// added or replaced.
func (us *Users) Load(r io.Reader, cat Catalog) error {
	sc := bufio.NewScanner(r)
	var errs []error
	loaded := map[string]*User{}
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if f[0] != "user" || len(f) < 2 {
			errs = append(errs, fmt.Errorf("line %d: want \"user <name> <rules...>\"", n))
			continue
		}
		if loaded[f[1]] != nil {
			errs = append(errs, fmt.Errorf("line %d: duplicate user %q", n, f[1]))
			continue
		}
		u := &User{Name: f[1]}
		for _, tok := range f[2:] {
			if err := u.apply(tok, cat); err != nil {
				errs = append(errs, fmt.Errorf("line %d: %w", n, err))
			}
		}
		loaded[u.Name] = u
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for name, u := range loaded {
		us.byName[name] = u
		us.defined[name] = true
	}
	return nil
}

// Defines reports whether Load defined the user name.
func (us *Users) Defines(name string) bool { return us.defined[name] }

// OpenDefault reports whether a client that never authenticates can run
// more than the commands about its own connection: the default user is on,
// needs no password, and its rules allow a command of cat outside
// @connection.
func (us *Users) OpenDefault(cat Catalog) bool {
	d := us.Default()
	return d.Enabled && d.NoPass && cat.grantsMoreThanConnection(d)
}

// Default is the default user.
func (us *Users) Default() *User { return us.byName["default"] }

// AuthRequired reports whether new connections must authenticate: the
// default user has a password or is disabled.
func (us *Users) AuthRequired() bool {
	d := us.Default()
	return !d.Enabled || !d.NoPass
}

// Authenticate returns the enabled user the credentials name, or nil. An
// unknown name costs the same as a wrong password.
func (us *Users) Authenticate(name, pw []byte) *User {
	u := us.byName[string(name)]
	if u == nil {
		// Compare anyway so an unknown user costs the same as a wrong password.
		sum := sha256.Sum256(pw)
		subtle.ConstantTimeCompare(sum[:], sum[:])
		return nil
	}
	if !u.checkPassword(pw) {
		return nil
	}
	return u
}

// Sorted returns every user, sorted by name.
func (us *Users) Sorted() []*User {
	out := make([]*User, 0, len(us.byName))
	for _, u := range us.byName {
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
