package commands

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRegistryRefusesDuplicateNames(t *testing.T) {
	cmd := func(name string, subs ...*Command) *Command { return &Command{Name: name, Arity: 1, Subs: subs} }
	assert.PanicsWithValue(t, `commands: command "ping" is declared twice`, func() {
		newRegistry([]*Command{cmd("ping"), cmd("echo"), cmd("ping")})
	})
	assert.PanicsWithValue(t, `commands: subcommand "list" of "client" is declared twice`, func() {
		newRegistry([]*Command{cmd("client", cmd("id"), cmd("list"), cmd("list"))})
	})
	assert.NotPanics(t, func() {
		newRegistry([]*Command{cmd("client", cmd("list")), cmd("acl", cmd("list"))})
	}, "two containers may each have a subcommand of one name")
	for _, bad := range []string{"", "PING", "a-name-longer-than-thirty-two-bytes"} {
		assert.Panics(t, func() { newRegistry([]*Command{cmd(bad)}) }, "%q", bad)
	}
}

// TestCommandTableIsValid: the real table passes the registry's checks, and
// every declaration has a handler or subcommands and its documentation.
func TestCommandTableIsValid(t *testing.T) {
	r := newRegistry(commandTable())
	for _, c := range r.sorted {
		assert.True(t, c.Handler != nil || len(c.Subs) > 0, "%s has neither a handler nor subcommands", c.Name)
		for _, sub := range c.Subs {
			assert.NotNil(t, sub.Handler, "%s has no handler", sub.FullName())
			assert.NotEmpty(t, sub.Summary, "%s has no summary", sub.FullName())
		}
		assert.NotEmpty(t, c.Summary, "%s has no summary", c.Name)
		assert.NotZero(t, c.Arity, "%s has no arity", c.Name)
	}
}
