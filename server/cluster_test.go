package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sluicehq/sluice/cluster"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var clusterIDs = []string{
	"1000000000000000000000000000000000000001",
	"2000000000000000000000000000000000000002",
	"3000000000000000000000000000000000000003",
}

// testCluster is three in-process nodes on loopback, each its own
// server.New, and the topology text pushed to them.
type testCluster struct {
	nodes []*Server
	addrs []string
}

// startCluster starts three cluster nodes and gives each the map where
// they serve 0-5460, 5461-10922 and 10923-16383 (version 1).
func startCluster(t *testing.T) *testCluster { return startClusterWith(t, nil) }

// startClusterWith is startCluster with node i started by start(i, cfg)
// when that returns a server (nil: as startCluster does).
func startClusterWith(t *testing.T, start1 func(i int, cfg Config) *Server) *testCluster {
	t.Helper()
	tc := &testCluster{}
	for i, id := range clusterIDs {
		cfg := testConfig()
		cfg.ClusterEnabled, cfg.ClusterNodeID, cfg.EnableDebug = true, id, true
		cfg.MetricsAddr = "127.0.0.1:0"
		var s *Server
		if start1 != nil {
			s = start1(i, cfg)
		}
		if s == nil {
			s = start(t, cfg, &bytes.Buffer{})
			go func() { _ = s.Serve() }()
		}
		tc.nodes = append(tc.nodes, s)
		tc.addrs = append(tc.addrs, s.Addr().String())
	}
	tc.push(t, 1, initialSlots)
	return tc
}

// initialSlots is version 1's map: an even split.
var initialSlots = []string{"0-5460", "5461-10922", "10923-16383"}

// topology writes the map where node i serves slots[i] ("0-99 200").
func (tc *testCluster) topology(slots []string) string {
	var lines []string
	for i, a := range tc.addrs {
		host, port, _ := strings.Cut(a, ":")
		lines = append(lines, fmt.Sprintf("%s %s %s master - %s", clusterIDs[i], host, port, slots[i]))
	}
	return strings.Join(lines, "\n")
}

// push sends the map at version to the nodes in the order given (all of
// them, in index order, by default).
func (tc *testCluster) push(t *testing.T, version int, slots []string, order ...int) {
	t.Helper()
	if len(order) == 0 {
		order = []int{0, 1, 2}
	}
	text := tc.topology(slots)
	for _, i := range order {
		c := redis.NewClient(&redis.Options{Addr: tc.addrs[i]})
		err := c.Do(context.Background(), "CLUSTERX", "SETNODES", text, version).Err()
		_ = c.Close()
		require.NoError(t, err, "node %d", i)
	}
}

func (tc *testCluster) client(t *testing.T) *redis.ClusterClient {
	t.Helper()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: tc.addrs, MaxRedirects: 8})
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// setClock freezes every node's clock at ns.
func setClock(t *testing.T, cc *redis.ClusterClient, ns int64) {
	t.Helper()
	require.NoError(t, cc.ForEachShard(context.Background(), func(ctx context.Context, c *redis.Client) error {
		return c.Do(ctx, "DEBUG", "CLOCK", "SET", ns).Err()
	}))
}

// sequence is compat/testdata/sequence.json, the replies every client
// must see.
type sequence struct {
	EpochNs int64 `json:"epoch_ns,string"`
	Steps   []struct {
		Name  string
		AtS   int64 `json:"at_s"`
		Args  []string
		Reply []int64
		Error string
	}
}

func loadSequence(t *testing.T) sequence {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "compat", "testdata", "sequence.json"))
	require.NoError(t, err)
	var s sequence
	require.NoError(t, json.Unmarshal(b, &s))
	require.NotEmpty(t, s.Steps)
	return s
}

