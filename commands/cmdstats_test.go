package commands

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/sluicehq/sluice/acl"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cmdstatLine is how redis_exporter reads a line of INFO commandstats
// (its parseMetricsCommandStats: the name after "cmdstat_", then five
// comma-separated key=value fields in this order).
var cmdstatLine = regexp.MustCompile(`^cmdstat_(.+):calls=(\d+),usec=(\d+),usec_per_call=(\d+\.\d\d),rejected_calls=(\d+),failed_calls=(\d+)$`)

// cmdstat is one parsed line of INFO commandstats.
type cmdstat struct {
	calls, usec, rejected, failed int64
	perCall                       float64
}

// commandStats reads INFO commandstats the way redis_exporter does,
// failing on a line it could not parse.
func commandStats(t *testing.T, c *redis.Client, section string) map[string]cmdstat {
	t.Helper()
	text, err := c.Info(context.Background(), section).Result()
	require.NoError(t, err)
	out := map[string]cmdstat{}
	in := false
	for _, line := range strings.Split(text, "\r\n") {
		if strings.HasPrefix(line, "# ") {
			in = line == "# Commandstats"
			continue
		}
		if !in || line == "" {
			continue
		}
		m := cmdstatLine.FindStringSubmatch(line)
		require.NotNil(t, m, "a commandstats line redis_exporter cannot parse: %q", line)
		n := func(i int) int64 { v, err := strconv.ParseInt(m[i], 10, 64); require.NoError(t, err); return v }
		per, err := strconv.ParseFloat(m[4], 64)
		require.NoError(t, err)
		out[m[1]] = cmdstat{calls: n(2), usec: n(3), perCall: per, rejected: n(5), failed: n(6)}
	}
	return out
}

// TestCommandStats drives calls that run, fail and are refused over a real
// connection and reads them back as redis_exporter would.
func TestCommandStats(t *testing.T) {
	ts := startServer(t, true)
	c := redis.NewClient(&redis.Options{Addr: ts.addr, Protocol: 2, MaxRetries: -1, DisableIdentity: true})
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	setClock(t, c, epoch)

	for range 3 {
		require.NoError(t, c.Do(ctx, "THROTTLE", "k", 1, 1, 60).Err())
	}
	assert.Error(t, c.Do(ctx, "THROTTLE", "k", 1, 0, 60).Err())  // ran, replied an error: failed
	assert.Error(t, c.Do(ctx, "THROTTLE", "k").Err())            // arity: rejected
	assert.Error(t, c.Do(ctx, "NOSUCHCOMMAND", "x").Err())       // unknown: on no line
	assert.Error(t, c.Do(ctx, "CONFIG", "NOSUCHSUB").Err())      // unknown subcommand: on no line
	require.NoError(t, c.Do(ctx, "CONFIG", "GET", "port").Err()) // a subcommand
	require.NoError(t, c.Do(ctx, "CLIENT", "LIST").Err())        // another
	pipe := c.Pipeline()
	for i := range 1000 {
		pipe.Do(ctx, "CL.THROTTLE", "p"+strconv.Itoa(i%50), 5, 1, 60)
	}
	_, err := pipe.Exec(ctx)
	require.NoError(t, err)

	st := commandStats(t, c, "commandstats")
	assert.Equal(t, cmdstat{calls: 4, failed: 1, rejected: 1}, zeroTime(st["throttle"]))
	assert.Equal(t, cmdstat{calls: 1000}, zeroTime(st["cl.throttle"]))
	assert.Equal(t, cmdstat{calls: 1}, zeroTime(st["config|get"]))
	assert.Equal(t, cmdstat{calls: 1}, zeroTime(st["client|list"]))
	assert.Equal(t, cmdstat{calls: 1}, zeroTime(st["debug"]))
	assert.NotContains(t, st, "nosuchcommand")
	assert.NotContains(t, st, "config") // the container itself never ran
	assert.NotContains(t, st, "info")   // counted once it has run, as in Redis
	assert.Greater(t, st["cl.throttle"].usec, int64(0), "1000 calls take at least a microsecond")
	for name, s := range st {
		assert.GreaterOrEqual(t, s.usec, int64(0), name)
		if s.calls > 0 { // usec is whole microseconds, usec_per_call from nanoseconds
			assert.InDelta(t, float64(s.usec)/float64(s.calls), s.perCall, 1/float64(s.calls)+0.006, name)
		}
	}
	// The same counter as the metrics' sluice_commands_total.
	for _, cs := range ts.srv.Stats().Commands {
		if cs.Name == "cl.throttle" {
			assert.Equal(t, uint64(1000), cs.Calls)
		}
	}

	// Not in INFO nor INFO default, as in Redis; in INFO all and everything.
	for _, args := range [][]any{{"INFO"}, {"INFO", "default"}, {"INFO", "stats"}} {
		text, err := c.Do(ctx, args...).Text()
		require.NoError(t, err)
		assert.NotContains(t, text, "# Commandstats", args)
		assert.Contains(t, text, "# Stats", args)
	}
	for _, section := range []string{"all", "everything", "commandstats"} {
		assert.Contains(t, commandStats(t, c, section), "cl.throttle", section)
	}
	assert.Contains(t, commandStats(t, c, "all"), "info", "earlier INFO calls are counted")
}

