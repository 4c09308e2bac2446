package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sluicehq/sluice/cluster"
	"github.com/sluicehq/sluice/keyspace"
	"github.com/sluicehq/sluice/replication"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tagOn finds a hashtag whose slot node i serves in the version 1 map.
func tagOn(tc *testCluster, i int) (string, int) {
	for n := 0; ; n++ {
		tag := "{m" + strconv.Itoa(n) + "}"
		if owner(tc, tag) == i {
			return tag, cluster.Slot([]byte(tag))
		}
	}
}

// slotState is every change that rebuilds the keys of slot on node s,
// sorted: two nodes hold the same state of the slot when they are equal.
func slotState(s *Server, slot int) []string {
	var out []string
	s.state.keys.Range(func(c keyspace.Change) {
		if cluster.Slot(c.Key) == slot {
			out = append(out, fmt.Sprintf("%v %q %d %x", c.Kind, c.Key, c.Expires, c.Value))
		}
	})
	slices.Sort(out)
	return out
}

// waitMigrated polls CLUSTER INFO on c until migrating_state is success
// (or fail, which fails the test).
func waitMigrated(t *testing.T, c *redis.Client, slot int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, err := c.ClusterInfo(context.Background()).Result()
		require.NoError(t, err)
		require.NotContains(t, info, "migrating_state: fail", info)
		if strings.Contains(info, fmt.Sprintf("migrating_slot: %d\r\n", slot)) && strings.Contains(info, "migrating_state: success") {
			return
		}
		require.True(t, time.Now().Before(deadline), "slot %d not migrated within 30 s: %s", slot, info)
		time.Sleep(5 * time.Millisecond)
	}
}