// run sends steps [from, to) of the sequence through cc, setting every
// node's clock to each step's time, and checks each reply exactly.
func (seq sequence) run(t *testing.T, cc *redis.ClusterClient, from, to int) {
	t.Helper()
	ctx := context.Background()
	now := int64(-1)
	for _, st := range seq.Steps[from:to] {
		if at := seq.EpochNs + st.AtS*int64(time.Second); at != now {
			setClock(t, cc, at)
			now = at
		}
		args := make([]any, len(st.Args))
		for i, a := range st.Args {
			args[i] = a
		}
		v, err := cc.Do(ctx, args...).Result()
		if st.Error != "" {
			assert.EqualError(t, err, st.Error, st.Name)
			continue
		}
		require.NoError(t, err, st.Name)
		got := make([]int64, 0, 5)
		for _, x := range v.([]any) {
			got = append(got, x.(int64))
		}
		assert.Equal(t, st.Reply, got, st.Name)
	}
}

// TestClusterGoRedis: go-redis's ClusterClient runs the compat sequence
// through three in-process nodes with exact replies, THROTTLE.MULTI with a
// hashtag, and sees the topology every node reports.
func TestClusterGoRedis(t *testing.T) {
	tc := startCluster(t)
	cc := tc.client(t)
	ctx := context.Background()
	seq := loadSequence(t)
	seq.run(t, cc, 0, len(seq.Steps))
	// One key on each node, through the same client.
	spread := make([]string, 3)
	for i := 0; spread[0] == "" || spread[1] == "" || spread[2] == ""; i++ {
		k := "spread:" + strconv.Itoa(i)
		if spread[owner(tc, k)] == "" {
			spread[owner(tc, k)] = k
			v, err := cc.Do(ctx, "THROTTLE", k, 15, 30, 60, 1).Result()
			require.NoError(t, err)
			assert.Equal(t, []any{int64(0), int64(16), int64(15), int64(-1), int64(2)}, v)
		}
	}

	v, err := cc.Do(ctx, "THROTTLE.MULTI", 1, "{user123}:second", 4, 5, 1, "{user123}:minute", 9, 10, 60).Result()
	require.NoError(t, err)
	assert.Equal(t, []any{[]any{int64(0), int64(5), int64(4), int64(-1), int64(6)}, []any{int64(0), int64(5), int64(4), int64(-1), int64(1)},
		[]any{int64(0), int64(10), int64(9), int64(-1), int64(6)}}, v)
	assert.EqualError(t, cc.Do(ctx, "THROTTLE.MULTI", 1, "a", 4, 5, 1, "b", 9, 10, 60).Err(),
		"CROSSSLOT Keys in request don't hash to the same slot")

	// Each key's state is on its slot's node only. user123's state expired
	// at 4 s into the sequence (the nodes' clocks are now at 6 s): whether
	// a node's sweep has removed it yet depends on timing, and DBSIZE with
	// it, so it is deleted first.
	require.NoError(t, cc.Del(ctx, "user123").Err())
	for i, s := range tc.nodes {
		c := redis.NewClient(&redis.Options{Addr: s.Addr().String()})
		n, err := c.DBSize(ctx).Result()
		_ = c.Close()
		require.NoError(t, err)
		want := 0
		for _, k := range append([]string{"burst", "{user123}:second", "{user123}:minute"}, spread...) {
			if owner(tc, k) == i {
				want++
			}
		}
		assert.Equal(t, int64(want), n, "node %d", i)
	}
	slots, err := cc.ClusterShards(ctx).Result()
	require.NoError(t, err)
	assert.Len(t, slots, 3)
}

// owner is the index of the node serving key in the version 1 map.
func owner(tc *testCluster, key string) int {
	s := cluster.Slot([]byte(key))
	switch {
	case s <= 5460:
		return 0
	case s <= 10922:
		return 1
	}
	return 2
}

