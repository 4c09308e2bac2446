package acl

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestUsersLoad(t *testing.T) {
	hash := sha256.Sum256([]byte("s3cret"))
	us := NewUsers("adminpw")
	require.NoError(t, us.Load(strings.NewReader(`
# tenants may only throttle their own keys
user tenant1 on >t1pw ~tenant1:* +@throttle +ping
user hashed on #`+hex.EncodeToString(hash[:])+` allkeys allcommands -flushall
user disabled off >x allcommands
`)))
	assert.True(t, us.AuthRequired())
	assert.NotNil(t, us.Authenticate([]byte("default"), []byte("adminpw")))
	assert.Nil(t, us.Authenticate([]byte("default"), []byte("nope")))
	assert.NotNil(t, us.Authenticate([]byte("hashed"), []byte("s3cret")))
	assert.Nil(t, us.Authenticate([]byte("disabled"), []byte("x")))
	assert.Nil(t, us.Authenticate([]byte("ghost"), []byte("x")))
	err := us.Load(strings.NewReader("user a on bogus\nnot a user line\nuser b #zz\n"))
	require.Error(t, err)
	for _, want := range []string{"line 1", "bogus", "line 2", "line 3"} {
		assert.Contains(t, err.Error(), want)
	}
	assert.False(t, NewUsers("").AuthRequired())
}

// TestRules: the last rule that matches a command decides; a subcommand
// matches its full name, its container's name and its own categories.
func TestRules(t *testing.T) {
	us := NewUsers("")
	require.NoError(t, us.Load(strings.NewReader(`
user tenant on nopass ~tenant:* ~shared +@throttle -lease.acquire +client -client|list
user ops on nopass allkeys allcommands -@dangerous +info
user none on nopass
`)))
	throttle := Command{Name: "throttle", Categories: []string{"@write", "@fast", "@throttle"}}
	lease := Command{Name: "lease.acquire", Categories: []string{"@write", "@fast", "@throttle"}}
	clientID := Command{Name: "client|id", Parent: "client", Categories: []string{"@slow", "@connection"}}
	clientList := Command{Name: "client|list", Parent: "client", Categories: []string{"@admin", "@slow", "@dangerous", "@connection"}}
	flushall := Command{Name: "flushall", Categories: []string{"@keyspace", "@write", "@slow", "@dangerous"}}
	info := Command{Name: "info", Categories: []string{"@slow", "@dangerous"}}

	tenant := us.Authenticate([]byte("tenant"), nil)
	require.NotNil(t, tenant)
	assert.False(t, tenant.AllCommands())
	assert.False(t, tenant.AllKeys())
	assert.True(t, tenant.CanRun(throttle))
	assert.False(t, tenant.CanRun(lease), "a later -command overrides +@category")
	assert.True(t, tenant.CanRun(clientID), "+client allows its subcommands")
	assert.False(t, tenant.CanRun(clientList), "-client|list denies one of them")
	assert.False(t, tenant.CanRun(flushall), "no rule matches: denied")
	assert.True(t, tenant.CanAccess([]byte("tenant:1")))
	assert.True(t, tenant.CanAccess([]byte("shared")))
	assert.False(t, tenant.CanAccess([]byte("other:1")))

	ops := us.Authenticate([]byte("ops"), nil)
	require.NotNil(t, ops)
	assert.False(t, ops.AllCommands(), "a rule after +@all takes the fast path away")
	assert.True(t, ops.AllKeys())
	assert.True(t, ops.CanRun(throttle))
	assert.False(t, ops.CanRun(flushall))
	assert.False(t, ops.CanRun(clientList))
	assert.True(t, ops.CanRun(info), "+info after -@dangerous")

	none := us.Authenticate([]byte("none"), nil)
	require.NotNil(t, none)
	assert.False(t, none.CanRun(throttle), "a user without rules runs nothing")
	assert.Equal(t, "user none on nopass -@all", none.String())
	assert.True(t, us.Default().AllCommands())
	assert.Equal(t, []string{"default", "none", "ops", "tenant"}, names(us.Sorted()))
}

func names(us []*User) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.Name
	}
	return out
}