// zeroTime drops a line's times, which are not deterministic.
func zeroTime(s cmdstat) cmdstat { s.usec, s.perCall = 0, 0; return s }

// TestConfigResetStat: INFO's counters restart from zero, the metrics'
// counters and the slow log do not.
func TestConfigResetStat(t *testing.T) {
	ts := startServerWith(t, Config{EnableDebug: true, Slowlog: &SlowlogConfig{SlowerThan: 0, MaxLen: 128}})
	c := redis.NewClient(&redis.Options{Addr: ts.addr, Protocol: 2, MaxRetries: -1, DisableIdentity: true})
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	setClock(t, c, epoch)
	for range 5 {
		require.NoError(t, c.Do(ctx, "THROTTLE", "k", 1, 1, 60).Err())
	}
	assert.Error(t, c.Do(ctx, "THROTTLE", "k").Err())
	stat := func(key string) int64 {
		text, err := c.Info(ctx, "stats").Result()
		require.NoError(t, err)
		m := regexp.MustCompile(`(?m)^` + key + `:(\d+)\r$`).FindStringSubmatch(text)
		require.NotNil(t, m, key)
		n, _ := strconv.ParseInt(m[1], 10, 64)
		return n
	}
	require.GreaterOrEqual(t, stat("total_commands_processed"), int64(7))
	require.Equal(t, int64(5), stat("throttle_allowed")+stat("throttle_limited"))
	require.Equal(t, int64(1), stat("rejected_calls"))
	slowBefore, err := c.Do(ctx, "SLOWLOG", "LEN").Int64()
	require.NoError(t, err)
	require.Positive(t, slowBefore)

	require.NoError(t, c.Do(ctx, "CONFIG", "RESETSTAT").Err())

	st := commandStats(t, c, "commandstats")
	assert.Equal(t, map[string]cmdstat{"config|resetstat": {calls: 1}}, map[string]cmdstat{"config|resetstat": zeroTime(st["config|resetstat"])})
	assert.Len(t, st, 1, "only CONFIG RESETSTAT itself, as in Redis: %v", st)
	assert.Equal(t, int64(0), stat("throttle_allowed")+stat("throttle_limited"))
	assert.Equal(t, int64(0), stat("rejected_calls"))
	// The INFOs since: commandstats, the three stats above and this one
	// (Sluice counts a command when it arrives).
	assert.Equal(t, int64(5), stat("total_commands_processed"))
	assert.Positive(t, stat("total_connections_received")+1) // present and not negative

	// The metrics' counters never go backwards.
	ms := ts.srv.Stats()
	for _, cs := range ms.Commands {
		if cs.Name == "throttle" {
			assert.Equal(t, uint64(5), cs.Calls)
		}
	}
	assert.Equal(t, uint64(1), ms.Rejected)
	assert.GreaterOrEqual(t, ms.CommandsProcessed, uint64(10))
	assert.Equal(t, uint64(5), ms.Allowed+ms.Limited)

	slowAfter, err := c.Do(ctx, "SLOWLOG", "LEN").Int64()
	require.NoError(t, err)
	assert.Greater(t, slowAfter, slowBefore, "RESETSTAT keeps the slow log")

	// Counting goes on from the baseline.
	require.NoError(t, c.Do(ctx, "THROTTLE", "k", 1, 1, 60).Err())
	assert.Equal(t, int64(1), zeroTime(commandStats(t, c, "commandstats")["throttle"]).calls)
	assert.Equal(t, int64(1), stat("throttle_allowed")+stat("throttle_limited"))
}