// TestClusterMigrateSlotUnderLoad: while go-redis ClusterClients throttle
// keys of the slot being moved (and of others), CLUSTERX MIGRATE copies
// the slot from node 0 to node 1 and CLUSTERX SETSLOT gives it to node 1
// at version 2. No request fails (the clients retry -TRYAGAIN and follow
// -MOVED), node 1 then holds exactly the state node 0 held for the slot,
// every key's remaining count equals the limit minus the requests the
// clients saw admitted (none lost, none counted twice), and node 0 drops
// the slot's keys.
func TestClusterMigrateSlotUnderLoad(t *testing.T) {
	tc := startCluster(t)
	ctx := context.Background()
	cc := tc.client(t)
	setClock(t, cc, 1893456000000000000) // frozen: only requests change state
	tag, slot := tagOn(tc, 0)
	n0 := redis.NewClient(&redis.Options{Addr: tc.addrs[0], MaxRetries: -1})
	defer n0.Close()
	n1 := redis.NewClient(&redis.Options{Addr: tc.addrs[1], MaxRetries: -1})
	defer n1.Close()

	// State of every kind in the slot before the copy.
	require.NoError(t, cc.Do(ctx, "THROTTLE.WINDOW", tag+":window", 5, 60).Err())
	require.NoError(t, cc.Do(ctx, "LEASE.ACQUIRE", tag+":lease", 3, 1000).Err())
	for i := range 3 {
		require.NoError(t, cc.Do(ctx, "THROTTLE", tag+":old", 9, 10, 60, i+1).Err())
	}
	peekOld, err := n0.Do(ctx, "THROTTLE", tag+":old", 9, 10, 60, 0).Slice()
	require.NoError(t, err)

	// Load: each worker throttles its own keys, half in the slot, half
	// elsewhere, and counts what was admitted. Bounded: it stops 50
	// requests after the slot changed hands, or at 5,000.
	const workers, keysEach, limit = 4, 10, 100000
	var (
		wg       sync.WaitGroup
		failed   atomic.Int64
		errs     sync.Map
		admitted = make([][keysEach]int, workers)
		moved    = make(chan struct{})
		ready    sync.WaitGroup
	)
	key := func(w, j int) string {
		if j%2 == 0 {
			return tag + ":" + strconv.Itoa(w) + ":" + strconv.Itoa(j)
		}
		return "other:" + strconv.Itoa(w) + ":" + strconv.Itoa(j)
	}
	ready.Add(workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := tc.client(t)
			since := -1
			for n := 0; since < 50 && n < 5000; n++ {
				j := n % keysEach
				v, err := cl.Do(ctx, "THROTTLE", key(w, j), limit-1, limit, 3600, 1).Slice()
				switch {
				case err != nil:
					failed.Add(1)
					errs.Store(err.Error(), true)
				case v[0].(int64) == 0:
					admitted[w][j]++
				}
				if n == 20 {
					ready.Done()
				}
				select {
				case <-moved:
					since++
				default:
				}
			}
		}()
	}
	ready.Wait()
	require.NoError(t, n0.Do(ctx, "CLUSTERX", "MIGRATE", slot, clusterIDs[1]).Err())
	waitMigrated(t, n0, slot)
	// Node 0 redirects the slot to node 1, which serves it, before any
	// topology says so.
	assert.EqualError(t, n0.Do(ctx, "THROTTLE", tag+":x", 1, 1, 1, 0).Err(), fmt.Sprintf("MOVED %d %s", slot, tc.addrs[1]))
	v1, err := n1.Do(ctx, "THROTTLE", tag+":old", 9, 10, 60, 0).Slice()
	require.NoError(t, err)
	assert.Equal(t, peekOld, v1, "node 1 answers as node 0 did")
	// The keys the load leaves alone: node 1 holds node 0's state of
	// them, every kind byte for byte.
	untouched := func(s *Server) []string {
		return slices.DeleteFunc(slotState(s, slot), func(c string) bool {
			return !strings.Contains(c, tag+":") || strings.Contains(c, tag+":0:") ||
				strings.Contains(c, tag+":1:") || strings.Contains(c, tag+":2:") || strings.Contains(c, tag+":3:")
		})
	}
	assert.Len(t, untouched(tc.nodes[0]), 3)
	assert.Equal(t, untouched(tc.nodes[0]), untouched(tc.nodes[1]), "node 1 holds node 0's state of slot %d", slot)
	for i := range tc.nodes {
		c := redis.NewClient(&redis.Options{Addr: tc.addrs[i], MaxRetries: -1})
		require.NoError(t, c.Do(ctx, "CLUSTERX", "SETSLOT", slot, "NODE", clusterIDs[1], 2).Err(), "node %d", i)
		_ = c.Close()
	}
	close(moved)
	wg.Wait()
	errs.Range(func(k, _ any) bool { t.Errorf("client error: %s", k); return true })
	assert.Zero(t, failed.Load())

	// Node 1 holds the slot's state as node 0 last had it, and each key's
	// remaining count is what the admitted requests left.
	info0, err := n0.Info(ctx, "cluster").Result()
	require.NoError(t, err)
	t.Logf("node 0: %s; writes refused for %v", strings.ReplaceAll(info0, "\r\n", " "), tc.nodes[0].state.cmds.ClusterStats().LastWritesRefused)
	for w := range workers {
		for j := range keysEach {
			v, err := cc.Do(ctx, "THROTTLE", key(w, j), limit-1, limit, 3600, 0).Slice()
			require.NoError(t, err)
			assert.Equal(t, int64(limit-admitted[w][j]), v[2], "remaining of %s", key(w, j))
		}
	}
	assert.Len(t, slotState(tc.nodes[1], slot), 3+workers*keysEach/2, "the window, the lease, :old and the load's keys")
	require.NoError(t, n0.Do(ctx, "DEBUG", "SWEEP").Err())
	assert.Empty(t, slotState(tc.nodes[0], slot), "node 0 dropped the slot's keys")
	for _, c := range []*redis.Client{n0, n1} {
		v, err := c.Do(ctx, "CLUSTERX", "VERSION").Int64()
		require.NoError(t, err)
		assert.Equal(t, int64(2), v)
	}
	nodes, err := n1.ClusterNodes(ctx).Result()
	require.NoError(t, err)
	assert.Contains(t, nodes, fmt.Sprintf(" %d", slot), "node 1 lists the slot")
}

