package server

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sluicehq/sluice/cluster"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// The partition tests' limit: THROTTLE key 9 1 3600 admits 10 at once and
// one more per hour; with every node's clock frozen none comes back during
// the test, so what each side admits is exact.
const (
	partLimit = 10
	partPre   = 3 // admitted, and replicated, before the partition
)

var partKeys = []string{"user:1", "user:2", "user:3"}

// partThrottle asks for one of key's partLimit through c: admitted, or
// limited, or the error (CLUSTERDOWN, NOREPLICAS, a dead connection).
func partThrottle(ctx context.Context, c *redis.Client, key string) (admitted bool, err error) {
	v, err := c.Do(ctx, "THROTTLE", key, partLimit-1, 1, 3600, 1).Slice()
	if err != nil {
		return false, err
	}
	return v[0] == int64(0), nil
}

// partitionResult is what each side acknowledged per key after the
// partition (before it, partPre each, replicated).
type partitionResult struct {
	zombie, heir map[string]int
	failover     time.Duration // from the partition to the replica serving
}

// runPartition: one primary ("zombie") with two replicas, every node's
// clock frozen at one instant; partPre admissions per key on the primary,
// acknowledged by both replicas; then the primary is cut off from etcd
// (and, with cutLinks, from its replicas: the proxy they dial, the address
// it announces, is cut too) while its clients still reach it. Its clients
// admit once per key; under fence the fence clock is then moved past the
// lease. Once a replica is promoted (and the other follows it), clients on
// both sides admit on the same keys until refused. Replies wait for
// ackReplicas acknowledgements (--min-replicas-ack): on the primary 300 ms
// when the links are cut (none can come), 10 s otherwise and on the
// replicas (every one comes).
func runPartition(t *testing.T, policy string, ackReplicas int, cutLinks bool) partitionResult {
	endpoint, _ := startEtcd(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer func() { _ = cli.Close() }()
	ctx := context.Background()
	clock := &fakeClock{}
	shape := func(cfg *Config) {
		cfg.ClusterPrimaries, cfg.ClusterReplicas, cfg.ClusterPartitionPolicy = 1, 2, policy
		cfg.MinReplicasAck, cfg.MinReplicasAckTimeout = ackReplicas, 10*time.Second
	}
	// The primary's replicas dial the address it announces: a proxy the
	// test cuts; its clients dial its own address.
	own := freeURL(t).Host
	links := startProxy(t, own)
	zombie := startEtcdNode(t, endpoint, func(cfg *Config) {
		shape(cfg)
		if cutLinks {
			cfg.MinReplicasAckTimeout = 300 * time.Millisecond
		}
		cfg.ListenAddr = own
		cfg.ClusterAnnouncePort = links.ln.Addr().(*net.TCPAddr).Port
	}, clock.now)
	nodes := []*etcdNode{zombie}
	eventually(t, "the first node serves every slot", func() bool { return settled(t, cli, nodes, 1, 0) })
	nodes = append(nodes, startEtcdNode(t, endpoint, shape), startEtcdNode(t, endpoint, shape))
	eventually(t, "the other two are its replicas", func() bool { return settled(t, cli, nodes, 1, 2) })

	clients := map[*etcdNode]*redis.Client{}
	for _, n := range nodes {
		c := redis.NewClient(&redis.Options{Addr: n.addr, MaxRetries: -1, DisableIdentity: true})
		defer func() { _ = c.Close() }()
		clients[n] = c
		setClockOn(t, c, 1_700_000_000*int64(time.Second))
	}
	zc := clients[zombie]
	eventually(t, "the primary admits (its fence open)", func() bool { _, err := partThrottle(ctx, zc, "warm"); return err == nil })
	for _, k := range partKeys {
		for range partPre {
			ok, err := partThrottle(ctx, zc, k)
			require.NoError(t, err)
			require.True(t, ok)
		}
	}
	acked, err := zc.Do(ctx, "WAIT", 2, 10000).Int()
	require.NoError(t, err)
	require.Equal(t, 2, acked, "both replicas hold the admissions made before the partition")

	cutAt := time.Now()
	zombie.proxy.partition()
	if cutLinks {
		links.partition()
	}
	res := partitionResult{zombie: map[string]int{}, heir: map[string]int{}}
	for _, k := range partKeys { // the zombie's clients, before any failover
		if ok, err := partThrottle(ctx, zc, k); err == nil && ok {
			res.zombie[k]++
		}
	}
	if policy == "fence" {
		clock.offset.Store(int64(2 * testLeaseTTL)) // the fence clock says the lease may have expired
		eventually(t, "the zombie refuses", func() bool {
			_, err := partThrottle(ctx, zc, "warm")
			return err != nil && strings.HasPrefix(err.Error(), "CLUSTERDOWN ")
		})
	}

	var heir *etcdNode
	rest := nodes[1:]
	eventually(t, "a replica promoted, the other following it", func() bool {
		if !settled(t, cli, rest, 1, 1) {
			return false
		}
		for _, n := range rest {
			if !n.s.state.repl.IsReplica() && n.s.state.cluster.View().Serves(cluster.Slot([]byte(partKeys[0]))) {
				heir = n
				return true
			}
		}
		return false
	})
	res.failover = time.Since(cutAt)
	hc := clients[heir]
	eventually(t, "the promoted replica's own replica caught up", func() bool {
		n, err := hc.Do(ctx, "WAIT", 1, 100).Int()
		return err == nil && n == 1
	})
	r, err := cli.Get(ctx, "/sluice/test/nodes/"+zombie.id())
	require.NoError(t, err)
	require.Empty(t, r.Kvs, "the zombie's lease expired")
	require.True(t, zombie.s.state.cluster.View().Serves(cluster.Slot([]byte(partKeys[0]))),
		"the zombie, cut off, still holds its slots")

	for _, k := range partKeys { // both sides, alternately, until refused
		zOpen, hOpen := true, true
		for range 2 * partLimit {
			if zOpen {
				ok, err := partThrottle(ctx, zc, k)
				zOpen = err == nil && ok
				if zOpen {
					res.zombie[k]++
				}
			}
			if hOpen {
				ok, err := partThrottle(ctx, hc, k)
				hOpen = err == nil && ok
				if hOpen {
					res.heir[k]++
				}
			}
		}
	}
	for _, k := range partKeys {
		t.Logf("%s (links cut: %v): %s: %d admitted before the partition, then %d by the cut-off primary and %d by the promoted replica: %d in all (limit %d)",
			policy, cutLinks, k, partPre, res.zombie[k], res.heir[k], partPre+res.zombie[k]+res.heir[k], partLimit)
	}
	t.Logf("%s: the replica served %.2f s after the partition (lease TTL %s)", policy, res.failover.Seconds(), testLeaseTTL)
	return res
}

// setClockOn freezes one node's clock at ns.
func setClockOn(t *testing.T, c *redis.Client, ns int64) {
	t.Helper()
	require.NoError(t, c.Do(context.Background(), "DEBUG", "CLOCK", "SET", ns).Err())
}

// TestEtcdPartitionServeBound: with --cluster-partition-policy serve, a
// primary cut off from etcd and from its replicas keeps admitting for its
// slots while a replica is promoted and admits too: clients split between
// the two each get what their side holds, so a key admits more than its
// limit, and at most 2x it (docs/failover.md's bound). With frozen clocks
// the figure is exact: the admissions made before the partition count once,
// the rest of the limit once per side.
func TestEtcdPartitionServeBound(t *testing.T) {
	res := runPartition(t, "serve", 0, true)
	for _, k := range partKeys {
		total := partPre + res.zombie[k] + res.heir[k]
		assert.LessOrEqual(t, total, 2*partLimit, "%s: the serve bound", k)
		assert.Equal(t, partLimit-partPre, res.zombie[k], "%s: the cut-off primary admits the rest of the limit", k)
		assert.Equal(t, partLimit-partPre, res.heir[k], "%s: so does the promoted replica", k)
		assert.Equal(t, 2*partLimit-partPre, total, k)
	}
}

// TestEtcdPartitionFenceBound: --cluster-partition-policy fence with
// --min-replicas-ack 1 never admits more than the limit per key across the
// failover. Cut off from etcd only, the primary still admits (its
// replicas acknowledge) until its fence closes, which is before its
// replica is promoted: the promoted replica admits exactly what is left.
// Cut off from its replicas too, it acknowledges nothing after the
// partition (no replica can acknowledge, then its fence closes) and the
// promoted replica admits the rest.
func TestEtcdPartitionFenceBound(t *testing.T) {
	for _, cutLinks := range []bool{false, true} {
		t.Run(fmt.Sprintf("links cut %v", cutLinks), func(t *testing.T) {
			res := runPartition(t, "fence", 1, cutLinks)
			for _, k := range partKeys {
				total := partPre + res.zombie[k] + res.heir[k]
				assert.LessOrEqual(t, res.zombie[k], 1, "%s: the cut-off primary admits nothing once fenced", k)
				if cutLinks {
					assert.Zero(t, res.zombie[k], "%s: the cut-off primary acknowledges nothing", k)
				}
				assert.Equal(t, partLimit-partPre-res.zombie[k], res.heir[k], "%s: the promoted replica admits what is left", k)
				assert.Equal(t, partLimit, total, "%s: the fence bound", k)
			}
		})
	}
}
