package commands

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConnectionCommands(t *testing.T) {
	ts := startServer(t, false)
	ctx := context.Background()
	for _, proto := range []int{2, 3} {
		c := ts.client(t, proto)
		assert.Equal(t, "PONG", c.Ping(ctx).Val())
		assert.Equal(t, "hi", c.Do(ctx, "PING", "hi").Val())
		assert.Equal(t, "hello", c.Echo(ctx, "hello").Val())
		assert.NoError(t, c.Do(ctx, "SELECT", 0).Err())
		assert.EqualError(t, c.Do(ctx, "SELECT", 1).Err(), "ERR DB index is out of range")
		assert.EqualError(t, c.Do(ctx, "AUTH", "pw").Err(), errAuthNoPassword)
		assert.NoError(t, c.Do(ctx, "AUTH", "default", "anything").Err())
		assert.EqualError(t, c.Do(ctx, "AUTH", "mallory", "pw").Err(), errWrongPass)
		id, err := c.ClientID(ctx).Result()
		require.NoError(t, err)
		assert.Positive(t, id)
	}
	// One connection, so CLIENT state is observed on the connection that set it.
	conn := ts.client(t, 3).Conn()
	defer conn.Close()
	assert.Equal(t, "", conn.ClientGetName(ctx).Val())
	assert.NoError(t, conn.ClientSetName(ctx, "worker-1").Err())
	assert.Equal(t, "worker-1", conn.ClientGetName(ctx).Val())
	assert.EqualError(t, conn.Do(ctx, "CLIENT", "SETNAME", "has space").Err(), errClientName)
	assert.NoError(t, conn.Do(ctx, "CLIENT", "SETINFO", "LIB-NAME", "mylib").Err())
	infoLine, err := conn.ClientInfo(ctx).Result()
	require.NoError(t, err)
	assert.Equal(t, "worker-1", infoLine.Name)
	assert.Equal(t, 3, infoLine.Resp)
	assert.EqualError(t, conn.Do(ctx, "CLIENT", "NOPE").Err(), "ERR unknown subcommand 'NOPE'. Try CLIENT HELP.")
	assert.EqualError(t, conn.Do(ctx, "CLIENT", "SETNAME").Err(), "ERR wrong number of arguments for 'client|setname' command")
	hello, err := conn.Do(ctx, "HELLO", 3).Result()
	require.NoError(t, err)
	assert.Equal(t, int64(3), hello.(map[any]any)["proto"])
	assert.EqualError(t, conn.Do(ctx, "HELLO", 4).Err(), errNoProto)
	assert.EqualError(t, conn.Do(ctx, "HELLO", 3, "AUTH", "mallory", "x").Err(), errWrongPass)
}

func TestQuit(t *testing.T) {
	ts := startServer(t, false)
	conn, err := net.Dial("tcp", ts.addr)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = io.WriteString(conn, "QUIT\r\nPING\r\n")
	require.NoError(t, err)
	b, err := io.ReadAll(conn)
	require.NoError(t, err)
	assert.Equal(t, "+OK\r\n", string(b), "nothing after QUIT runs")
}