// TestClusterMigrateRefusals: CLUSTERX MIGRATE, SETSLOT, IMPORT and APPLY
// refuse bad arguments, unknown or unfit nodes and slots this node does
// not own, with a clear error, and change nothing.
func TestClusterMigrateRefusals(t *testing.T) {
	tc := startCluster(t)
	ctx := context.Background()
	n0 := redis.NewClient(&redis.Options{Addr: tc.addrs[0], MaxRetries: -1})
	defer n0.Close()
	mineTag, mine := tagOn(tc, 0)
	_, theirs := tagOn(tc, 1)
	for _, c := range []struct {
		args []any
		err  string
	}{
		{[]any{"MIGRATE", "x", clusterIDs[1]}, "ERR Invalid slot"},
		{[]any{"MIGRATE", 16384, clusterIDs[1]}, "ERR Invalid slot"},
		{[]any{"MIGRATE", -1, clusterIDs[1]}, "ERR Invalid slot"},
		{[]any{"MIGRATE", mine, strings.Repeat("9", 40)}, "ERR Can't find the destination node id"},
		{[]any{"MIGRATE", mine, "nothex"}, "ERR Can't find the destination node id"},
		{[]any{"MIGRATE", theirs, clusterIDs[1]}, "ERR Can't migrate slot which doesn't belong to me"},
		{[]any{"MIGRATE", mine, clusterIDs[0]}, "ERR Can't migrate slot to myself"},
		{[]any{"MIGRATE", "5460-5461", clusterIDs[1]}, "ERR Can't migrate slot which doesn't belong to me"},
		{[]any{"MIGRATE", "5-", clusterIDs[1]}, "ERR Invalid slot"},
		{[]any{"MIGRATE", mine, clusterIDs[1], "NOW"}, "ERR syntax error"},
		{[]any{"SETSLOT", mine, "NODE", clusterIDs[1], 1}, "ERR Invalid cluster version: 1 must be the current version 1 + 1"},
		{[]any{"SETSLOT", mine, "NODE", clusterIDs[1], 3}, "ERR Invalid cluster version: 3 must be the current version 1 + 1"},
		{[]any{"SETSLOT", mine, "NODE", strings.Repeat("9", 40), 2}, "ERR Invalid node id: not in the topology"},
		{[]any{"SETSLOT", mine, "MIGRATING", clusterIDs[1], 2}, "ERR Invalid setslot options: only NODE is supported"},
		{[]any{"SETSLOT", "5-3", "NODE", clusterIDs[1], 2}, "ERR Invalid slot"},
		{[]any{"SETSLOT", mine, "NODE", clusterIDs[1], "v"}, "ERR value is not an integer or out of range"},
		{[]any{"IMPORT", mine, 0}, "ERR Can't import slot which belongs to me"},
		{[]any{"IMPORT", theirs, 3}, "ERR Invalid import state: want 0 (start), 1 (success) or 2 (failed)"},
		{[]any{"IMPORT", theirs, 1}, fmt.Sprintf("ERR slot %d is not being imported", theirs)},
		{[]any{"APPLY", theirs, "S"}, fmt.Sprintf("ERR slot %d is not being imported (CLUSTERX IMPORT %d 0 first)", theirs, theirs)},
	} {
		err := n0.Do(ctx, append([]any{"CLUSTERX"}, c.args...)...).Err()
		assert.EqualError(t, err, c.err, "%v", c.args)
	}
	// A record for a key of another slot is refused whole.
	require.NoError(t, n0.Do(ctx, "CLUSTERX", "IMPORT", theirs, 0).Err())
	rec := replication.AppendRecord(nil, keyspace.Change{Op: keyspace.Set, Kind: keyspace.GCRA, Key: []byte("k"), Expires: 1 << 62})
	assert.ErrorContains(t, n0.Do(ctx, "CLUSTERX", "APPLY", theirs, rec).Err(),
		fmt.Sprintf("ERR Invalid records: key \"k\" is not in slot %d", theirs))
	assert.ErrorContains(t, n0.Do(ctx, "CLUSTERX", "APPLY", theirs, "Z").Err(), "ERR Invalid records: replication stream corrupt")
	require.NoError(t, n0.Do(ctx, "CLUSTERX", "IMPORT", theirs, 2).Err())
	info, err := n0.ClusterInfo(ctx).Result()
	require.NoError(t, err)
	assert.Contains(t, info, fmt.Sprintf("importing_slot: %d\r\nimport_state: error\r\n", theirs))
	v, err := n0.Do(ctx, "CLUSTERX", "VERSION").Int64()
	require.NoError(t, err)
	assert.Equal(t, int64(1), v)

	// A replica is refused as a destination; a master that cannot be
	// reached fails the migration with the reason, and the slot stays
	// served here.
	closed := func() (string, string) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		a := l.Addr().String()
		require.NoError(t, l.Close())
		host, port, _ := strings.Cut(a, ":")
		return host, port
	}
	down, replica := strings.Repeat("4", 40), strings.Repeat("5", 40)
	h4, p4 := closed()
	h5, p5 := closed()
	text := tc.topology(initialSlots) + fmt.Sprintf("\n%s %s %s master -\n%s %s %s slave %s", down, h4, p4, replica, h5, p5, clusterIDs[1])
	require.NoError(t, n0.Do(ctx, "CLUSTERX", "SETNODES", text, 2).Err())
	assert.EqualError(t, n0.Do(ctx, "CLUSTERX", "MIGRATE", mine, replica).Err(), "ERR Can't migrate slot to a slave")
	assert.ErrorContains(t, n0.Do(ctx, "CLUSTERX", "MIGRATE", mine, down, "SYNC").Err(),
		fmt.Sprintf("ERR migrating slot %d failed: CLUSTERX IMPORT %d 0 on %s:%s", mine, mine, h4, p4))
	info, err = n0.ClusterInfo(ctx).Result()
	require.NoError(t, err)
	assert.Contains(t, info, fmt.Sprintf("migrating_slot: %d\r\ndestination_node: %s\r\nmigrating_state: fail\r\n", mine, down))
	assert.NoError(t, n0.Do(ctx, "THROTTLE", mineTag, 1, 1, 1).Err(), "slot %d still served by node 0", mine)
}

