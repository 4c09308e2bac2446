package commands

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sluicehq/sluice/keyspace"
	"github.com/sluicehq/sluice/replication"
	"github.com/sluicehq/sluice/resp"
	"github.com/stretchr/testify/require"
)

const epoch = int64(1893456000000000000) // 2030-01-01, the vectors' frozen clock

type testServer struct {
	net  *resp.Server
	addr string
	srv  *Server
	keys *keyspace.Keyspace
}

// startServer runs the real network layer and command server on a loopback
// port for the length of the test.
func startServer(t testing.TB, debug bool) *testServer {
	return startServerWith(t, Config{EnableDebug: debug})
}

// startServerWith starts a server from cfg (Keys, Logger, NetStats and
// Settings are filled in); cfg.Users also decides resp's AuthRequired.
func startServerWith(t testing.TB, cfg Config, tune ...func(*resp.Server)) *testServer {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	backlog := replication.NewBacklog(replication.DefaultBacklogSize, replication.DefaultBufferLimit)
	tbl := keyspace.New(8, backlog)
	if cfg.Replication == nil {
		node := replication.New(replication.Config{Keys: tbl, Backlog: backlog, Logger: log})
		t.Cleanup(node.Close)
		cfg.Replication = node
	}
	rs := &resp.Server{Logger: log, AuthRequired: cfg.Users != nil && cfg.Users.AuthRequired()}
	for _, f := range tune {
		f(rs)
	}
	cfg.Keys, cfg.Logger, cfg.NetStats = tbl, log, rs.Stats
	cfg.Settings = []Setting{{Name: "maxclients", Value: "10000"}, {Name: "port", Value: "0"}}
	s := NewServer(cfg)
	rs.Handler, rs.OnOpen, rs.OnClose = s, s.OpenConn, s.CloseConn
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { defer close(done); _ = rs.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = rs.Shutdown(ctx)
		<-done
	})
	return &testServer{addr: ln.Addr().String(), srv: s, keys: tbl, net: rs}
}

func (ts *testServer) client(t testing.TB, proto int) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: ts.addr, Protocol: proto, PoolSize: 64, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func setClock(t *testing.T, c *redis.Client, ns int64) {
	t.Helper()
	require.NoError(t, c.Do(context.Background(), "DEBUG", "CLOCK", "SET", ns).Err())
}

func ints(t *testing.T, v any, err error) []int64 {
	t.Helper()
	require.NoError(t, err)
	arr, ok := v.([]any)
	require.True(t, ok, "reply %#v is not an array", v)
	out := make([]int64, len(arr))
	for i, x := range arr {
		n, ok := x.(int64)
		require.True(t, ok, "element %#v is not an integer", x)
		out[i] = n
	}
	return out
}

func do(c *redis.Client, args ...any) (any, error) {
	return c.Do(context.Background(), args...).Result()
}

// call runs a command that must reply with an array of integers.
func call(t *testing.T, c *redis.Client, args ...any) []int64 {
	t.Helper()
	v, err := do(c, args...)
	return ints(t, v, err)
}

// readReply reads one whole RESP reply and returns its raw bytes.
func readReply(t testing.TB, r *bufio.Reader) string {
	t.Helper()
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	switch line[0] {
	case '*', '%', '~':
		n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
		require.NoError(t, err)
		if line[0] == '%' {
			n *= 2
		}
		for i := 0; i < n; i++ {
			line += readReply(t, r)
		}
	case '$', '=':
		n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
		require.NoError(t, err)
		if n >= 0 {
			buf := make([]byte, n+2)
			_, err := io.ReadFull(r, buf)
			require.NoError(t, err)
			line += string(buf)
		}
	}
	return line
}

// raw sends bytes on a fresh connection and returns the replies read.
func raw(t *testing.T, addr, send string, replies int) []string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = io.WriteString(conn, send)
	require.NoError(t, err)
	r := bufio.NewReader(conn)
	out := make([]string, replies)
	for i := range out {
		out[i] = readReply(t, r)
	}
	return out
}
