package commands

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/sluicehq/sluice/acl"
	"github.com/sluicehq/sluice/resp"
)

// Command declares one command: its metadata, read by dispatch, arity checks
// and COMMAND, and its handler.
type Command struct {
	Name     string // lower case, e.g. "cl.throttle"
	Arity    int    // argument count including the name; negative means at least -Arity
	Flags    Flag   // Redis command flags: FlagWrite | FlagFast...
	FirstKey int    // position of the first key, 0 when the command takes none
	LastKey  int    // position of the last key; -1 means the last argument
	Step     int    // distance between keys
	// QuantityArg is the position of a THROTTLE-family quantity argument,
	// 0 for none: a call asking for quantity 0 is a peek, which changes
	// no state and which a replica serves.
	QuantityArg int
	Categories  []string // ACL categories, e.g. "@fast"
	Group       string   // COMMAND DOCS group
	Since       string   // Sluice version that introduced it
	Summary     string
	Complexity  string
	Args        []Arg      // COMMAND DOCS arguments
	Subs        []*Command // subcommands, named "parent|sub"
	Handler     Handler
	parent      *Command
	acl         acl.Command // what ACL rules see of the command, set by the registry

	// Redact, when set, names the arguments of a call that the slow log
	// shows as "(redacted)" (passwords): those from index from to index
	// to, exclusive.
	Redact func(args [][]byte) (from, to int)

	// The counters of INFO commandstats and sluice_commands_total, kept
	// together: run writes them one after the other (see cmdstats.go).
	calls    atomic.Uint64 // calls that ran
	nanos    atomic.Uint64 // their time, in nanoseconds
	failed   atomic.Uint64 // calls that ran and replied an error
	rejected atomic.Uint64 // calls refused before running
}

// Arg documents one argument for COMMAND DOCS (and redis-cli's hints).
type Arg struct {
	Name     string
	Type     string // key, integer, string, pure-token, oneof, block
	Token    string
	Optional bool
	Multiple bool
	Args     []Arg // for oneof and block
}

// Handler serves one call of a command. args[0] is the command name as sent.
type Handler func(s *Server, c *resp.Conn, args [][]byte)

// FullName is the name Redis shows in errors: "client|setname" for a
// subcommand.
func (cmd *Command) FullName() string {
	if cmd.parent != nil {
		return cmd.parent.Name + "|" + cmd.Name
	}
	return cmd.Name
}

func (cmd *Command) arityOK(n int) bool {
	if cmd.Arity >= 0 {
		return n == cmd.Arity
	}
	return n >= -cmd.Arity
}

// Keys returns the positions of the keys in a call of cmd with n arguments.
func (cmd *Command) Keys(n int) []int {
	if cmd.FirstKey == 0 {
		return nil
	}
	last := cmd.LastKey
	if last < 0 {
		last = n + last
	}
	var pos []int
	for i := cmd.FirstKey; i <= last && i < n; i += max(cmd.Step, 1) {
		pos = append(pos, i)
	}
	return pos
}

// commandTable declares every command Sluice serves, group by group; each
// cmd_<group>.go file holds its group's declarations and handlers.
func commandTable() []*Command {
	return slices.Concat(
		throttleCommands(),
		multiCommands(),
		windowCommands(),
		policyCommands(),
		topCommands(),
		leaseCommands(),
		counterCommands(),
		slidingLogCommands(),
		keyCommands(),
		connectionCommands(),
		serverCommands(),
		aclCommands(),
		replicationCommands(),
		clusterCommands(),
	)
}

// registry maps lower-case names to commands.
type registry struct {
	byName map[string]*Command
	sorted []*Command
}

// maxNameLen is the longest command name lookup can find: names are
// lower-cased into a buffer of this size.
const maxNameLen = 32

// newRegistry indexes cmds. It panics when two commands, or two
// subcommands of one command, share a name, or when a name is not lower
// case or longer than maxNameLen: a declaration that could never be
// dispatched is a programming error, found when the server is built.
func newRegistry(cmds []*Command) *registry {
	r := &registry{byName: make(map[string]*Command, len(cmds))}
	for _, c := range cmds {
		checkName(c.Name)
		if _, dup := r.byName[c.Name]; dup {
			panic(fmt.Sprintf("commands: command %q is declared twice", c.Name))
		}
		subs := make(map[string]bool, len(c.Subs))
		for _, sub := range c.Subs {
			checkName(sub.Name)
			if subs[sub.Name] {
				panic(fmt.Sprintf("commands: subcommand %q of %q is declared twice", sub.Name, c.Name))
			}
			subs[sub.Name] = true
			sub.parent = c
			sub.acl = acl.Command{Name: sub.FullName(), Parent: c.Name, Categories: sub.Categories}
		}
		c.acl = acl.Command{Name: c.Name, Categories: c.Categories}
		r.byName[c.Name] = c
		r.sorted = append(r.sorted, c)
	}
	sort.Slice(r.sorted, func(i, j int) bool { return r.sorted[i].Name < r.sorted[j].Name })
	return r
}

func checkName(name string) {
	if name == "" || len(name) > maxNameLen || name != strings.ToLower(name) {
		panic(fmt.Sprintf("commands: command name %q must be lower case, 1 to %d bytes", name, maxNameLen))
	}
}

// lookup finds a command by name, case-insensitively, without allocating:
// names are lower-cased into scratch.
func (r *registry) lookup(name []byte, scratch *[maxNameLen]byte) *Command {
	if len(name) > len(scratch) {
		return nil
	}
	b := scratch[:len(name)]
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	return r.byName[string(b)]
}

// sub finds a subcommand of cmd by name.
func (cmd *Command) sub(name []byte) *Command {
	for _, s := range cmd.Subs {
		if strings.EqualFold(s.Name, string(name)) {
			return s
		}
	}
	return nil
}

// Catalog describes every command and subcommand Sluice serves as ACL rules
// see them; acl.Users.Load checks an ACL file's rules against it.
func Catalog() acl.Catalog {
	var out acl.Catalog
	for _, c := range newRegistry(commandTable()).sorted {
		out = append(out, c.acl)
		for _, sub := range c.Subs {
			out = append(out, sub.acl)
		}
	}
	return out
}
