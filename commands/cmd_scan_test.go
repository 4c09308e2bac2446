package commands

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/sluicehq/sluice/acl"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scanKeys runs a whole SCAN with go-redis's iterator and returns the keys,
// sorted.
func scanKeys(t *testing.T, c *redis.Client, match string, count int64, typ string) []string {
	t.Helper()
	ctx := context.Background()
	var it *redis.ScanIterator
	if typ != "" {
		it = c.ScanType(ctx, 0, match, count, typ).Iterator()
	} else {
		it = c.Scan(ctx, 0, match, count).Iterator()
	}
	var keys []string
	for it.Next(ctx) {
		keys = append(keys, it.Val())
	}
	require.NoError(t, it.Err())
	slices.Sort(keys)
	return keys
}

// fillKinds makes n keys of each kind (g:i GCRA, w:i window, l:i lease) and
// one key, both, holding a TAT and a window.
func fillKinds(t *testing.T, c *redis.Client, n int) (all []string) {
	t.Helper()
	for i := range n {
		call(t, c, "THROTTLE", fmt.Sprintf("g:%d", i), 5, 1, 60)
		call(t, c, "THROTTLE.WINDOW", fmt.Sprintf("w:%d", i), 5, 60)
		call(t, c, "LEASE.ACQUIRE", fmt.Sprintf("l:%d", i), 2, 60000)
		all = append(all, fmt.Sprintf("g:%d", i), fmt.Sprintf("w:%d", i), fmt.Sprintf("l:%d", i))
	}
	call(t, c, "THROTTLE", "both", 5, 1, 60)
	call(t, c, "THROTTLE.WINDOW", "both", 5, 60)
	all = append(all, "both")
	slices.Sort(all)
	return all
}

func TestScan(t *testing.T) {
	ts := startServer(t, true)
	c := ts.client(t, 2)
	setClock(t, c, epoch)
	all := fillKinds(t, c, 50)

	for _, count := range []int64{0, 1, 7, 1000} { // 0: the default, 10
		assert.Equal(t, all, scanKeys(t, c, "", count, ""), "count %d", count)
	}
	var gcra, windows []string
	for _, k := range all {
		if strings.HasPrefix(k, "g:") || k == "both" {
			gcra = append(gcra, k)
		}
		if strings.HasPrefix(k, "w:") || k == "both" {
			windows = append(windows, k)
		}
	}
	assert.Equal(t, gcra, scanKeys(t, c, "", 5, "gcra"))
	assert.Equal(t, windows, scanKeys(t, c, "", 5, "WINDOW"))
	assert.Len(t, scanKeys(t, c, "", 5, "lease"), 50)
	assert.Empty(t, scanKeys(t, c, "", 5, "string"), "no key has Redis's types")
	assert.Equal(t, []string{"l:1", "l:10", "l:11", "l:12", "l:13", "l:14", "l:15", "l:16", "l:17", "l:18", "l:19"},
		scanKeys(t, c, "l:1*", 3, ""))
	assert.Equal(t, []string{"g:3", "w:3"}, scanKeys(t, c, "[gw]:3", 3, ""))

	// Expired state is not returned, before any sweep.
	setClock(t, c, epoch+3600e9)
	assert.Empty(t, scanKeys(t, c, "", 100, ""))

	for _, tc := range []struct {
		args []any
		want string
	}{
		{[]any{"SCAN", "abc"}, errInvalidCursor},
		{[]any{"SCAN", "18446744073709551616"}, errInvalidCursor},
		{[]any{"SCAN", "0", "COUNT", "0"}, errSyntax},
		{[]any{"SCAN", "0", "COUNT", "x"}, errNotInteger},
		{[]any{"SCAN", "0", "MATCH"}, errSyntax},
		{[]any{"SCAN", "0", "BOGUS", "1"}, errSyntax},
	} {
		assert.EqualError(t, c.Do(context.Background(), tc.args...).Err(), tc.want, "%v", tc.args)
	}
	v, err := c.Do(context.Background(), "SCAN", "-1").Slice()
	require.NoError(t, err)
	assert.Equal(t, "0", v[0], "a cursor past the end ends the scan (Redis reads -1 as 2^64-1)")
}

func TestType(t *testing.T) {
	ts := startServer(t, true)
	c := ts.client(t, 2)
	setClock(t, c, epoch)
	fillKinds(t, c, 1)
	ctx := context.Background()
	for key, want := range map[string]string{"g:0": "gcra", "w:0": "window", "l:0": "lease", "both": "gcra,window", "nope": "none"} {
		assert.Equal(t, want, c.Type(ctx, key).Val(), key)
	}
}

// TestScanSeesOnlyPermittedKeys: a user limited by ACL key patterns scans
// only the keys it may access.
func TestScanSeesOnlyPermittedKeys(t *testing.T) {
	us := acl.NewUsers("adminpw")
	require.NoError(t, us.Load(strings.NewReader("user tenant1 on >t1pw ~tenant1:* +@throttle +@keyspace +@connection\n"), Catalog()))
	ts := startServerWith(t, Config{Users: us, EnableDebug: true})
	admin := redis.NewClient(&redis.Options{Addr: ts.addr, Protocol: 2, Password: "adminpw"})
	defer admin.Close()
	setClock(t, admin, epoch)
	for i := range 20 {
		call(t, admin, "THROTTLE", fmt.Sprintf("tenant1:%d", i), 5, 1, 60)
		call(t, admin, "THROTTLE", fmt.Sprintf("tenant2:%d", i), 5, 1, 60)
	}
	tenant := redis.NewClient(&redis.Options{Addr: ts.addr, Protocol: 2, Username: "tenant1", Password: "t1pw"})
	defer tenant.Close()
	keys := scanKeys(t, tenant, "", 4, "")
	assert.Len(t, keys, 20)
	for _, k := range keys {
		assert.True(t, strings.HasPrefix(k, "tenant1:"), k)
	}
	assert.Empty(t, scanKeys(t, tenant, "tenant2:*", 100, ""))
	assert.Len(t, scanKeys(t, admin, "", 4, ""), 40)
}

// TestRedisCLIScan: redis-cli --scan (with --pattern) lists the keys.
func TestRedisCLIScan(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		const why = "redis-cli not installed (apt install redis-tools, as compat/ci-deps.sh does): skipping the redis-cli --scan check"
		if os.Getenv("SLUICE_COMPAT_STRICT") != "" {
			t.Fatal("SLUICE_COMPAT_STRICT: " + why)
		}
		t.Skip(why)
	}
	ts := startServer(t, true)
	c := ts.client(t, 2)
	setClock(t, c, epoch)
	all := fillKinds(t, c, 30)
	host, port, _ := strings.Cut(ts.addr, ":")
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{nil, all},
		{[]string{"--pattern", "g:2*"}, []string{"g:2", "g:20", "g:21", "g:22", "g:23", "g:24", "g:25", "g:26", "g:27", "g:28", "g:29"}},
	} {
		out, err := exec.Command(cli, append([]string{"-h", host, "-p", port, "--scan"}, tc.args...)...).CombinedOutput()
		require.NoError(t, err, string(out))
		got := strings.Fields(string(out))
		slices.Sort(got)
		assert.Equal(t, tc.want, got, "redis-cli --scan %v", tc.args)
	}
}
