package client_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
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
func TestNewClusterClientFollowsATopologyChangeWithoutMoved(t *testing.T) {
	ids := []string{
		"1000000000000000000000000000000000000001",
		"2000000000000000000000000000000000000002",
		"3000000000000000000000000000000000000003",
	}
	var (
		nodes []*server.Server
		addrs []string
		done  []chan struct{}
	)
	for _, id := range ids {
		cfg := server.Default()
		cfg.ListenAddr, cfg.Shards = "127.0.0.1:0", 4
		cfg.ClusterEnabled, cfg.ClusterNodeID = true, id
		s, err := server.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		require.NoError(t, err)
		ch := make(chan struct{})
		go func() { defer close(ch); _ = s.Serve() }()
		t.Cleanup(func() { _ = s.Shutdown(context.Background()); <-ch })
		nodes, addrs, done = append(nodes, s), append(addrs, s.Addr().String()), append(done, ch)
	}
	ctx := context.Background()
	// line is node i's line of a map: a master serving slots.
	line := func(i int, slots string) string {
		host, port, _ := strings.Cut(addrs[i], ":")
		return fmt.Sprintf("%s %s %s master - %s", ids[i], host, port, slots)
	}
	push := func(version int, lines []string, to ...int) {
		for _, i := range to {
			c := redis.NewClient(&redis.Options{Addr: addrs[i], MaxRetries: -1})
			err := c.Do(ctx, "CLUSTERX", "SETNODES", strings.Join(lines, "\n"), version).Err()
			_ = c.Close()
			require.NoError(t, err, "node %d", i)
		}
	}
	push(1, []string{line(0, "0-5460"), line(1, "5461-10922"), line(2, "10923-16383")}, 0, 1, 2)

	key := "user"
	for i := 0; cluster.Slot([]byte(key)) > 5460; i++ {
		key = "user" + strconv.Itoa(i) // a key of node 0
	}
	limit := client.Limit{Burst: 9, Count: 10, Period: time.Minute}
	followed := client.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	defer followed.Close()
	stale := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ClusterStateReloadInterval: time.Hour})
	defer stale.Close()
	sl, slStale := client.New(followed), client.New(stale)
	for _, c := range []*client.Client{sl, slStale} {
		res, err := c.Throttle(ctx, key, limit, 1)
		require.NoError(t, err)
		assert.False(t, res.Limited)
	}
	assert.Equal(t, client.ClusterStateReloadInterval, followed.Options().ClusterStateReloadInterval)

	// Node 0 dies; version 2 gives its slots to node 1 (pushed to the live nodes).
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, nodes[0].Shutdown(sctx))
	<-done[0]
	push(2, []string{line(1, "0-10922"), line(2, "10923-16383")}, 1, 2)

	var lastErr error
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := sl.Throttle(ctx, key, limit, 1)
		if err == nil {
			assert.False(t, res.Limited)
			assert.Equal(t, int64(9), res.Remaining, "the key starts empty on node 1")
			break
		}
		lastErr = err
		require.True(t, time.Now().Before(deadline), "the client never followed the new map: %v", lastErr)
		time.Sleep(50 * time.Millisecond) // pace the polling; the deadline, not this, bounds the wait
	}
	require.Error(t, lastErr, "the dead node's slot failed before the reload")
	_, err := slStale.Throttle(ctx, key, limit, 1)
	assert.Error(t, err, "a client whose map is not reloaded still sends the slot to the dead node")

	// No -MOVED told the client: node 0 was gone, and nodes 1 and 2 never
	// redirected anything.
	for _, i := range []int{1, 2} {
		c := redis.NewClient(&redis.Options{Addr: addrs[i], MaxRetries: -1})
		info, err := c.Info(ctx, "cluster").Result()
		_ = c.Close()
		require.NoError(t, err)
		assert.Regexp(t, regexp.MustCompile(`(?m)^cluster_redirects:0\r?$`), info, "node %d", i)
	}
}