// TestClusterTopologyChangeUnderLoad: while clients throttle keys of every
// slot, version 2 moves 0-2000 from node 0 to node 1 (pushed to the node
// that gains them first): no request fails, the moved keys are then served
// by node 1, node 0 drops them, and an old version or a bad map is refused.
func TestClusterTopologyChangeUnderLoad(t *testing.T) {
	tc := startCluster(t)
	ctx := context.Background()
	// Each worker throttles 50 keys round robin: 100 requests before the
	// change and 100 after it (concurrently with the push too), bounded.
	const workers, before, after = 4, 100, 100
	var (
		wg     sync.WaitGroup
		failed atomic.Int64
		done   atomic.Int64
		errs   sync.Map
		ready  sync.WaitGroup
	)
	pushed := make(chan struct{})
	ready.Add(workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cc := tc.client(t)
			n, since := 0, -1
			for ; since < after && n < 10*(before+after); n++ {
				key := "load:" + strconv.Itoa(w) + ":" + strconv.Itoa(n%50)
				if err := cc.Do(ctx, "THROTTLE", key, 1000, 1000, 1).Err(); err != nil {
					failed.Add(1)
					errs.Store(err.Error(), true)
				}
				done.Add(1)
				if n == before {
					ready.Done()
				}
				select {
				case <-pushed:
					since++
				default:
				}
			}
		}()
	}
	ready.Wait()
	tc.push(t, 2, []string{"2001-5460", "0-2000 5461-10922", "10923-16383"}, 1, 0, 2)
	close(pushed)
	wg.Wait()
	errs.Range(func(k, _ any) bool { t.Errorf("client error: %s", k); return true })
	assert.Zero(t, failed.Load(), "of %d requests", done.Load())
	n0 := redis.NewClient(&redis.Options{Addr: tc.addrs[0], MaxRetries: -1})
	defer n0.Close()
	n0info, err := n0.Info(ctx, "cluster").Result()
	require.NoError(t, err)
	assert.Regexp(t, `cluster_redirects:[1-9]`, n0info, "clients followed node 0's -MOVED")

	// node 1 now serves slot 0-2000 keys; node 0 redirects and drops them.
	key := "load:0:0"
	for i := 0; cluster.Slot([]byte(key)) > 2000; i++ {
		key = "moved:" + strconv.Itoa(i)
	}
	assert.EqualError(t, n0.Do(ctx, "THROTTLE", key, 1, 1, 1).Err(),
		fmt.Sprintf("MOVED %d %s", cluster.Slot([]byte(key)), tc.addrs[1]))
	require.NoError(t, n0.Do(ctx, "DEBUG", "SWEEP").Err())
	keys, err := n0.Do(ctx, "CLUSTER", "COUNTKEYSINSLOT", cluster.Slot([]byte("load:0:0"))).Int64()
	require.NoError(t, err)
	if cluster.Slot([]byte("load:0:0")) <= 2000 {
		assert.Zero(t, keys)
	}
	tc.nodes[0].state.keys.EachKey(func(k []byte) {
		assert.Greater(t, cluster.Slot(k), 2000, "node 0 dropped %q", k)
	})

	// Old versions and bad maps are refused everywhere; version 2 stays.
	for _, a := range tc.addrs {
		c := redis.NewClient(&redis.Options{Addr: a, MaxRetries: -1})
		assert.ErrorContains(t, c.Do(ctx, "CLUSTERX", "SETNODES", tc.topology(initialSlots), 1).Err(),
			"Invalid cluster version")
		assert.ErrorContains(t, c.Do(ctx, "CLUSTERX", "SETNODES", tc.topology([]string{"0-5460", "5461-10922", "10923-16000"}), 3).Err(),
			"served by no node")
		v, err := c.Do(ctx, "CLUSTERX", "VERSION").Int64()
		_ = c.Close()
		require.NoError(t, err)
		assert.Equal(t, int64(2), v)
	}
}

