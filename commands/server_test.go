package commands

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sluicehq/sluice/gcra"
	"github.com/sluicehq/sluice/internal/vectors"
	"github.com/sluicehq/sluice/resp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const epoch = int64(1893456000000000000) // 2030-01-01, the vectors' frozen clock

type testServer struct {
	net   *resp.Server
	addr  string
	srv   *Server
	table *gcra.Table
}

// startServer runs the real network layer and command server on a loopback
// port for the length of the test.
func startServer(t testing.TB, debug bool) *testServer {
	return startServerWith(t, Config{EnableDebug: debug})
}

// startServerWith starts a server from cfg (Table, Logger, NetStats and
// Settings are filled in); cfg.Users also decides resp's AuthRequired.
func startServerWith(t testing.TB, cfg Config, tune ...func(*resp.Server)) *testServer {
	t.Helper()
	tbl := gcra.NewTable(8, nil)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rs := &resp.Server{Logger: log, AuthRequired: cfg.Users != nil && cfg.Users.AuthRequired()}
	for _, f := range tune {
		f(rs)
	}
	cfg.Table, cfg.Logger, cfg.NetStats = tbl, log, rs.Stats
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
	return &testServer{addr: ln.Addr().String(), srv: s, table: tbl, net: rs}
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

// TestVectorsEndToEnd replays every reference row over TCP with go-redis,
// in RESP2 and RESP3, setting the server clock with DEBUG CLOCK SET.
func TestVectorsEndToEnd(t *testing.T) {
	wd, err := os.Getwd()
	require.NoError(t, err)
	p, err := vectors.Path(wd)
	require.NoError(t, err)
	f, err := vectors.Load(p)
	require.NoError(t, err)
	require.Len(t, f.Rows, 89)
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("RESP%d", proto), func(t *testing.T) {
			ts := startServer(t, true)
			c := ts.client(t, proto)
			for i, row := range f.Rows {
				setClock(t, c, f.EpochNs+row.TNs)
				args := make([]any, len(row.Args))
				for j, a := range row.Args {
					args[j] = a
				}
				v, err := do(c, args...)
				if row.Expect == nil {
					require.Error(t, err, "row %d %v", i, row.Args)
					assert.True(t, strings.HasPrefix(err.Error(), "ERR "), "row %d: %v", i, err)
					continue
				}
				assert.Equal(t, row.Expect, ints(t, v, err), "row %d %s %v (%s)", i, row.Scenario, row.Args, row.Note)
			}
		})
	}
}

func TestReadmeExample(t *testing.T) {
	ts := startServer(t, true)
	c := ts.client(t, 3)
	setClock(t, c, epoch)
	assert.Equal(t, []int64{0, 16, 15, -1, 2}, call(t, c, "THROTTLE", "user123", 15, 30, 60, 1))
	assert.Equal(t, []int64{0, 16, 14, -1, 4}, call(t, c, "CL.THROTTLE", "user123", 15, 30, 60))
}

// TestConcurrentAdmitsExactlyOverTCP: N connections x M calls on one key at
// one frozen instant admit exactly max_burst+1.
func TestConcurrentAdmitsExactlyOverTCP(t *testing.T) {
	ts := startServer(t, true)
	c := ts.client(t, 2)
	setClock(t, c, epoch)
	const goroutines, calls, burst = 20, 40, 149
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted, limited := 0, 0
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", ts.addr)
			if !assert.NoError(t, err) {
				return
			}
			defer conn.Close()
			r := bufio.NewReader(conn)
			a, l := 0, 0
			for i := 0; i < calls; i++ {
				_, err := fmt.Fprintf(conn, "THROTTLE hot %d 1 60\r\n", burst)
				if !assert.NoError(t, err) {
					return
				}
				reply := readReply(t, r)
				switch {
				case strings.HasPrefix(reply, "*5\r\n:0\r\n"):
					a++
				case strings.HasPrefix(reply, "*5\r\n:1\r\n"):
					l++
				default:
					t.Errorf("unexpected reply %q", reply)
					return
				}
			}
			mu.Lock()
			admitted += a
			limited += l
			mu.Unlock()
		}()
	}
	wg.Wait()
	assert.Equal(t, burst+1, admitted)
	assert.Equal(t, goroutines*calls-(burst+1), limited)
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