// TestSlowlog logs every command (slowlog-log-slower-than 0) and checks
// the entries: order, ids, the server clock's time, truncation,
// redaction, the client's address and name, the length bound.
func TestSlowlog(t *testing.T) {
	ts := startServerWith(t, Config{EnableDebug: true, Slowlog: &SlowlogConfig{SlowerThan: 0, MaxLen: 5}})
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: ts.addr, Protocol: 2, MaxRetries: -1, DisableIdentity: true, PoolSize: 1})
	t.Cleanup(func() { _ = c.Close() })
	setClock(t, c, epoch+3e9)
	require.NoError(t, c.Do(ctx, "CLIENT", "SETNAME", "app").Err())
	local, err := c.Do(ctx, "CLIENT", "INFO").Text()
	require.NoError(t, err)
	addr := regexp.MustCompile(`addr=(\S+)`).FindStringSubmatch(local)[1]
	require.NoError(t, c.Do(ctx, "SLOWLOG", "RESET").Err())

	many := []any{"DEL"}
	for i := range 40 {
		many = append(many, "k"+strconv.Itoa(i))
	}
	require.NoError(t, c.Do(ctx, many...).Err())
	exact := []any{"DEL"}
	for i := range 31 {
		exact = append(exact, strconv.Itoa(i))
	}
	require.NoError(t, c.Do(ctx, exact...).Err())
	long := strings.Repeat("x", 200)
	require.NoError(t, c.Do(ctx, "EXISTS", long, strings.Repeat("y", 128)).Err())
	assert.Error(t, c.Do(ctx, "AUTH", "someone", "secret").Err())
	assert.Error(t, c.Do(ctx, "HELLO", "3", "AUTH", "someone", "secret", "SETNAME", "x").Err())

	entries, err := c.Do(ctx, "SLOWLOG", "GET", -1).Slice()
	require.NoError(t, err)
	require.Len(t, entries, 5, "slowlog-max-len 5 keeps the newest five")
	var ids []int64
	var args [][]string
	for _, e := range entries {
		f := e.([]any)
		require.Len(t, f, 6)
		ids = append(ids, f[0].(int64))
		assert.Equal(t, epoch/1e9+3, f[1].(int64), "the server clock's Unix time")
		assert.GreaterOrEqual(t, f[2].(int64), int64(0))
		var a []string
		for _, v := range f[3].([]any) {
			a = append(a, v.(string))
		}
		args = append(args, a)
		assert.Equal(t, addr, f[4])
		assert.Equal(t, "app", f[5])
	}
	assert.Equal(t, []int64{ids[4] + 4, ids[4] + 3, ids[4] + 2, ids[4] + 1, ids[4]}, ids, "newest first, ids one apart")
	assert.Equal(t, []string{"HELLO", "3", "AUTH", "(redacted)", "(redacted)", "SETNAME", "x"}, args[0])
	assert.Equal(t, []string{"AUTH", "(redacted)", "(redacted)"}, args[1])
	assert.Equal(t, []string{"EXISTS", strings.Repeat("x", 128) + "... (72 more bytes)", strings.Repeat("y", 128)}, args[2])
	require.Len(t, args[3], 32, "32 arguments are kept whole")
	assert.Equal(t, "30", args[3][31])
	require.Len(t, args[4], 32)
	assert.Equal(t, []string{"DEL", "k0"}, args[4][:2])
	assert.Equal(t, "k29", args[4][30])
	assert.Equal(t, "... (10 more arguments)", args[4][31], "41 arguments: 31 kept")

	two, err := c.Do(ctx, "SLOWLOG", "GET", 2).Slice()
	require.NoError(t, err)
	assert.Len(t, two, 2)
	assert.Equal(t, "SLOWLOG", two[0].([]any)[3].([]any)[0], "the GET before is the newest")
	n, err := c.Do(ctx, "SLOWLOG", "LEN").Int64()
	require.NoError(t, err)
	assert.Equal(t, int64(5), n)
	require.NoError(t, c.Do(ctx, "SLOWLOG", "RESET").Err())
	n, err = c.Do(ctx, "SLOWLOG", "LEN").Int64()
	require.NoError(t, err)
	assert.Equal(t, int64(1), n, "RESET itself is logged once it ran, as in Redis")

	for _, bad := range []any{-2, "x"} {
		assert.EqualError(t, c.Do(ctx, "SLOWLOG", "GET", bad).Err(), "ERR count should be greater than or equal to -1")
	}
	assert.EqualError(t, c.Do(ctx, "SLOWLOG", "GET", 1, 2).Err(), "ERR unknown subcommand or wrong number of arguments for 'GET'. Try SLOWLOG HELP.")
	assert.EqualError(t, c.Do(ctx, "SLOWLOG", "NOPE").Err(), "ERR unknown subcommand 'NOPE'. Try SLOWLOG HELP.")
	help, err := c.Do(ctx, "SLOWLOG", "HELP").StringSlice()
	require.NoError(t, err)
	assert.Contains(t, help, "GET [<count>]")

	// slowlog-log-slower-than -1 logs nothing.
	off := startServerWith(t, Config{Slowlog: &SlowlogConfig{SlowerThan: -1, MaxLen: 128}})
	oc := off.client(t, 2)
	for range 10 {
		require.NoError(t, oc.Ping(ctx).Err())
	}
	n, err = oc.Do(ctx, "SLOWLOG", "LEN").Int64()
	require.NoError(t, err)
	assert.Zero(t, n)
}

