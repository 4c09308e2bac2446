package compat

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestClusterRedisPyAfterPrimaryLoss runs
// python/test_redis_cluster_failover.py: the script kills node 0 (SIGKILL)
// while redis-py's RedisCluster holds a map where it serves 0-5460, and
// pushes version 2, which gives those slots to node 1. Debian's redis-py 4.3.4 fails to reload its map
// (the script's doc says why) and a new client serves the key: what
// README's Failover table tells redis-py users.
func TestClusterRedisPyAfterPrimaryLoss(t *testing.T) {
	requirePython(t, "redis", "python3-redis")
	pc := startProcessCluster(t)
	v2 := mapWithoutNode0(pc)
	out, err := run(t, 60*time.Second, []string{"SLUICE_CLUSTER_ADDRS=" + strings.Join(pc.addrs, ","),
		"SLUICE_CLUSTER_MAP_V2=" + strings.Join(v2, "\n"), "SLUICE_KILL_PID=" + strconv.Itoa(pc.nodes[0].cmd.Process.Pid),
		"PYTHONDONTWRITEBYTECODE=1"},
		"python", systemPython, "-m", "unittest", "-v", "test_redis_cluster_failover")
	if err != nil || !strings.Contains(out, "\nOK") {
		t.Fatalf("redis-py RedisCluster failover test failed: %v\n%s", err, lastLines(out, 40))
	}
	awaitKilled(t, pc.nodes[0])
}

// mapWithoutNode0 is version 2 of the map: node 1 also serves node 0's
// slots.
func mapWithoutNode0(pc *processCluster) []string {
	return []string{
		fmt.Sprintf("%s %s %d master - 0-%d", clusterNodeIDs[1], pc.nodes[1].Host, pc.nodes[1].Port, 2*cluster3-1),
		fmt.Sprintf("%s %s %d master - %d-16383", clusterNodeIDs[2], pc.nodes[2].Host, pc.nodes[2].Port, 2*cluster3),
	}
}

// awaitKilled waits for s, which a script killed, to be reaped, so that the
// cleanup does not try to stop it.
func awaitKilled(t *testing.T, s *sluice) {
	t.Helper()
	select {
	case <-s.exited:
		s.killed = true
	case <-time.After(10 * time.Second):
		t.Fatal("the node still runs after the script killed it")
	}
}

// TestClusterIORedisAfterPrimaryLoss runs
// node/ioredis-cluster-failover.test.mjs, the same change for ioredis's
// Cluster with its default options: the first command after it is served.
func TestClusterIORedisAfterPrimaryLoss(t *testing.T) {
	node := requireNodeClients(t)
	pc := startProcessCluster(t)
	out, err := run(t, 60*time.Second, []string{"SLUICE_CLUSTER_ADDRS=" + strings.Join(pc.addrs, ","),
		"SLUICE_CLUSTER_MAP_V2=" + strings.Join(mapWithoutNode0(pc), "\n"), "SLUICE_KILL_PID=" + strconv.Itoa(pc.nodes[0].cmd.Process.Pid)},
		"node", node, "--test", "--test-reporter=spec", "ioredis-cluster-failover.test.mjs")
	if err != nil {
		t.Fatalf("node --test ioredis-cluster-failover.test.mjs: %v\n%s", err, out)
	}
	awaitKilled(t, pc.nodes[0])
}
