package client_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sluicehq/sluice/client"
	"github.com/sluicehq/sluice/cluster"
	"github.com/sluicehq/sluice/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNewClusterClientFollowsATopologyChangeWithoutMoved: a primary dies
// and a new map gives its slots to another node, so no node ever answers
// -MOVED for them. A ClusterClient made by NewClusterClient serves the key
// again from its new node (polled, 30 s deadline); one with a long reload
// interval, the same go-redis otherwise, still sends it to the dead node.
// testCluster is three in-process cluster nodes on loopback, no map yet.
type testCluster struct {
	t     *testing.T
	ids   []string
	nodes []*server.Server
	addrs []string
	done  []chan struct{}
}

func newTestCluster(t *testing.T) *testCluster {
	tc := &testCluster{t: t, ids: []string{
		"1000000000000000000000000000000000000001",
		"2000000000000000000000000000000000000002",
		"3000000000000000000000000000000000000003",
	}}
	for _, id := range tc.ids {
		cfg := server.Default()
		cfg.ListenAddr, cfg.Shards = "127.0.0.1:0", 4
		cfg.ClusterEnabled, cfg.ClusterNodeID = true, id
		s, err := server.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		require.NoError(t, err)
		ch := make(chan struct{})
		go func() { defer close(ch); _ = s.Serve() }()
		t.Cleanup(func() { _ = s.Shutdown(context.Background()); <-ch })
		tc.nodes, tc.addrs, tc.done = append(tc.nodes, s), append(tc.addrs, s.Addr().String()), append(tc.done, ch)
	}
	return tc
}

// line is node i's line of a map: a master serving slots.
func (tc *testCluster) line(i int, slots string) string {
	host, port, _ := strings.Cut(tc.addrs[i], ":")
	return fmt.Sprintf("%s %s %s master - %s", tc.ids[i], host, port, slots)
}

// push sets map version to lines on the nodes to.
func (tc *testCluster) push(version int, lines []string, to ...int) {
	for _, i := range to {
		c := redis.NewClient(&redis.Options{Addr: tc.addrs[i], MaxRetries: -1})
		err := c.Do(context.Background(), "CLUSTERX", "SETNODES", strings.Join(lines, "\n"), version).Err()
		_ = c.Close()
		require.NoError(tc.t, err, "node %d", i)
	}
}

// kill shuts node i down and waits until it no longer serves.
func (tc *testCluster) kill(i int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(tc.t, tc.nodes[i].Shutdown(ctx))
	<-tc.done[i]
}

// assertNoRedirects asserts that nodes 1 and 2 never answered -MOVED or -ASK.
func (tc *testCluster) assertNoRedirects() {
	for _, i := range []int{1, 2} {
		c := redis.NewClient(&redis.Options{Addr: tc.addrs[i], MaxRetries: -1})
		info, err := c.Info(context.Background(), "cluster").Result()
		_ = c.Close()
		require.NoError(tc.t, err)
		assert.Regexp(tc.t, regexp.MustCompile(`(?m)^cluster_redirects:0\r?$`), info, "node %d", i)
	}
}

// keyOfNode0 is a key whose slot is in 0-5460.
func keyOfNode0() string {
	key := "user"
	for i := 0; cluster.Slot([]byte(key)) > 5460; i++ {
		key = "user" + strconv.Itoa(i)
	}
	return key
}

// awaitFreshOnNode1 sends THROTTLE for key until the client reaches the
// node that now serves it, where the key starts empty (9 of 10 left).
func awaitFreshOnNode1(t *testing.T, sl *client.Client, key string, limit client.Limit) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := sl.Throttle(context.Background(), key, limit, 1)
		if err == nil {
			assert.False(t, res.Limited)
			assert.Equal(t, int64(9), res.Remaining, "the key starts empty on node 1")
			return
		}
		require.True(t, time.Now().Before(deadline), "the client never followed the new map: %v", err)
		time.Sleep(10 * time.Millisecond) // pace the polling; the deadline bounds the wait
	}
}

