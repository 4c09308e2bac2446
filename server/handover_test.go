package server

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sluicehq/sluice/client"
	"github.com/sluicehq/sluice/cluster"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// handoverLoad is the bounded load of TestEtcdPlannedFailover: workers
// admit on their own keys through a ClusterClient until told to stop (or
// a bound), recording what was acknowledged.
type handoverLoad struct {
	mu       sync.Mutex
	acked    map[string]int64 // admissions acknowledged, by key
	unsure   map[string]bool  // keys with a call that failed: it may or may not have run
	errs     []string
	ops      atomic.Int64
	maxDelay atomic.Int64 // the slowest call's time, ns, once measuring
	measure  atomic.Bool
	stop     atomic.Bool
}

func (l *handoverLoad) run(ctx context.Context, cc *redis.ClusterClient, keys []string, maxOps int, until time.Time) {
	for i := 0; i < maxOps && !l.stop.Load() && time.Now().Before(until); i++ {
		k := keys[i%len(keys)]
		start := time.Now()
		v, err := cc.Do(ctx, "THROTTLE", k, 99, 1, 3600, 1).Int64Slice()
		took := time.Since(start)
		l.ops.Add(1)
		if l.measure.Load() {
			for old := l.maxDelay.Load(); int64(took) > old && !l.maxDelay.CompareAndSwap(old, int64(took)); old = l.maxDelay.Load() {
			}
		}
		l.mu.Lock()
		switch {
		case err != nil:
			l.unsure[k] = true
			l.errs = append(l.errs, k+": "+err.Error())
		case v[0] == 0:
			l.acked[k]++
		}
		l.mu.Unlock()
	}
}

// pausedRe reads the pause a FAILOVER logged.
var pausedRe = regexp.MustCompile(`FAILOVER: handed over; this node is now a replica" .*paused=([0-9.]+[µmn]?s)`)