func TestRawRESP(t *testing.T) {
	ts := startServer(t, true)
	c := ts.client(t, 2)
	setClock(t, c, epoch)
	got := raw(t, ts.addr,
		"*6\r\n$11\r\nCL.THROTTLE\r\n$7\r\nuser123\r\n$2\r\n15\r\n$2\r\n30\r\n$2\r\n60\r\n$1\r\n1\r\n"+
			"*5\r\n$8\r\nthrottle\r\n$4\r\n\xff\x00\xfe\n\r\n$1\r\n0\r\n$1\r\n1\r\n$1\r\n1\r\n"+
			"*5\r\n$8\r\nthrottle\r\n$4\r\n\xff\x00\xfe\n\r\n$1\r\n0\r\n$1\r\n1\r\n$1\r\n1\r\n"+
			"PING\r\n"+
			"*2\r\n$4\r\nECHO\r\n$3\r\na\x00b\r\n"+
			"*1\r\n$4\r\nfoo!\r\n"+
			"*3\r\n$8\r\nthrottle\r\n$1\r\nk\r\n$1\r\n1\r\n"+
			"*5\r\n$8\r\nthrottle\r\n$1\r\nk\r\n$3\r\n1.5\r\n$1\r\n1\r\n$1\r\n1\r\n"+
			"*5\r\n$8\r\nthrottle\r\n$1\r\nk\r\n$1\r\n1\r\n$1\r\n0\r\n$1\r\n1\r\n"+
			"*5\r\n$8\r\nthrottle\r\n$1\r\nk\r\n$1\r\n1\r\n$1\r\n1\r\n$11\r\n99999999999\r\n"+
			"*5\r\n$8\r\nthrottle\r\n$1\r\nk\r\n$1\r\n1\r\n$10\r\n2000000000\r\n$1\r\n1\r\n",
		11)
	assert.Equal(t, []string{
		"*5\r\n:0\r\n:16\r\n:15\r\n:-1\r\n:2\r\n",
		"*5\r\n:0\r\n:1\r\n:0\r\n:-1\r\n:1\r\n",
		"*5\r\n:1\r\n:1\r\n:0\r\n:1\r\n:1\r\n",
		"+PONG\r\n",
		"$3\r\na\x00b\r\n",
		"-ERR unknown command 'foo!', with args beginning with: \r\n",
		"-ERR wrong number of arguments for 'throttle' command\r\n",
		"-ERR value is not an integer or out of range\r\n",
		"-ERR invalid count: must be >= 1\r\n",
		"-ERR limit arithmetic overflows 64-bit nanoseconds\r\n",
		"-ERR zero rates are not supported\r\n",
	}, got)
}

func TestBadInputLeavesOtherKeysAlone(t *testing.T) {
	ts := startServer(t, true)
	c := ts.client(t, 2)
	setClock(t, c, epoch)
	before := call(t, c, "THROTTLE", "bystander", 5, 1, 60)
	for _, bad := range []string{
		"*1\r\n$9223372036854775807\r\nx",
		"*2\r\n$3\r\nDEL\r\n$-10\r\n",
		"*1\r\n*1\r\n$4\r\nPING\r\n",
		"\"unbalanced\r\n",
		"*3\r\n$3\r\nDEL\r\n$9\r\nbystander",
	} {
		conn, err := net.Dial("tcp", ts.addr)
		require.NoError(t, err)
		_, _ = io.WriteString(conn, bad)
		_ = conn.Close()
	}
	peek := call(t, c, "THROTTLE", "bystander", 5, 1, 60, 0)
	assert.Equal(t, before, peek, "the state of an unrelated key changed")
}

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

func TestKeyCommands(t *testing.T) {
	ts := startServer(t, true)
	c := ts.client(t, 2)
	ctx := context.Background()
	setClock(t, c, epoch)
	call(t, c, "THROTTLE", "a", 4, 1, 10)    // TAT +10s
	call(t, c, "THROTTLE", "b", 4, 1, 10, 2) // TAT +20s
	assert.Equal(t, int64(2), c.DBSize(ctx).Val())
	assert.Equal(t, int64(3), c.Exists(ctx, "a", "b", "a", "zzz").Val())
	assert.Equal(t, 10*time.Second, c.TTL(ctx, "a").Val())
	assert.Equal(t, 20000*time.Millisecond, c.PTTL(ctx, "b").Val())
	assert.Equal(t, time.Duration(-2), c.TTL(ctx, "zzz").Val())
	setClock(t, c, epoch+9_400_000_000)
	assert.Equal(t, 600*time.Millisecond, c.PTTL(ctx, "a").Val())
	assert.Equal(t, 1*time.Second, c.TTL(ctx, "a").Val())
	assert.Equal(t, int64(1), c.Del(ctx, "a", "zzz").Val())
	assert.Equal(t, []int64{0, 5, 4, -1, 10}, call(t, c, "THROTTLE", "a", 4, 1, 10), "DEL resets the limit")
	sec, err := c.Time(ctx).Result()
	require.NoError(t, err)
	assert.Equal(t, time.Unix(0, epoch+9_400_000_000).UTC(), sec.UTC())
	// Expiry: past every TAT, the keys are gone and DEBUG SWEEP reclaims them.
	setClock(t, c, epoch+60e9)
	assert.Equal(t, int64(0), c.Exists(ctx, "a", "b").Val())
	assert.Equal(t, int64(2), c.Do(ctx, "DEBUG", "SWEEP").Val())
	assert.Equal(t, int64(0), c.DBSize(ctx).Val())
	call(t, c, "THROTTLE", "c", 4, 1, 10)
	assert.NoError(t, c.FlushAll(ctx).Err())
	assert.NoError(t, c.Do(ctx, "FLUSHDB", "ASYNC").Err())
	assert.EqualError(t, c.Do(ctx, "FLUSHALL", "NOW").Err(), errSyntax)
	assert.Equal(t, int64(0), c.DBSize(ctx).Val())
	assert.Equal(t, int64(0), c.Do(ctx, "EXISTS", "c").Val())
}

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
	assert.Equal(t, []string{"fast", "no_auth"}, infos["auth"].Flags, "Redis 7's spellings and order")
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

func TestUnknownCommandTruncation(t *testing.T) {
	long := strings.Repeat("x", 300)
	got := errUnknownCommand([][]byte{[]byte("nope"), []byte(long), []byte("y")})
	assert.Equal(t, "ERR unknown command 'nope', with args beginning with: '"+strings.Repeat("x", 128)+"' ", got)
	got = errUnknownCommand([][]byte{[]byte("a\r\nb"), []byte("c\nd")})
	assert.Equal(t, "ERR unknown command 'a  b', with args beginning with: 'c d' ", got)
}
