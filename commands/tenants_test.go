package commands

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/sluicehq/sluice/acl"
	"github.com/sluicehq/sluice/policy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tenantUsers: two tenants with the README's rule (+@connection lets them
// run CLIENT LIST), an operator who may not FLUSHALL, and the admin default.
const tenantUsers = `
user t1 on >p1 ~t1:* +@throttle +@connection
user t2 on >p2 ~t2:* +@throttle +@connection
user ops on >po ~* +@all -flushall
`

func startTenantServer(t *testing.T) *testServer {
	t.Helper()
	us := acl.NewUsers("adminpw")
	require.NoError(t, us.Load(strings.NewReader(tenantUsers), Catalog()))
	return startServerWith(t, Config{Users: us})
}

func login(t *testing.T, ts *testServer, user, pw string) *redis.Conn {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: ts.addr, Username: user, Password: pw, MaxRetries: -1}).Conn()
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.Ping(context.Background()).Err(), user)
	return c
}

// clientUsers lists the user= field of each CLIENT LIST line.
func clientUsers(t *testing.T, c *redis.Conn) []string {
	t.Helper()
	list, err := c.Do(context.Background(), "CLIENT", "LIST").Text()
	require.NoError(t, err)
	var users []string
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		for _, f := range strings.Fields(line) {
			if u, ok := strings.CutPrefix(f, "user="); ok {
				users = append(users, u)
			}
		}
	}
	return users
}

// TestClientListShowsTenantsOnlyTheirOwn: a tenant allowed +@connection
// sees only the connections authenticated as itself; a user holding @admin
// (the default user here, ops through +@all) sees every one.
func TestClientListShowsTenantsOnlyTheirOwn(t *testing.T) {
	ts := startTenantServer(t)
	t1a, t1b := login(t, ts, "t1", "p1"), login(t, ts, "t1", "p1")
	t2 := login(t, ts, "t2", "p2")
	ops := login(t, ts, "ops", "po")
	admin := login(t, ts, "default", "adminpw")

	assert.Equal(t, []string{"t1", "t1"}, clientUsers(t, t1a))
	assert.Equal(t, []string{"t1", "t1"}, clientUsers(t, t1b))
	assert.Equal(t, []string{"t2"}, clientUsers(t, t2))
	assert.ElementsMatch(t, []string{"t1", "t1", "t2", "ops", "default"}, clientUsers(t, admin))
	assert.ElementsMatch(t, []string{"t1", "t1", "t2", "ops", "default"}, clientUsers(t, ops))
}

// TestPolicyGetShowsOnlyAllowedOverrides: POLICY.GET lists the override
// keys the caller's key patterns allow, and every one to a user with ~*.
func TestPolicyGetShowsOnlyAllowedOverrides(t *testing.T) {
	ts := startTenantServer(t)
	set, err := policy.Parse([]byte(`
[policies.api]
limit = "10/second"
overrides = { "t1:acme" = "100/second", "t2:globex" = "50/second", "t2:initech" = "20/second" }
`))
	require.NoError(t, err)
	ts.srv.SetPolicies(set)
	ctx := context.Background()
	overrides := func(c *redis.Conn) any {
		v, err := c.Do(ctx, "POLICY.GET", "api").Result()
		require.NoError(t, err)
		return v.(map[any]any)["overrides"]
	}
	assert.Equal(t, map[any]any{"t1:acme": "100/second"}, overrides(login(t, ts, "t1", "p1")))
	assert.Equal(t, map[any]any{"t2:globex": "50/second", "t2:initech": "20/second"}, overrides(login(t, ts, "t2", "p2")))
	assert.Len(t, overrides(login(t, ts, "ops", "po")), 3)
}

// TestClientSetInfoRefusesSpecialCharacters: names and library attributes
// are printable ASCII without spaces, as Redis requires, so that no client
// forges CLIENT LIST fields or lines; the option is checked first.
func TestClientSetInfoRefusesSpecialCharacters(t *testing.T) {
	ts := startServer(t, false)
	ctx := context.Background()
	c := ts.client(t, 2).Conn()
	defer c.Close()
	for _, bad := range []string{"a b", "x\nid=99 addr=6.6.6.6:1", "x\r\n", "tab\there", "bell\x07", "nul\x00", "del\x7f", "é"} {
		assert.EqualError(t, c.Do(ctx, "CLIENT", "SETINFO", "lib-name", bad).Err(),
			"ERR lib-name cannot contain spaces, newlines or special characters.", "%q", bad)
		assert.EqualError(t, c.Do(ctx, "CLIENT", "SETINFO", "LIB-VER", bad).Err(),
			"ERR lib-ver cannot contain spaces, newlines or special characters.", "%q", bad)
		assert.EqualError(t, c.Do(ctx, "CLIENT", "SETNAME", bad).Err(), errClientName, "%q", bad)
		assert.EqualError(t, c.Do(ctx, "HELLO", 2, "SETNAME", bad).Err(), errClientName, "%q", bad)
	}
	assert.EqualError(t, c.Do(ctx, "CLIENT", "SETINFO", "bogus", "a b").Err(), "ERR Unrecognized option 'bogus'")
	require.NoError(t, c.Do(ctx, "CLIENT", "SETINFO", "LIB-NAME", "go-redis(v9)").Err())
	info, err := c.Do(ctx, "CLIENT", "INFO").Text()
	require.NoError(t, err)
	assert.Contains(t, info, " lib-name=go-redis(v9) ")
	assert.Equal(t, 1, strings.Count(info, "\n"))
}

// TestDefaultOffStillAuthenticates: "user default off" closes the default
// user, and AUTH and HELLO AUTH (no_auth commands) still work, as in Redis.
func TestDefaultOffStillAuthenticates(t *testing.T) {
	us := acl.NewUsers("")
	require.NoError(t, us.Load(strings.NewReader("user default off\nuser app on >apppw ~app:* +@throttle\n"), Catalog()))
	ts := startServerWith(t, Config{Users: us})
	ctx := context.Background()
	anon := redis.NewClient(&redis.Options{Addr: ts.addr, Protocol: 2, MaxRetries: -1, DisableIdentity: true})
	defer anon.Close()
	assert.EqualError(t, anon.Ping(ctx).Err(), errNoAuth)
	assert.EqualError(t, anon.Do(ctx, "AUTH", "app", "wrong").Err(), errWrongPass)
	assert.EqualError(t, anon.Do(ctx, "AUTH", "default", "x").Err(), errWrongPass)

	for _, proto := range []int{2, 3} { // RESP2: AUTH user pw; RESP3: HELLO 3 AUTH user pw
		app := redis.NewClient(&redis.Options{Addr: ts.addr, Protocol: proto, Username: "app", Password: "apppw", MaxRetries: -1, DisableIdentity: true})
		defer app.Close()
		assert.NoError(t, app.Do(ctx, "THROTTLE", "app:1", 1, 1, 1).Err(), "RESP%d", proto)
		assert.EqualError(t, app.Do(ctx, "THROTTLE", "x", 1, 1, 1).Err(), errNoPermKey)
		assert.EqualError(t, app.Ping(ctx).Err(), "NOPERM User app has no permissions to run the 'ping' command")
	}
}
