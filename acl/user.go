package acl

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"
)

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

// Command is what the rules need to know about a command; the command table
// describes each of its commands once in these terms.
type Command struct {
	Name       string   // full name: "flushall", or "client|setname" for a subcommand
	Parent     string   // for a subcommand, its container's name ("client"); else empty
	Categories []string // ACL categories with their '@': "@fast", "@throttle"
}

type rule struct {
	allow    bool
	category string // without '@'; "all" for every command
	command  string // full name, e.g. "flushall" or "client|setname"
}

// apply parses one ACL rule; a command or category rule must name
// something cat has (see Catalog).
func (u *User) apply(tok string, cat Catalog) error {
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
		return u.addRule(rule{allow: tok[0] == '+', category: strings.ToLower(tok[2:])}, tok, cat)
	case strings.HasPrefix(tok, "+") || strings.HasPrefix(tok, "-"):
		return u.addRule(rule{allow: tok[0] == '+', command: strings.ToLower(tok[1:])}, tok, cat)
	default:
		return fmt.Errorf("user %s: unknown ACL rule %q", u.Name, tok)
	}
	u.allowAll = len(u.rules) > 0 && u.rules[len(u.rules)-1].allow && u.rules[len(u.rules)-1].category == "all"
	return nil
}

// addRule appends a command or category rule that cat knows.
func (u *User) addRule(r rule, tok string, cat Catalog) error {
	if !cat.knows(r) {
		return fmt.Errorf("user %s: rule %q: %w", u.Name, tok, ErrUnknownRule)
	}
	u.rules = append(u.rules, r)
	u.allowAll = r.allow && r.category == "all"
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

// AllCommands reports whether the user may run every command (its last
// rule is +@all), so dispatch can skip CanRun.
func (u *User) AllCommands() bool { return u.allowAll }

// AllKeys reports whether the user may touch every key (~* or allkeys), so
// dispatch can skip CanAccess.
func (u *User) AllKeys() bool { return u.allKeys }

// CanRun reports whether the user may run cmd: the last rule that matches
// it decides; with none, it may not.
func (u *User) CanRun(cmd Command) bool {
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

// GrantsCategory reports whether the user holds the category cat (without
// '@') as a whole: its last rule naming the category itself or @all allows.
// Rules for single commands, or for other categories that share commands
// with it (@connection and @admin share CLIENT LIST), do not grant it.
func (u *User) GrantsCategory(cat string) bool {
	allowed := false
	for _, r := range u.rules {
		if r.command == "" && (r.category == "all" || r.category == cat) {
			allowed = r.allow
		}
	}
	return allowed
}

func (r rule) matches(cmd Command) bool {
	if r.command != "" {
		return r.command == cmd.Name || (cmd.Parent != "" && r.command == cmd.Parent)
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

// CanAccess reports whether the user may touch key.
func (u *User) CanAccess(key []byte) bool {
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
