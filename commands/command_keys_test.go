package commands

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// callArg is one argument of a sample call and whether it is a key.
type callArg struct {
	value string
	key   bool
}

// sampleArgs writes args as a call would pass them: every argument once
// (Multiple ones twice), optional ones only with optional set, a oneof as
// its first choice.
func sampleArgs(args []Arg, optional bool) []callArg {
	var out []callArg
	for _, a := range args {
		if a.Optional && !optional {
			continue
		}
		n := 1
		if a.Multiple {
			n = 2
		}
		for range n {
			if a.Token != "" {
				out = append(out, callArg{value: a.Token})
			}
			switch a.Type {
			case "pure-token":
			case "oneof":
				out = append(out, sampleArgs(a.Args[:1], optional)...)
			case "block":
				out = append(out, sampleArgs(a.Args, optional)...)
			default:
				out = append(out, callArg{value: "1", key: a.Type == "key"})
			}
		}
	}
	return out
}

// TestKeyPositionsMatchTheArguments: for every command, the key positions
// COMMAND reports (first, last, step), which cluster clients and dispatch
// route by, pick exactly the arguments its documentation types as keys,
// in a call with and without the optional arguments.
func TestKeyPositionsMatchTheArguments(t *testing.T) {
	var all []*Command
	for _, c := range newRegistry(commandTable()).sorted {
		all = append(all, c)
		all = append(all, c.Subs...)
	}
	checked := map[string]bool{}
	for _, cmd := range all {
		if cmd.Handler == nil {
			continue // a container: its subcommands are checked
		}
		for _, optional := range []bool{false, true} {
			call := []callArg{{value: cmd.Name}}
			if cmd.parent != nil {
				call = []callArg{{value: cmd.parent.Name}, {value: cmd.Name}}
			}
			call = append(call, sampleArgs(cmd.Args, optional)...)
			if !cmd.arityOK(len(call)) {
				continue // the documentation's shape does not fit the arity (DEBUG's free-form arguments)
			}
			var want []int
			for i, a := range call {
				if a.key {
					want = append(want, i)
				}
			}
			assert.Equal(t, want, cmd.Keys(len(call)), "%s with %d arguments", cmd.FullName(), len(call))
			checked[cmd.FullName()] = true
		}
	}
	for _, name := range []string{"throttle", "cl.throttle", "throttle.multi", "throttle.window", "policy.throttle",
		"lease.acquire", "lease.release", "lease.renew", "del", "exists", "ttl", "pttl", "cluster|keyslot", "ping"} {
		assert.True(t, checked[name], "%s was not checked", name)
	}
	t.Logf("%d commands checked", len(checked))
}
