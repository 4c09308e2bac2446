package commands

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestFlagSpellings: flags spell as Redis 7's COMMAND INFO shows them, in
// its order, whatever order they were combined in.
func TestFlagSpellings(t *testing.T) {
	assert.Equal(t, FlagAllowBusy, Flag(1)<<(len(flagNames)-1), "one spelling per flag constant")
	all := FlagAllowBusy<<1 - 1
	assert.Equal(t, "write readonly denyoom module admin pubsub noscript blocking loading stale skip_monitor "+
		"skip_slowlog asking fast no_auth no_mandatory_keys no_async_loading no_multi movablekeys allow_busy", all.String())
	assert.Equal(t, "fast no_auth", (FlagNoAuth | FlagFast).String())
	assert.Equal(t, []string{"write", "denyoom", "fast"}, (FlagFast | FlagDenyOOM | FlagWrite).Names())
	assert.Empty(t, Flag(0).Names())
	assert.True(t, (FlagWrite | FlagFast).Has(FlagFast))
	assert.True(t, (FlagWrite | FlagFast).Has(FlagWrite|FlagFast))
	assert.False(t, FlagWrite.Has(FlagWrite|FlagFast))
}