// TestSlowlogArgs pins the cuts at their boundaries.
func TestSlowlogArgs(t *testing.T) {
	mk := func(n int) [][]byte {
		out := [][]byte{[]byte("del")}
		for i := 1; i < n; i++ {
			out = append(out, []byte(strconv.Itoa(i)))
		}
		return out
	}
	plain := &Command{Name: "del"}
	assert.Len(t, slowlogArgs(plain, mk(32)), 32)
	assert.Equal(t, "31", slowlogArgs(plain, mk(32))[31])
	assert.Equal(t, "... (2 more arguments)", slowlogArgs(plain, mk(33))[31])
	assert.Len(t, slowlogArgs(plain, mk(33)), 32)
	for _, n := range []int{127, 128} {
		a := strings.Repeat("a", n)
		assert.Equal(t, a, slowlogArgs(plain, [][]byte{[]byte("del"), []byte(a)})[1])
	}
	assert.Equal(t, strings.Repeat("a", 128)+"... (1 more bytes)", slowlogArgs(plain, [][]byte{[]byte("del"), []byte(strings.Repeat("a", 129))})[1])
	hello := &Command{Name: "hello", Redact: redactHello}
	assert.Equal(t, []string{"hello", "3"}, slowlogArgs(hello, [][]byte{[]byte("hello"), []byte("3")}))
	assert.Equal(t, []string{"hello", "3", "auth", "u"}, slowlogArgs(hello, [][]byte{[]byte("hello"), []byte("3"), []byte("auth"), []byte("u")}),
		"AUTH without both credentials: nothing to hide (HELLO refuses it)")
}

