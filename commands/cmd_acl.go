package commands

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/sluicehq/sluice/resp"
)

// Authentication and authorisation replies, as Redis words them.
const (
	errNoAuth    = "NOAUTH Authentication required."
	errNoPermKey = "NOPERM No permissions to access a key"
)

func errNoPermCmd(user, cmd string) string {
	return fmt.Sprintf("NOPERM User %s has no permissions to run the '%s' command", user, cmd)
}

// User is one account: its passwords (as SHA-256 digests), the commands it
// may run and the key patterns it may touch. Rules use Redis's ACL syntax:
//
//	on | off            enable or disable the user
//	>password           add a password; #<sha256-hex> adds one by its digest
//	nopass              any password authenticates
//	~pattern            allow keys matching a glob; allkeys is ~*
//	+cmd | -cmd         allow or deny a command (or "client|setname")
//	+@cat | -@cat       allow or deny a category (@all, @throttle, @admin, @read, @write, @fast, @dangerous, ...)
//	allcommands         +@all; nocommands is -@all
type User struct {
	Name      string
	Enabled   bool
	NoPass    bool
	passwords [][sha256.Size]byte
	keys      []string
	allKeys   bool
	rules     []rule // evaluated in order, the last match wins
	allowAll  bool   // fast path: +@all with no later denials
}

type rule struct {
	allow    bool
	category string // without '@'; "all" for every command
	command  string // full name, e.g. "flushall" or "client|setname"
}

// apply parses one ACL rule.
func (u *User) apply(tok string) error {
	switch {
	case tok == "on":
		u.Enabled = true
	case tok == "off":
		u.Enabled = false
	case tok == "nopass":
		u.NoPass = true
		u.passwords = nil
	case tok == "resetpass":
		u.NoPass = false
		u.passwords = nil
	case strings.HasPrefix(tok, ">"):
		u.passwords = append(u.passwords, sha256.Sum256([]byte(tok[1:])))
		u.NoPass = false
	case strings.HasPrefix(tok, "#"):
		b, err := hex.DecodeString(tok[1:])
		if err != nil || len(b) != sha256.Size {
			return fmt.Errorf("user %s: %q is not a SHA-256 hex digest", u.Name, tok)
		}
		u.passwords = append(u.passwords, [sha256.Size]byte(b))
		u.NoPass = false
	case tok == "allkeys" || tok == "~*":
		u.allKeys = true
	case tok == "resetkeys":
		u.allKeys, u.keys = false, nil
	case strings.HasPrefix(tok, "~"):
		u.keys = append(u.keys, tok[1:])
	case tok == "allcommands":
		u.rules = append(u.rules, rule{allow: true, category: "all"})
	case tok == "nocommands":
		u.rules = append(u.rules, rule{allow: false, category: "all"})
	case strings.HasPrefix(tok, "+@") || strings.HasPrefix(tok, "-@"):
		u.rules = append(u.rules, rule{allow: tok[0] == '+', category: strings.ToLower(tok[2:])})
	case strings.HasPrefix(tok, "+") || strings.HasPrefix(tok, "-"):
		u.rules = append(u.rules, rule{allow: tok[0] == '+', command: strings.ToLower(tok[1:])})
	default:
		return fmt.Errorf("user %s: unknown ACL rule %q", u.Name, tok)
	}
	u.allowAll = len(u.rules) > 0 && u.rules[len(u.rules)-1].allow && u.rules[len(u.rules)-1].category == "all"
	return nil
}

// checkPassword compares pw with every password in constant time.
func (u *User) checkPassword(pw []byte) bool {
	if !u.Enabled {
		return false
	}
	if u.NoPass {
		return true
	}
	sum := sha256.Sum256(pw)
	ok := 0
	for i := range u.passwords {
		ok |= subtle.ConstantTimeCompare(sum[:], u.passwords[i][:])
	}
	return ok == 1
}