// TestClusterSlotMoveAllowsOneBurst documents flip-without-copy: a key
// whose slot moves starts empty on its new node, so within one period it
// admits at most max_burst+1 requests more than the limit.
func TestClusterSlotMoveAllowsOneBurst(t *testing.T) {
	tc := startCluster(t)
	cc := tc.client(t)
	ctx := context.Background()
	key := "burst"
	for i := 0; owner(tc, key) != 0; i++ {
		key = "burst" + strconv.Itoa(i)
	}
	slot := cluster.Slot([]byte(key))
	setClock(t, cc, 1893456000000000000)
	admitted := 0
	throttle := func() {
		for range 10 {
			v, err := cc.Do(ctx, "THROTTLE", key, 4, 10, 60).Slice()
			require.NoError(t, err)
			if v[0].(int64) == 0 {
				admitted++
			}
		}
	}
	throttle()
	assert.Equal(t, 5, admitted, "max_burst+1 on node 0")
	// Version 2: node 2 takes the key's slot from node 0 (the gaining node first).
	moved := []string{fmt.Sprintf("0-%d %d-5460", slot-1, slot+1), "5461-10922", fmt.Sprintf("%d 10923-16383", slot)}
	if slot == 0 {
		moved[0] = "1-5460"
	}
	tc.push(t, 2, moved, 2, 0, 1)
	throttle()
	assert.Equal(t, 10, admitted, "the new node starts the key empty: max_burst+1 more, no more")
}

// TestClusterStateKeptInDataDir: a node's id and topology survive a
// restart, so it serves its slots at once.
// TestClusterFilesBesideANewStore: a new data directory holding the
// cluster's files is recovered, not refused as foreign: cluster.conf, and
// cluster.conf.tmp, which CLUSTERX SETNODES writes while the store opens
// (both run during loading) or a crash left behind.
func TestClusterFilesBesideANewStore(t *testing.T) {
	dir := t.TempDir()
	kept := []byte("id " + clusterIDs[0] + "\n")
	require.NoError(t, os.WriteFile(filepath.Join(dir, cluster.FileName), kept, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, cluster.TempFileName), kept, 0o600))
	cfg := testConfig()
	cfg.ClusterEnabled, cfg.DataDir = true, dir
	_, err := startRecovered(t, cfg, io.Discard)
	require.NoError(t, err)
}

func TestClusterStateKeptInDataDir(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.ClusterEnabled, cfg.DataDir = true, dir
	s, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	require.NoError(t, recovered(t, s, served)) // THROTTLE answers -LOADING until then
	c := redis.NewClient(&redis.Options{Addr: s.Addr().String()})
	ctx := context.Background()
	id, err := c.Do(ctx, "CLUSTER", "MYID").Text()
	require.NoError(t, err)
	require.True(t, cluster.ValidID(id))
	require.NoError(t, c.Do(ctx, "CLUSTERX", "SETNODES", id+" 127.0.0.1 7000 master - 0-16383", 7).Err())
	require.NoError(t, c.Do(ctx, "THROTTLE", "k", 1, 1, 60).Err())
	_ = c.Close()
	require.NoError(t, s.Shutdown(ctx))

	s, err = startRecovered(t, cfg, io.Discard) // EXISTS answers -LOADING until recovered
	require.NoError(t, err)
	c = redis.NewClient(&redis.Options{Addr: s.Addr().String()})
	defer c.Close()
	assert.Equal(t, id, c.Do(ctx, "CLUSTER", "MYID").Val())
	assert.Equal(t, int64(7), c.Do(ctx, "CLUSTERX", "VERSION").Val())
	assert.Equal(t, int64(1), c.Exists(ctx, "k").Val(), "served at once, state recovered")

	cfg.ClusterNodeID = "nothex"
	_, err = New(cfg, nil)
	assert.ErrorContains(t, err, "--cluster-node-id")
	cfg.ClusterEnabled, cfg.ClusterNodeID = false, clusterIDs[0]
	_, err = New(cfg, nil)
	assert.ErrorContains(t, err, "need --cluster-enabled")
}