// TestSlowlogRing: the log keeps the newest maxLen entries, newest first.
func TestSlowlogRing(t *testing.T) {
	var l slowlog
	l.init(&SlowlogConfig{SlowerThan: 0, MaxLen: 3})
	sess := &session{addr: "127.0.0.1:1"}
	cmd := &Command{Name: "ping"}
	for i := range 5 {
		l.add(cmd, sess, [][]byte{[]byte("ping"), []byte(strconv.Itoa(i))}, int64(i)*1000, 0)
	}
	var got []string
	for _, e := range l.newest(-1) {
		got = append(got, fmt.Sprintf("%d:%s:%d", e.id, e.args[1], e.micros))
	}
	assert.Equal(t, []string{"4:4:4", "3:3:3", "2:2:2"}, got)
	assert.Len(t, l.newest(2), 2)
	assert.Len(t, l.newest(0), 0)
	l.reset()
	assert.Zero(t, l.len())
	l.add(cmd, sess, [][]byte{[]byte("ping")}, 0, 0)
	assert.Equal(t, int64(5), l.newest(1)[0].id, "ids go on after a reset")

	var none slowlog
	none.init(&SlowlogConfig{SlowerThan: 0, MaxLen: 0})
	assert.Equal(t, int64(1<<63-1), none.slowerThan, "max-len 0 logs nothing")
}

// TestSlowlogNeedsAdmin: SLOWLOG and CONFIG RESETSTAT are @admin, as in
// Redis; the refusals count as rejected calls.
func TestSlowlogNeedsAdmin(t *testing.T) {
	us := acl.NewUsers("adminpw")
	require.NoError(t, us.Load(strings.NewReader("user ops on >opspw +@all -@admin\n"), Catalog()))
	ts := startServerWith(t, Config{Users: us})
	ctx := context.Background()
	ops := redis.NewClient(&redis.Options{Addr: ts.addr, Protocol: 2, Username: "ops", Password: "opspw", MaxRetries: -1, DisableIdentity: true})
	t.Cleanup(func() { _ = ops.Close() })
	assert.EqualError(t, ops.Do(ctx, "SLOWLOG", "GET").Err(), "NOPERM User ops has no permissions to run the 'slowlog|get' command")
	assert.EqualError(t, ops.Do(ctx, "SLOWLOG", "RESET").Err(), "NOPERM User ops has no permissions to run the 'slowlog|reset' command")
	assert.EqualError(t, ops.Do(ctx, "CONFIG", "RESETSTAT").Err(), "NOPERM User ops has no permissions to run the 'config|resetstat' command")
	require.NoError(t, ops.Do(ctx, "SLOWLOG", "HELP").Err(), "HELP is not @admin")

	admin := redis.NewClient(&redis.Options{Addr: ts.addr, Protocol: 2, Password: "adminpw", MaxRetries: -1, DisableIdentity: true})
	t.Cleanup(func() { _ = admin.Close() })
	require.NoError(t, admin.Do(ctx, "SLOWLOG", "GET").Err())
	st := commandStats(t, admin, "commandstats")
	assert.Equal(t, cmdstat{calls: 1, rejected: 1}, zeroTime(st["slowlog|get"]))
	assert.Equal(t, cmdstat{rejected: 1}, zeroTime(st["slowlog|reset"]))
	assert.Equal(t, cmdstat{rejected: 1}, zeroTime(st["config|resetstat"]))
}