// canRun reports whether the user may run cmd.
func (u *User) canRun(cmd *Command) bool {
	if u.allowAll {
		return true
	}
	allowed := false
	for _, r := range u.rules {
		if r.matches(cmd) {
			allowed = r.allow
		}
	}
	return allowed
}

func (r rule) matches(cmd *Command) bool {
	if r.command != "" {
		return r.command == cmd.FullName() || (cmd.parent != nil && r.command == cmd.parent.Name)
	}
	if r.category == "all" {
		return true
	}
	for _, c := range cmd.Categories {
		if c[1:] == r.category {
			return true
		}
	}
	return false
}

// canAccess reports whether the user may touch key.
func (u *User) canAccess(key []byte) bool {
	if u.allKeys {
		return true
	}
	for _, p := range u.keys {
		if globMatch(p, key) {
			return true
		}
	}
	return false
}

// String renders the user as an ACL LIST line, passwords redacted.
func (u *User) String() string {
	parts := []string{"user", u.Name, map[bool]string{true: "on", false: "off"}[u.Enabled]}
	if u.NoPass {
		parts = append(parts, "nopass")
	}
	for range u.passwords {
		parts = append(parts, "#<redacted>")
	}
	if u.allKeys {
		parts = append(parts, "~*")
	} else {
		for _, k := range u.keys {
			parts = append(parts, "~"+k)
		}
	}
	if len(u.rules) == 0 {
		parts = append(parts, "-@all")
	}
	for _, r := range u.rules {
		sign := map[bool]string{true: "+", false: "-"}[r.allow]
		if r.command != "" {
			parts = append(parts, sign+r.command)
		} else {
			parts = append(parts, sign+"@"+r.category)
		}
	}
	return strings.Join(parts, " ")
}

// Users is the set of accounts. The "default" user always exists: connections
// start as it, and it is the user of a one-argument AUTH.
type Users struct {
	byName map[string]*User
}

// NewUsers returns the accounts for a server whose default user has the
// given password, or no password at all when it is empty.
func NewUsers(requirepass string) *Users {
	u := &User{Name: "default", Enabled: true, allKeys: true}
	_ = u.apply("allcommands")
	if requirepass == "" {
		u.NoPass = true
	} else {
		_ = u.apply(">" + requirepass)
	}
	return &Users{byName: map[string]*User{"default": u}}
}

// Load adds or replaces users from an ACL file: one "user <name> <rule>..."
// per line; blank lines and lines starting with '#' are skipped. Every
// problem is reported, with its line number.
func (us *Users) Load(r io.Reader) error {
	sc := bufio.NewScanner(r)
	var errs []string
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if f[0] != "user" || len(f) < 2 {
			errs = append(errs, fmt.Sprintf("line %d: want \"user <name> <rules...>\"", n))
			continue
		}
		u := &User{Name: f[1]}
		for _, tok := range f[2:] {
			if err := u.apply(tok); err != nil {
				errs = append(errs, fmt.Sprintf("line %d: %v", n, err))
			}
		}
		us.byName[u.Name] = u
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(errs) > 0 {
		return fmt.Errorf("acl file: %s", strings.Join(errs, "; "))
	}
	return nil
}

// Default is the default user.
func (us *Users) Default() *User { return us.byName["default"] }

// AuthRequired reports whether new connections must authenticate: the
// default user has a password or is disabled.
func (us *Users) AuthRequired() bool {
	d := us.Default()
	return !d.Enabled || !d.NoPass
}

