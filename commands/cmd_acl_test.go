package commands

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/sluicehq/sluice/acl"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAuthAndACLEndToEnd(t *testing.T) {
	us := acl.NewUsers("adminpw")
	require.NoError(t, us.Load(strings.NewReader("user tenant1 on >t1pw ~tenant1:* +@throttle +@connection +acl|whoami\n"), Catalog()))
	ts := startServerWith(t, Config{Users: us, EnableDebug: true})
	ctx := context.Background()

	anon := redis.NewClient(&redis.Options{Addr: ts.addr, Protocol: 2, MaxRetries: -1, DisableIdentity: true})
	defer anon.Close()
	assert.EqualError(t, anon.Do(ctx, "THROTTLE", "k", 1, 1, 1).Err(), errNoAuth)
	assert.EqualError(t, anon.Do(ctx, "AUTH", "wrong").Err(), errWrongPass)
	assert.EqualError(t, anon.Do(ctx, "AUTH", "tenant1", "wrong").Err(), errWrongPass)

	admin := redis.NewClient(&redis.Options{Addr: ts.addr, Protocol: 3, Password: "adminpw"})
	defer admin.Close()
	require.NoError(t, admin.Do(ctx, "DEBUG", "CLOCK", "SET", epoch).Err())
	require.NoError(t, admin.Do(ctx, "THROTTLE", "tenant2:alice", 1, 1, 60).Err())
	who, err := admin.Do(ctx, "ACL", "WHOAMI").Text()
	require.NoError(t, err)
	assert.Equal(t, "default", who)

	// HELLO 3 AUTH user pw, as go-redis sends it.
	tenant := redis.NewClient(&redis.Options{Addr: ts.addr, Protocol: 3, Username: "tenant1", Password: "t1pw"})
	defer tenant.Close()
	v, err := tenant.Do(ctx, "THROTTLE", "tenant1:bob", 1, 1, 60).Int64Slice()
	require.NoError(t, err)
	assert.Equal(t, []int64{0, 2, 1, -1, 60}, v)
	assert.EqualError(t, tenant.Do(ctx, "THROTTLE", "tenant2:alice", 1, 1, 60).Err(), errNoPermKey)
	assert.EqualError(t, tenant.Do(ctx, "DEL", "tenant1:bob", "tenant2:alice").Err(), "NOPERM User tenant1 has no permissions to run the 'del' command")
	assert.EqualError(t, tenant.Do(ctx, "FLUSHALL").Err(), "NOPERM User tenant1 has no permissions to run the 'flushall' command")
	who, err = tenant.Do(ctx, "ACL", "WHOAMI").Text()
	require.NoError(t, err)
	assert.Equal(t, "tenant1", who)

	// tenant2's state is untouched by tenant1's attempts.
	v, err = admin.Do(ctx, "THROTTLE", "tenant2:alice", 1, 1, 60, 0).Int64Slice()
	require.NoError(t, err)
	assert.Equal(t, []int64{0, 2, 1, -1, 60}, v)

	list, err := admin.Do(ctx, "ACL", "LIST").StringSlice()
	require.NoError(t, err)
	assert.Equal(t, []string{
		"user default on #<redacted> ~* +@all",
		"user tenant1 on #<redacted> ~tenant1:* +@throttle +@connection +acl|whoami",
	}, list)
	assert.NotContains(t, strings.Join(list, " "), "t1pw")
	info, err := admin.Info(ctx, "stats").Result()
	require.NoError(t, err)
	assert.Contains(t, info, "acl_access_denied_auth:2")
	assert.Contains(t, info, "acl_access_denied_key:1")
}