// TestEtcdPlannedFailover: FAILOVER on a primary under etcd, under a
// bounded load from the Sluice Go client's ClusterClient: writes pause,
// the replica catches up, the controller publishes the flipped map, the
// replica serves as primary and the old primary follows it; the paused
// writes are redirected. With the clocks frozen, every key's remaining
// count is its limit minus the admissions the client saw acknowledged: no
// acknowledged admission is lost. The etcd link's metrics match etcd.
// Refusals: FAILOVER on a replica, to a node that is not a replica, ABORT
// with none running, and two FAILOVERs at once (one wins, the other is
// refused).
func TestEtcdPlannedFailover(t *testing.T) {
	endpoint, _ := startEtcd(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer func() { _ = cli.Close() }()
	ctx := context.Background()
	var nodes []*etcdNode
	for range 4 {
		nodes = append(nodes, startEtcdNode(t, endpoint, func(cfg *Config) {
			cfg.ClusterPrimaries, cfg.ClusterReplicas, cfg.MetricsAddr = 2, 1, "127.0.0.1:0"
		}))
	}
	eventually(t, "2 primaries with a replica each, applied by every node", func() bool { return settled(t, cli, nodes, 2, 1) })
	checkLinkMetrics(t, cli, nodes)

	// Frozen clocks on every node: a key's remaining count moves only
	// with admissions.
	const epoch = int64(1_800_000_000) * int64(time.Second)
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.addr)
		c := redis.NewClient(&redis.Options{Addr: n.addr})
		require.NoError(t, c.Do(ctx, "DEBUG", "CLOCK", "SET", epoch).Err())
		_ = c.Close()
	}
	cc := client.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, MaxRedirects: 8})
	defer func() { _ = cc.Close() }()

	top := etcdTopology(t, cli)
	from := nodeAt(nodes, top.Node(top.Nodes[0].ID).Addr)
	if top.Nodes[0].Role != cluster.Master {
		from = nodeAt(nodes, top.Node(top.Nodes[0].MasterID).Addr)
	}
	to := nodeAt(nodes, top.Replicas(from.id())[0].Addr)
	load := &handoverLoad{acked: map[string]int64{}, unsure: map[string]bool{}}
	const workers, perWorker = 4, 40
	var wg sync.WaitGroup
	var allKeys []string
	until := time.Now().Add(30 * time.Second)
	for w := range workers {
		var keys []string
		for i := range perWorker {
			keys = append(keys, fmt.Sprintf("handover:%d:%d", w, i))
		}
		allKeys = append(allKeys, keys...)
		wg.Go(func() { load.run(ctx, cc, keys, 4000, until) })
	}
	eventually(t, "the load runs", func() bool { return load.ops.Load() >= 200 })

	fc := redis.NewClient(&redis.Options{Addr: from.addr, MaxRetries: -1})
	defer func() { _ = fc.Close() }()
	load.measure.Store(true)
	began := time.Now()
	require.NoError(t, fc.Do(ctx, "FAILOVER", "TIMEOUT", 10000).Err())
	eventually(t, "the replica is primary by the controller's map, the old primary its replica", func() bool {
		top := etcdTopology(t, cli)
		f, r := top.Node(from.id()), top.Node(to.id())
		return f.Role == cluster.Replica && f.MasterID == to.id() && r.Role == cluster.Master &&
			settledLive(nodes, top) && from.s.state.repl.IsReplica() && !to.s.state.repl.IsReplica() &&
			from.s.state.repl.Status().FailoverState == "no-failover"
	})
	flipped := time.Since(began)
	after := load.ops.Load()
	eventually(t, "the load goes on after the flip", func() bool { return load.ops.Load() >= after+400 })
	load.stop.Store(true)
	wg.Wait()

	m := pausedRe.FindStringSubmatch(from.logs.String())
	require.NotNil(t, m, "the old primary logs the pause")
	pause, err := time.ParseDuration(m[1])
	require.NoError(t, err)
	t.Logf("planned failover: writes paused %s on the old primary (its log); slowest client call meanwhile %s; map flipped within %s; %d calls, %d errors",
		pause, time.Duration(load.maxDelay.Load()), flipped, load.ops.Load(), len(load.errs))
	assert.Less(t, pause, 10*time.Second, "the pause ends well within the FAILOVER's TIMEOUT")
	t.Logf("old primary's redirects (paused writes and later ones sent to it): %v",
		scrape(t, from.s, `sluice_cluster_redirects_total{kind="moved"}`))
	for _, e := range load.errs {
		t.Logf("client error (its key is checked as at most the acknowledged): %s", e)
	}

	// No acknowledged admission lost: every key's remaining count, peeked
	// on its primary now, is the limit minus what was acknowledged.
	admitted := int64(0)
	for _, k := range allKeys {
		v, err := cc.Do(ctx, "THROTTLE", k, 99, 1, 3600, 0).Int64Slice()
		require.NoError(t, err, k)
		want := 100 - load.acked[k]
		admitted += load.acked[k]
		if load.unsure[k] {
			assert.LessOrEqual(t, v[2], want, "%s: remaining at most the limit minus the acknowledged", k)
			continue
		}
		assert.Equal(t, want, v[2], "%s: remaining = limit - acknowledged admissions", k)
	}
	require.Positive(t, admitted)
	checkLinkMetrics(t, cli, nodes)

	// Refusals.
	assert.EqualError(t, fc.Do(ctx, "FAILOVER").Err(), "ERR FAILOVER is not valid when server is a replica.")
	tc := redis.NewClient(&redis.Options{Addr: to.addr, MaxRetries: -1})
	defer func() { _ = tc.Close() }()
	assert.EqualError(t, tc.Do(ctx, "FAILOVER", "TO", "127.0.0.1", 1, "TIMEOUT", 1000).Err(),
		"ERR FAILOVER target HOST and PORT is not a replica.")
	assert.EqualError(t, tc.Do(ctx, "FAILOVER", "ABORT").Err(), "ERR FAILOVER is not in progress.")
	// Two at once on one connection: the first (naming its target) starts
	// the handover back, the second, run right after it, is refused.
	fromHost, fromPort, err := net.SplitHostPort(from.addr)
	require.NoError(t, err)
	var cmds []redis.Cmder
	cmds, err = tc.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Do(ctx, "FAILOVER", "TO", fromHost, fromPort, "TIMEOUT", 10000)
		p.Do(ctx, "FAILOVER", "TIMEOUT", 10000)
		return nil
	})
	require.Error(t, err)
	require.NoError(t, cmds[0].Err(), "the first FAILOVER starts")
	second := cmds[1].Err()
	require.Error(t, second)
	assert.Contains(t, []string{"ERR FAILOVER already in progress.", "ERR FAILOVER is not valid when server is a replica."}, second.Error())
	t.Logf("the second of two FAILOVERs at once: %v", second)
	eventually(t, "handed back: the first primary is primary again", func() bool {
		top := etcdTopology(t, cli)
		f := top.Node(from.id())
		return f.Role == cluster.Master && settledLive(nodes, top) && !from.s.state.repl.IsReplica() && to.s.state.repl.IsReplica()
	})
	// The old primary serves again after handing back.
	v, err := cc.Do(ctx, "THROTTLE", allKeys[0], 99, 1, 3600, 0).Int64Slice()
	require.NoError(t, err)
	assert.Equal(t, 100-load.acked[allKeys[0]], v[2])
}

// checkLinkMetrics: every node exports the etcd link as INFO does, its
// lease renewed, the topology revision etcd holds applied, not fenced;
// exactly one node leads.
func checkLinkMetrics(t *testing.T, cli *clientv3.Client, nodes []*etcdNode) {
	t.Helper()
	version := etcdTopology(t, cli).Version
	leaders := 0
	for _, n := range nodes {
		var lines []string
		eventually(t, "the node's metrics show the current revision", func() bool {
			lines = scrape(t, n.s, "sluice_cluster_")
			return slices.Contains(lines, fmt.Sprintf("sluice_cluster_etcd_topology_revision %d", version))
		})
		assert.Contains(t, lines, "sluice_cluster_etcd_lease_ok 1")
		assert.Contains(t, lines, "sluice_cluster_fenced 0")
		if slices.Contains(lines, "sluice_cluster_etcd_leader 1") {
			leaders++
		} else {
			assert.Contains(t, lines, "sluice_cluster_etcd_leader 0")
		}
	}
	assert.Equal(t, 1, leaders, "one controller")
}