// authenticate returns the user for the credentials, or nil.
func (us *Users) authenticate(name, pw []byte) *User {
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

func (us *Users) sorted() []*User {
	out := make([]*User, 0, len(us.byName))
	for _, u := range us.byName {
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// globMatch reports whether key matches a Redis-style glob: * ? [abc] [a-z]
// [^x] and backslash escapes. It does not allocate.
func globMatch(pattern string, key []byte) bool {
	p, k := 0, 0
	starP, starK := -1, 0
	for k < len(key) {
		if p < len(pattern) {
			switch c := pattern[p]; c {
			case '*':
				starP, starK = p, k
				p++
				continue
			case '?':
				p++
				k++
				continue
			case '[':
				if end, ok := matchClass(pattern, p, key[k]); ok {
					p = end
					k++
					continue
				}
			case '\\':
				if p+1 < len(pattern) && pattern[p+1] == key[k] {
					p += 2
					k++
					continue
				}
			default:
				if c == key[k] {
					p++
					k++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		starK++
		p, k = starP+1, starK
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// matchClass matches b against the class starting at pattern[p] == '[' and
// returns the index after the class.
func matchClass(pattern string, p int, b byte) (int, bool) {
	i := p + 1
	neg := i < len(pattern) && pattern[i] == '^'
	if neg {
		i++
	}
	matched := false
	for ; i < len(pattern) && pattern[i] != ']'; i++ {
		switch {
		case pattern[i] == '\\' && i+1 < len(pattern):
			i++
			matched = matched || pattern[i] == b
		case i+2 < len(pattern) && pattern[i+1] == '-' && pattern[i+2] != ']':
			lo, hi := pattern[i], pattern[i+2]
			if lo > hi {
				lo, hi = hi, lo
			}
			matched = matched || (lo <= b && b <= hi)
			i += 2
		default:
			matched = matched || pattern[i] == b
		}
	}
	if i >= len(pattern) {
		return 0, false // unterminated class matches nothing
	}
	return i + 1, matched != neg
}

// aclCommands declares ACL and its subcommands.
func aclCommands() []*Command {
	return []*Command{
		{Name: "acl", Arity: -2, Group: "server", Since: "0.1.0", Summary: "A container for access list commands.", Complexity: "Depends on subcommand.",
			Categories: []string{"@slow"}, Subs: []*Command{
				{Name: "whoami", Arity: 2, Flags: FlagNoScript | FlagLoading | FlagStale, Categories: []string{"@slow"}, Group: "server", Since: "0.1.0",
					Summary: "Returns the authenticated username of the connection.", Complexity: "O(1)", Handler: aclWhoAmI},
				{Name: "list", Arity: 2, Flags: FlagAdmin | FlagNoScript | FlagLoading | FlagStale, Categories: []string{"@admin", "@slow", "@dangerous"}, Group: "server", Since: "0.1.0",
					Summary: "Dumps the effective rules, passwords redacted.", Complexity: "O(N). Where N is the number of configured users.", Handler: aclList},
				{Name: "users", Arity: 2, Flags: FlagAdmin | FlagNoScript | FlagLoading | FlagStale, Categories: []string{"@admin", "@slow", "@dangerous"}, Group: "server", Since: "0.1.0",
					Summary: "Lists all users.", Complexity: "O(N). Where N is the number of configured users.", Handler: aclUsers},
				{Name: "help", Arity: 2, Flags: FlagLoading | FlagStale, Categories: []string{"@slow"}, Group: "server", Since: "0.1.0",
					Summary: "Returns helpful text about the different subcommands.", Complexity: "O(1)", Handler: aclHelp},
			}},
	}
}

func aclWhoAmI(_ *Server, c *resp.Conn, _ [][]byte) { c.WriteBulkString(sessionOf(c).user.Load().Name) }

func aclList(s *Server, c *resp.Conn, _ [][]byte) {
	users := s.cfg.Users.sorted()
	c.WriteArray(len(users))
	for _, u := range users {
		c.WriteBulkString(u.String())
	}
}

func aclUsers(s *Server, c *resp.Conn, _ [][]byte) {
	users := s.cfg.Users.sorted()
	c.WriteArray(len(users))
	for _, u := range users {
		c.WriteBulkString(u.Name)
	}
}

func aclHelp(_ *Server, c *resp.Conn, _ [][]byte) {
	writeHelp(c, "ACL", []string{
		"WHOAMI", "    Return the current connection username.",
		"LIST", "    Show users and their rules, passwords redacted.",
		"USERS", "    List all the registered usernames.",
	})
}