// scrape returns s's /metrics lines that start with prefix.
func scrape(t *testing.T, s *Server, prefix string) []string {
	t.Helper()
	resp, err := http.Get("http://" + s.metrics.ln.Addr().String() + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out []string
	for line := range strings.SplitSeq(string(body), "\n") {
		if strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return out
}

// TestClusterMetrics: the sluice_cluster_ metrics follow what routing and
// a migration do: -MOVED, -CROSSSLOT and -TRYAGAIN (while a slot's writes
// are refused; reads are served) counted by kind, the slots served and the
// version following CLUSTERX MIGRATE and SETSLOT; a standalone node
// exports only sluice_cluster_enabled 0.
func TestClusterMetrics(t *testing.T) {
	tc := startCluster(t)
	ctx := context.Background()
	n0 := redis.NewClient(&redis.Options{Addr: tc.addrs[0], MaxRetries: -1})
	defer n0.Close()
	tag, slot := tagOn(tc, 0)
	other, _ := tagOn(tc, 1)
	assert.ErrorContains(t, n0.Do(ctx, "THROTTLE", other, 1, 1, 1).Err(), "MOVED")
	assert.ErrorContains(t, n0.Do(ctx, "THROTTLE.MULTI", 1, "a", 1, 1, 1, "b", 1, 1, 1).Err(), "CROSSSLOT")
	require.NoError(t, n0.Do(ctx, "THROTTLE", tag, 1, 1, 1).Err())

	_, err := tc.nodes[0].state.cluster.ForbidWrites(cluster.Range{First: slot, Last: slot})
	require.NoError(t, err)
	assert.EqualError(t, n0.Do(ctx, "THROTTLE", tag, 1, 1, 1).Err(),
		"TRYAGAIN Can't write to slot being migrated which is in write forbidden phase")
	assert.Equal(t, int64(1), n0.Exists(ctx, tag).Val(), "reads are served")
	assert.Equal(t, []string{
		"sluice_cluster_enabled 1",
		"sluice_cluster_fenced 0",
		"sluice_cluster_keys_dropped_total 0",
		"sluice_cluster_migration_writes_refused_seconds 0",
		`sluice_cluster_migrations_total{result="fail"} 0`,
		`sluice_cluster_migrations_total{result="success"} 0`,
		`sluice_cluster_redirects_total{kind="clusterdown"} 0`,
		`sluice_cluster_redirects_total{kind="crossslot"} 1`,
		`sluice_cluster_redirects_total{kind="moved"} 1`,
		`sluice_cluster_redirects_total{kind="tryagain"} 1`,
		"sluice_cluster_slots_served 5460",
		"sluice_cluster_topology_version 1",
	}, scrape(t, tc.nodes[0], "sluice_cluster_"))
	tc.nodes[0].state.cluster.AllowWrites(cluster.Range{First: slot, Last: slot})

	require.NoError(t, n0.Do(ctx, "CLUSTERX", "MIGRATE", slot, clusterIDs[1], "SYNC").Err())
	assert.ErrorContains(t, n0.Do(ctx, "THROTTLE", tag, 1, 1, 1).Err(), "MOVED")
	got := scrape(t, tc.nodes[0], "sluice_cluster_")
	assert.Contains(t, got, `sluice_cluster_migrations_total{result="success"} 1`)
	assert.Contains(t, got, `sluice_cluster_redirects_total{kind="moved"} 2`)
	assert.Contains(t, got, "sluice_cluster_slots_served 5460")
	assert.Contains(t, scrape(t, tc.nodes[1], "sluice_cluster_"), "sluice_cluster_slots_served 5463", "node 1's and the imported slot")
	for i := range tc.nodes {
		c := redis.NewClient(&redis.Options{Addr: tc.addrs[i], MaxRetries: -1})
		require.NoError(t, c.Do(ctx, "CLUSTERX", "SETSLOT", slot, "NODE", clusterIDs[1], 2).Err())
		_ = c.Close()
	}
	assert.Contains(t, scrape(t, tc.nodes[0], "sluice_cluster_"), "sluice_cluster_topology_version 2")
	assert.Contains(t, scrape(t, tc.nodes[1], "sluice_cluster_"), "sluice_cluster_slots_served 5463")

	cfg := testConfig()
	cfg.MetricsAddr = "127.0.0.1:0"
	s := start(t, cfg, &bytes.Buffer{})
	assert.Equal(t, []string{"sluice_cluster_enabled 0"}, scrape(t, s, "sluice_cluster_"))
}

// TestClusterMigratedStateKeptOnDisk: with --data-dir, what a migration
// of a range of slots copied is journalled by the destination and what
// the source dropped after SETSLOT is journalled as deleted: restarted,
// node 1 holds the slots' state and node 0 none of it.
func TestClusterMigratedStateKeptOnDisk(t *testing.T) {
	dirs := []string{t.TempDir(), t.TempDir()}
	cfgs := make([]Config, 2)
	tc := startClusterWith(t, func(i int, cfg Config) *Server {
		if i > 1 {
			return nil
		}
		cfg.DataDir = dirs[i]
		cfgs[i] = cfg
		s, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		require.NoError(t, err)
		served := make(chan error, 1)
		go func() { served <- s.Serve() }()
		require.NoError(t, recovered(t, s, served))
		return s
	})
	ctx := context.Background()
	cc := tc.client(t)
	setClock(t, cc, 1893456000000000000)
	tag, slot := tagOn(tc, 0)
	for i, k := range []string{":a", ":b", ":c"} {
		require.NoError(t, cc.Do(ctx, "THROTTLE", tag+k, 9, 10, 60, i+1).Err())
	}
	require.NoError(t, cc.Do(ctx, "THROTTLE.WINDOW", tag+":w", 5, 60).Err())
	want := slotState(tc.nodes[0], slot)
	require.Len(t, want, 4)
	n0 := redis.NewClient(&redis.Options{Addr: tc.addrs[0], MaxRetries: -1})
	defer n0.Close()
	// A range of four slots, as Kvrocks 2.9 and kvrocks-controller take it.
	r := cluster.Range{First: slot, Last: slot + 3}
	if r.Last > 5460 {
		r = cluster.Range{First: slot - 3, Last: slot}
	}
	require.NoError(t, n0.Do(ctx, "CLUSTERX", "MIGRATE", r.String(), clusterIDs[1], "SYNC").Err())
	info, err := n0.ClusterInfo(ctx).Result()
	require.NoError(t, err)
	assert.Contains(t, info, fmt.Sprintf("migrating_slot: %s\r\ndestination_node: %s\r\nmigrating_state: success\r\n", r, clusterIDs[1]))
	assert.Equal(t, 5462+4, tc.nodes[1].state.cluster.View().ServedCount())
	for _, a := range tc.addrs {
		c := redis.NewClient(&redis.Options{Addr: a, MaxRetries: -1})
		require.NoError(t, c.Do(ctx, "CLUSTERX", "SETSLOT", r.String(), "NODE", clusterIDs[1], 2).Err())
		_ = c.Close()
	}
	assert.Equal(t, 5461-4, tc.nodes[0].state.cluster.View().ServedCount())
	require.NoError(t, n0.Do(ctx, "DEBUG", "SWEEP").Err())
	require.Empty(t, slotState(tc.nodes[0], slot))
	for i := range 2 {
		require.NoError(t, tc.nodes[i].Shutdown(ctx))
		s, err := startRecovered(t, cfgs[i], io.Discard)
		require.NoError(t, err)
		if i == 0 {
			assert.Empty(t, slotState(s, slot), "node 0 journalled the drop")
		} else {
			assert.Equal(t, want, slotState(s, slot), "node 1 journalled the copy")
		}
	}
}
