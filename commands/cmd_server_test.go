package commands

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestServerCommands(t *testing.T) {
	ts := startServer(t, false)
	c := ts.client(t, 2)
	ctx := context.Background()
	assert.EqualError(t, c.Do(ctx, "DEBUG", "CLOCK", "SET", 1).Err(), errDebugDisabled)
	call(t, c, "THROTTLE", "k", 0, 1, 60)
	call(t, c, "THROTTLE", "k", 0, 1, 60)
	info, err := c.Info(ctx).Result()
	require.NoError(t, err)
	for _, want := range []string{"# Server", "redis_version:", "# Clients", "connected_clients:", "# Memory", "used_memory:",
		"# Stats", "throttle_allowed:1", "throttle_limited:1", "# Keyspace", "db0:keys=1,"} {
		assert.Contains(t, info, want)
	}
	stats, err := c.Info(ctx, "stats").Result()
	require.NoError(t, err)
	assert.NotContains(t, stats, "# Server")
	n, err := c.Do(ctx, "COMMAND", "COUNT").Int64()
	require.NoError(t, err)
	assert.Equal(t, int64(len(ts.srv.Commands())), n)
	cmds, err := c.CommandList(ctx, nil).Result()
	require.NoError(t, err)
	assert.Contains(t, cmds, "cl.throttle")
	infos, err := c.Command(ctx).Result()
	require.NoError(t, err)
	th := infos["throttle"]
	require.NotNil(t, th)
	assert.Equal(t, int8(-5), th.Arity)
	assert.Equal(t, int8(1), th.FirstKeyPos)
	assert.Equal(t, []string{"write", "denyoom", "fast"}, th.Flags)
	assert.Equal(t, []string{"loading", "fast", "no_auth"}, infos["auth"].Flags, "Redis 7's spellings and order")
	docs, err := c.Do(ctx, "COMMAND", "DOCS", "cl.throttle").Result()
	require.NoError(t, err)
	assert.Contains(t, fmt.Sprint(docs), "max_burst")
	keys, err := c.Do(ctx, "COMMAND", "GETKEYS", "DEL", "a", "b").StringSlice()
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, keys)
	cfg, err := c.ConfigGet(ctx, "max*").Result()
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"maxclients": "10000"}, cfg)
	assert.EqualError(t, c.Do(ctx, "NOSUCH", "a", "b").Err(), "ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' ")
	assert.EqualError(t, c.Do(ctx, "PTTL").Err(), "ERR wrong number of arguments for 'pttl' command")
}