// TestStampChainsWithinBatch: a pipelined command's instant is the one
// stamped at the end of the command before it, so a DEBUG CLOCK SET is
// seen by the next command of the same batch.
func TestStampChainsWithinBatch(t *testing.T) {
	ts := startServer(t, true)
	c := ts.client(t, 2)
	ctx := context.Background()
	pipe := c.Pipeline()
	pipe.Do(ctx, "DEBUG", "CLOCK", "SET", epoch)
	t1 := pipe.Do(ctx, "DEBUG", "CLOCK", "GET")
	t2 := pipe.Do(ctx, "TIME")
	pipe.Do(ctx, "DEBUG", "CLOCK", "SET", epoch+7e9)
	t3 := pipe.Do(ctx, "TIME")
	_, err := pipe.Exec(ctx)
	require.NoError(t, err)
	assert.Equal(t, epoch, t1.Val())
	assert.Equal(t, []any{strconv.FormatInt(epoch/1e9, 10), "0"}, t2.Val())
	assert.Equal(t, []any{strconv.FormatInt(epoch/1e9+7, 10), "0"}, t3.Val())
}

// entries (but for ids, times and ports) and the commandstats counts.
func TestSlowlogAndCommandstatsMatchRedis(t *testing.T) {
	rc := startRedisServer(t, freePort, func(string) []string {
		return []string{"--slowlog-log-slower-than", "0", "--slowlog-max-len", "128"}
	}, redis.Options{Protocol: 2, MaxRetries: -1, DisableIdentity: true, PoolSize: 1})
	ts := startServerWith(t, Config{Slowlog: &SlowlogConfig{SlowerThan: 0, MaxLen: 128}})
	sc := redis.NewClient(&redis.Options{Addr: ts.addr, Protocol: 2, MaxRetries: -1, DisableIdentity: true, PoolSize: 1})
	t.Cleanup(func() { _ = sc.Close() })
	ctx := context.Background()

	many := []any{"DEL"}
	for i := range 40 {
		many = append(many, "k"+strconv.Itoa(i))
	}
	calls := [][]any{
		{"CONFIG", "RESETSTAT"},
		{"SLOWLOG", "RESET"},
		{"CLIENT", "SETNAME", "app"},
		many,
		{"EXISTS", strings.Repeat("x", 200)},
		{"AUTH", "secret"},
		{"AUTH", "someone", "secret"},
		{"DEL"},                           // arity: rejected
		{"CLIENT", "SETNAME", "bad name"}, // ran, replied an error: failed
		{"SLOWLOG", "GET", -5},            // failed
		{"SLOWLOG", "LEN"},
	}
	type result struct {
		entries [][]any
		stats   map[string]cmdstat
		errs    []string
	}
	run := func(c *redis.Client) result {
		var r result
		for _, call := range calls {
			err := c.Do(ctx, call...).Err()
			if err != nil {
				r.errs = append(r.errs, err.Error())
			} else {
				r.errs = append(r.errs, "")
			}
		}
		got, err := c.Do(ctx, "SLOWLOG", "GET", -1).Slice()
		require.NoError(t, err)
		for _, e := range got {
			f := e.([]any)
			require.Len(t, f, 6)
			host, _, err := net.SplitHostPort(f[4].(string))
			require.NoError(t, err)
			r.entries = append(r.entries, []any{f[3], host, f[5]})
		}
		r.stats = map[string]cmdstat{}
		for name, s := range commandStats(t, c, "commandstats") {
			r.stats[name] = zeroTime(s)
		}
		return r
	}
	want, got := run(rc), run(sc)
	require.Len(t, want.entries, 9, "every call from SLOWLOG RESET on but the refused DEL")
	require.Equal(t, cmdstat{calls: 2, failed: 2}, want.stats["auth"])
	assert.Equal(t, want.entries, got.entries)
	assert.Equal(t, want.errs, got.errs)
	for _, name := range []string{"client|setname", "del", "exists", "auth", "slowlog|get", "slowlog|len", "slowlog|reset", "config|resetstat"} {
		assert.Equal(t, want.stats[name], got.stats[name], name)
	}
}