func TestNewClusterClientFollowsATopologyChangeWithoutMoved(t *testing.T) {
	tc := newTestCluster(t)
	ctx := context.Background()
	tc.push(1, []string{tc.line(0, "0-5460"), tc.line(1, "5461-10922"), tc.line(2, "10923-16383")}, 0, 1, 2)

	key := keyOfNode0()
	limit := client.Limit{Burst: 9, Count: 10, Period: time.Minute}
	followed := client.NewClusterClient(&redis.ClusterOptions{Addrs: tc.addrs})
	defer followed.Close()
	stale := redis.NewClusterClient(&redis.ClusterOptions{Addrs: tc.addrs, ClusterStateReloadInterval: time.Hour})
	defer stale.Close()
	sl, slStale := client.New(followed), client.New(stale)
	for _, c := range []*client.Client{sl, slStale} {
		res, err := c.Throttle(ctx, key, limit, 1)
		require.NoError(t, err)
		assert.False(t, res.Limited)
	}
	assert.Equal(t, client.ClusterStateReloadInterval, followed.Options().ClusterStateReloadInterval)
	assert.Equal(t, 1, followed.Options().DialerRetries, "one dial per try")

	// Node 0 dies; version 2 gives its slots to node 1 (pushed to the live nodes).
	tc.kill(0)
	tc.push(2, []string{tc.line(1, "0-10922"), tc.line(2, "10923-16383")}, 1, 2)

	awaitFreshOnNode1(t, sl, key, limit)
	_, err := slStale.Throttle(ctx, key, limit, 1)
	assert.Error(t, err, "a client whose map is not reloaded still sends the slot to the dead node")

	// No -MOVED told the client: node 0 was gone, and nodes 1 and 2 never
	// redirected anything.
	tc.assertNoRedirects()
}

// slotsCounter is a go-redis hook that counts the successful CLUSTER SLOTS
// queries (the map reloads) of the node clients it is added to.
type slotsCounter struct{ n atomic.Int64 }

func (h *slotsCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *slotsCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if args := cmd.Args(); err == nil && len(args) == 2 && fmt.Sprint(args[0], " ", args[1]) == "cluster slots" {
			h.n.Add(1)
		}
		return err
	}
}

func (h *slotsCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestNewClusterClientReloadsWhenACommandFails: with the reload interval
// set to an hour, so that only the reload on a failed command can explain
// it, NewClusterClient's client follows a new map that gives a dead
// node's slots to another node. While the dead node's commands fail
// (4 goroutines × 10 commands, each tried 4 times), the client reloads at
// most once per ClusterReloadMinGap; once served, its successes reload
// nothing.
func TestNewClusterClientReloadsWhenACommandFails(t *testing.T) {
	tc := newTestCluster(t)
	ctx := context.Background()
	tc.push(1, []string{tc.line(0, "0-5460"), tc.line(1, "5461-10922"), tc.line(2, "10923-16383")}, 0, 1, 2)

	key := keyOfNode0()
	limit := client.Limit{Burst: 9, Count: 10, Period: time.Minute}
	cc := client.NewClusterClient(&redis.ClusterOptions{Addrs: tc.addrs, ClusterStateReloadInterval: time.Hour})
	defer cc.Close()
	reloads := &slotsCounter{}
	cc.OnNewNode(func(n *redis.Client) { n.AddHook(reloads) }) // before the first command creates a node
	require.Equal(t, time.Hour, cc.Options().ClusterStateReloadInterval)
	sl := client.New(cc)
	res, err := sl.Throttle(ctx, key, limit, 1)
	require.NoError(t, err)
	require.False(t, res.Limited)
	before := reloads.n.Load()
	require.GreaterOrEqual(t, before, int64(1), "the first command loads the map")

	// Node 0 dies; its slots' commands fail, the map (still version 1 on
	// nodes 1 and 2) keeps sending them there.
	tc.kill(0)
	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				if _, err := sl.Throttle(ctx, key, limit, 1); err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	assert.Equal(t, int64(40), failed.Load(), "no node serves slot %d yet", cluster.Slot([]byte(key)))
	deadline := time.Now().Add(30 * time.Second)
	for reloads.n.Load() == before {
		require.True(t, time.Now().Before(deadline), "no reload after 40 failed commands")
		time.Sleep(10 * time.Millisecond) // pace the polling; the deadline bounds the wait
	}
	// One more may be pending behind the last (go-redis runs one at a time).
	bound := int64(elapsed/client.ClusterReloadMinGap) + 2
	stormed := reloads.n.Load() - before
	assert.LessOrEqual(t, stormed, bound, "reloads in %v of failures (160 failed tries)", elapsed)
	t.Logf("%d reloads in %v of failures (bound %d)", stormed, elapsed, bound)

	// Version 2 gives node 0's slots to node 1; the next failure reloads it.
	tc.push(2, []string{tc.line(1, "0-10922"), tc.line(2, "10923-16383")}, 1, 2)
	awaitFreshOnNode1(t, sl, key, limit)
	tc.assertNoRedirects()

	// Served: successes start no reload (one already pending may still run).
	served := reloads.n.Load()
	for range 50 {
		_, err := sl.Throttle(ctx, key, limit, 1)
		require.NoError(t, err)
	}
	assert.LessOrEqual(t, reloads.n.Load(), served+1, "reloads while every command succeeds")
}
