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
`), catalog))
	assert.True(t, us.AuthRequired())
	assert.NotNil(t, us.Authenticate([]byte("default"), []byte("adminpw")))
	assert.Nil(t, us.Authenticate([]byte("default"), []byte("nope")))
	assert.NotNil(t, us.Authenticate([]byte("hashed"), []byte("s3cret")))
	assert.Nil(t, us.Authenticate([]byte("disabled"), []byte("x")))
	assert.Nil(t, us.Authenticate([]byte("ghost"), []byte("x")))
	err := us.Load(strings.NewReader("user a on bogus\nnot a user line\nuser b #zz\n"), catalog)
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
`), catalog))
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

// catalog is a small command table, as package commands describes its own.
var catalog = Catalog{
	{Name: "throttle", Categories: []string{"@write", "@fast", "@throttle"}},
	{Name: "ping", Categories: []string{"@fast", "@connection"}},
	{Name: "flushall", Categories: []string{"@keyspace", "@write", "@slow", "@dangerous"}},
	{Name: "client", Categories: []string{"@slow"}},
	{Name: "client|setname", Parent: "client", Categories: []string{"@slow", "@connection"}},
	{Name: "lease.acquire", Categories: []string{"@write", "@fast", "@throttle"}},
	{Name: "info", Categories: []string{"@slow", "@dangerous"}},
	{Name: "client|id", Parent: "client", Categories: []string{"@slow", "@connection"}},
	{Name: "client|list", Parent: "client", Categories: []string{"@admin", "@slow", "@dangerous", "@connection"}},
}

// TestLoadRefusesUnknownRules: a rule naming a command or category the
// table does not have is refused, naming the line and the rule, as Redis
// refuses it ("Unknown command or category name in ACL"): a typo in a deny
// rule must not silently allow what it meant to deny.
func TestLoadRefusesUnknownRules(t *testing.T) {
	for _, rule := range []string{"+@bogus", "-nosuchcmd", "-flushal", "+client|nosuch", "-@Bogus", "+nosuch|setname"} {
		us := NewUsers("")
		err := us.Load(strings.NewReader("# comment\nuser ops on nopass allkeys +@all "+rule+"\n"), catalog)
		require.Error(t, err, rule)
		assert.ErrorIs(t, err, ErrUnknownRule, rule)
		assert.Contains(t, err.Error(), "line 2", rule)
		assert.Contains(t, err.Error(), rule, rule)
		assert.Nil(t, us.Authenticate([]byte("ops"), nil), "%s: a refused file adds no user", rule)
	}
	// Every command, subcommand and container of the table, every category
	// it uses and every category Redis 7 defines load (a file written for
	// Redis keeps loading; its categories simply match fewer commands).
	us := NewUsers("")
	require.NoError(t, us.Load(strings.NewReader(
		"user a on nopass ~* +@all -flushall +client -client|list +CLIENT|SETNAME +@throttle -@pubsub -@scripting +@connection -@DANGEROUS\n"), catalog))
}

// TestLoadRefusesDuplicateUsers: a name defined twice is an error, as in
// Redis, not a silent replacement of the first definition.
func TestLoadRefusesDuplicateUsers(t *testing.T) {
	err := NewUsers("").Load(strings.NewReader("user a on >x +ping\nuser a on nopass +@all\n"), catalog)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "line 2")
	assert.Contains(t, err.Error(), "duplicate user")
}

// TestDefinesAndOpenDefault: what start-up checks to refuse --requirepass
// beside a file that redefines default, and to warn about an open default.
func TestDefinesAndOpenDefault(t *testing.T) {
	us := NewUsers("")
	require.NoError(t, us.Load(strings.NewReader("user t on >pw ~t:* +@throttle\n"), catalog))
	assert.False(t, us.Defines("default"))
	assert.True(t, us.Defines("t"))
	assert.True(t, us.OpenDefault(catalog), "default stays on nopass +@all")

	for file, open := range map[string]bool{
		"user default off\n":                             false,
		"user default on >pw +@all\n":                    false,
		"user default on nopass -@all\n":                 false,
		"user default on nopass +ping +client|setname\n": false,
		"user default on nopass ~* +throttle\n":          true,
	} {
		us := NewUsers("")
		require.NoError(t, us.Load(strings.NewReader(file), catalog), file)
		assert.True(t, us.Defines("default"), file)
		assert.Equal(t, open, us.OpenDefault(catalog), file)
	}
	assert.False(t, NewUsers("pw").OpenDefault(catalog))
}

// TestGrantsCategory: a user holds a category whole through +@all or
// +@cat, and loses it with a later -@cat; a rule for one of its commands
// (or a category that overlaps it, like @connection) does not grant it.
func TestGrantsCategory(t *testing.T) {
	us := NewUsers("")
	require.NoError(t, us.Load(strings.NewReader(`
user ops on nopass +@all -@dangerous
user admin on nopass +@admin
user tenant on nopass +@throttle +@connection +client|list
user denied on nopass +@all -@admin
`), catalog))
	for name, want := range map[string]bool{"default": true, "ops": true, "admin": true, "tenant": false, "denied": false} {
		u := us.Authenticate([]byte(name), nil)
		require.NotNil(t, u, name)
		assert.Equal(t, want, u.GrantsCategory("admin"), name)
	}
}
