package commands

import (
	"math/bits"
	"strings"
)

// Flag is a set of command flags, the ones Redis 7's COMMAND INFO lists.
// Combine flags with |; COMMAND INFO shows a set in the order of the
// constants below, which is Redis's order, with Redis's spellings.
type Flag uint32

// The flags, in the order COMMAND INFO lists them; each comment is the
// spelling it shows.
const (
	FlagWrite           Flag = 1 << iota // write: changes state
	FlagReadonly                         // readonly: only reads state
	FlagDenyOOM                          // denyoom: refused when memory is short
	FlagModule                           // module
	FlagAdmin                            // admin: administrative, dangerous
	FlagPubSub                           // pubsub
	FlagNoScript                         // noscript: not callable from scripts
	FlagBlocking                         // blocking
	FlagLoading                          // loading: allowed while loading data
	FlagStale                            // stale: allowed on a replica with stale data
	FlagSkipMonitor                      // skip_monitor
	FlagSkipSlowlog                      // skip_slowlog
	FlagAsking                           // asking
	FlagFast                             // fast: O(1) or O(log N), never delays the server
	FlagNoAuth                           // no_auth: runs before the connection authenticates
	FlagNoMandatoryKeys                  // no_mandatory_keys
	FlagNoAsyncLoading                   // no_async_loading
	FlagNoMulti                          // no_multi
	FlagMovableKeys                      // movablekeys
	FlagAllowBusy                        // allow_busy
)

// flagNames spells bit i of a Flag.
var flagNames = [...]string{
	"write", "readonly", "denyoom", "module", "admin", "pubsub", "noscript", "blocking", "loading", "stale",
	"skip_monitor", "skip_slowlog", "asking", "fast", "no_auth", "no_mandatory_keys", "no_async_loading",
	"no_multi", "movablekeys", "allow_busy",
}

// Has reports whether every flag of g is in f.
func (f Flag) Has(g Flag) bool { return f&g == g }

// Names spells the flags of f in COMMAND INFO's order.
func (f Flag) Names() []string {
	names := make([]string, 0, bits.OnesCount32(uint32(f)))
	for i, name := range flagNames {
		if f&(1<<i) != 0 {
			names = append(names, name)
		}
	}
	return names
}

// String spells the flags of f as COMMAND INFO shows them, separated by
// spaces: "write denyoom fast".
func (f Flag) String() string { return strings.Join(f.Names(), " ") }
