package commands

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/sluicehq/sluice/acl"
	"github.com/sluicehq/sluice/cluster"
	"github.com/sluicehq/sluice/keyspace"
	"github.com/sluicehq/sluice/policy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	nodeA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	nodeB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	nodeC = "cccccccccccccccccccccccccccccccccccccccc"
	nodeD = "dddddddddddddddddddddddddddddddddddddddd"
)

// threeNodes is a map where nodeA (the server under test) serves 0-5460
// and two other nodes, never dialled, the rest; nodeD replicates nodeB.
const threeNodes = nodeA + " 127.0.0.1 7000 master - 0-5460\n" +
	nodeB + " 127.0.0.1 7001 master - 5461-10922\n" +
	nodeC + " 10.1.2.3 7002 master - 10923-16383\n" +
	nodeD + " 127.0.0.1 7003 slave " + nodeB

// startClusterServer runs a command server in cluster mode as node id,
// without a topology.
func startClusterServer(t *testing.T, id string, cfg Config) *testServer {
	t.Helper()
	st, err := cluster.Open(cluster.Options{NodeID: id, Announce: cluster.Announce{Port: 7000}})
	require.NoError(t, err)
	cfg.Cluster, cfg.EnableDebug = st, true
	return startServerWith(t, cfg)
}

// keyIn finds a key whose slot lies in first..last.
func keyIn(first, last int, prefix string) string {
	for i := 0; ; i++ {
		k := fmt.Sprintf("%s%d", prefix, i)
		if s := cluster.Slot([]byte(k)); first <= s && s <= last {
			return k
		}
	}
}

func ok(t *testing.T, c *redis.Client, args ...any) {
	t.Helper()
	require.NoError(t, c.Do(context.Background(), args...).Err(), "%v", args)
}

func TestClusterModeOff(t *testing.T) {
	ts := startServer(t, true)
	c := ts.client(t, 2)
	ctx := context.Background()
	for _, cmd := range [][]any{{"CLUSTER", "INFO"}, {"CLUSTER", "KEYSLOT", "x"}, {"CLUSTER", "SLOTS"}, {"CLUSTERX", "VERSION"},
		{"CLUSTERX", "SETNODES", threeNodes, "1"}, {"READONLY"}, {"READWRITE"}, {"ASKING"}} {
		assert.EqualError(t, c.Do(ctx, cmd...).Err(), errClusterDisabled, "%v", cmd)
	}
	info, err := c.Info(ctx, "cluster").Result()
	require.NoError(t, err)
	assert.Equal(t, "# Cluster\r\ncluster_enabled:0\r\n", info)
	info, err = c.Info(ctx, "server").Result()
	require.NoError(t, err)
	assert.Contains(t, info, "redis_mode:standalone\r\n")
	// Keys of any slot run, several slots at once too.
	assert.Equal(t, []int64{0, 16, 15, -1, 2}, call(t, c, "THROTTLE", "foo", 15, 30, 60, 1))
	assert.Equal(t, int64(1), c.Del(ctx, "foo", "bar").Val())
}

func TestClusterRouting(t *testing.T) {
	ts := startClusterServer(t, nodeA, Config{})
	c := ts.client(t, 2)
	ctx := context.Background()
	mine, theirs, far := keyIn(0, 5460, "k"), keyIn(5461, 10922, "k"), keyIn(10923, 16383, "k")

	// No topology yet: keyed commands are refused, the others run.
	assert.EqualError(t, c.Do(ctx, "THROTTLE", mine, 1, 1, 1).Err(), errClusterDown)
	assert.EqualError(t, c.Do(ctx, "DEL", mine, theirs).Err(), errCrossSlot, "CROSSSLOT comes first, as in Redis")
	ok(t, c, "PING")
	ok(t, c, "DBSIZE")
	assert.Equal(t, int64(-1), c.Do(ctx, "CLUSTERX", "VERSION").Val())

	ok(t, c, "CLUSTERX", "SETNODES", threeNodes, "1")
	assert.Equal(t, int64(1), c.Do(ctx, "CLUSTERX", "VERSION").Val())
	assert.Equal(t, []int64{0, 2, 1, -1, 1}, call(t, c, "THROTTLE", mine, 1, 1, 1))
	assert.EqualError(t, c.Do(ctx, "THROTTLE", theirs, 1, 1, 1).Err(),
		fmt.Sprintf("MOVED %d 127.0.0.1:7001", cluster.Slot([]byte(theirs))))
	assert.EqualError(t, c.Do(ctx, "CL.THROTTLE", far, 1, 1, 1).Err(),
		fmt.Sprintf("MOVED %d 10.1.2.3:7002", cluster.Slot([]byte(far))))
	for _, cmd := range [][]any{{"TTL", far}, {"PTTL", far}, {"EXISTS", far}, {"LEASE.ACQUIRE", far, 1, 1000},
		{"LEASE.RELEASE", far, 1}, {"THROTTLE.WINDOW", far, 1, 1}} {
		assert.ErrorContains(t, c.Do(ctx, cmd...).Err(), "MOVED ", "%v", cmd)
	}

	// Several keys: one slot runs (hashtags), several are CROSSSLOT.
	assert.EqualError(t, c.Do(ctx, "DEL", mine, theirs).Err(), errCrossSlot)
	assert.EqualError(t, c.Do(ctx, "EXISTS", mine, mine+"x").Err(), errCrossSlot)
	tag := "{" + mine + "}"
	assert.Equal(t, int64(0), c.Exists(ctx, tag+"a", tag+"b").Val())
	v, err := c.Do(ctx, "THROTTLE.MULTI", 1, tag+"a", 1, 1, 1, tag+"b", 5, 1, 1).Result()
	require.NoError(t, err)
	assert.Len(t, v, 3, "the overall reply and one per limit")
	assert.EqualError(t, c.Do(ctx, "THROTTLE.MULTI", 1, mine, 1, 1, 1, theirs, 5, 1, 1).Err(), errCrossSlot)
	ttag := "{" + theirs + "}"
	assert.ErrorContains(t, c.Do(ctx, "THROTTLE.MULTI", 1, ttag+"a", 1, 1, 1, ttag+"b", 5, 1, 1).Err(),
		fmt.Sprintf("MOVED %d ", cluster.Slot([]byte(theirs))))

	// Keyless commands are this node's own.
	assert.Equal(t, int64(3), c.DBSize(ctx).Val())
	info, err := c.Info(ctx, "server", "cluster").Result()
	require.NoError(t, err)
	assert.Contains(t, info, "redis_mode:cluster\r\n")
	assert.Contains(t, info, "# Cluster\r\ncluster_enabled:1\r\ncluster_topology_version:1\r\n")
	assert.Regexp(t, `cluster_redirects:[1-9]`, info)
	hello, err := c.Do(ctx, "HELLO", "2").Result()
	require.NoError(t, err)
	assert.Contains(t, fmt.Sprint(hello), "mode cluster")
}

// TestPolicyThrottleRoutesByTheUsersKey: POLICY.THROTTLE's key is the key
// the user gave (COMMAND INFO's first key is 2), so its state lives on the
// node that serves that key's slot, and the per-slot commands and the drop
// of lost slots count it under that slot.
func TestPolicyThrottleRoutesByTheUsersKey(t *testing.T) {
	ts := startClusterServer(t, nodeA, Config{})
	set, err := policy.Parse([]byte(testPolicies))
	require.NoError(t, err)
	ts.srv.SetPolicies(set)
	c := ts.client(t, 2)
	ctx := context.Background()
	ok(t, c, "CLUSTERX", "SETNODES", threeNodes, "1")
	mine, theirs := keyIn(0, 5460, "user"), keyIn(5461, 10922, "user")
	_, err = c.Do(ctx, "POLICY.THROTTLE", "api", mine).Result()
	require.NoError(t, err)
	assert.EqualError(t, c.Do(ctx, "POLICY.THROTTLE", "api", theirs).Err(),
		fmt.Sprintf("MOVED %d 127.0.0.1:7001", cluster.Slot([]byte(theirs))))
	slot := cluster.Slot([]byte(mine))
	assert.Equal(t, int64(2), c.Do(ctx, "CLUSTER", "COUNTKEYSINSLOT", slot).Val(), "api's two limits")
	keys, err := c.Do(ctx, "CLUSTER", "GETKEYSINSLOT", slot, 10).StringSlice()
	require.NoError(t, err)
	assert.Equal(t, []string{"policy:api:0:" + mine, "policy:api:1:" + mine}, keys)
}

func TestKeySlotOfPolicyState(t *testing.T) {
	ts := startClusterServer(t, nodeA, Config{})
	set, err := policy.Parse([]byte(testPolicies + "\n[policies.\"tier:2\"]\nlimit = \"1/second\"\n"))
	require.NoError(t, err)
	ts.srv.SetPolicies(set)
	for stored, user := range map[string]string{
		"policy:api:0:user1":       "user1",
		"policy:api:1:a:7:b":       "a:7:b",
		"policy:tier:2:0:user1":    "user1", // a loaded name with ":2" in it
		"policy:gone:3:user1":      "user1", // a policy no longer loaded
		"policy:x:notanindex:k":    "policy:x:notanindex:k",
		"policy::0:k":              "policy::0:k",
		"policy:api:0:{tag}suffix": "{tag}x",
		"plain":                    "plain",
	} {
		assert.Equal(t, cluster.Slot([]byte(user)), ts.srv.keySlot([]byte(stored)), stored)
	}
}

func TestClusterxSetNodesRefuses(t *testing.T) {
	ts := startClusterServer(t, nodeA, Config{})
	c := ts.client(t, 2)
	ctx := context.Background()
	ok(t, c, "CLUSTERX", "SETNODES", threeNodes, "5")
	for _, tc := range []struct {
		args []any
		want string
	}{
		{[]any{"CLUSTERX", "SETNODES", threeNodes, "4"}, "ERR Invalid cluster version: 4 is older than the current version 5 (add FORCE to set it anyway)"},
		{[]any{"CLUSTERX", "SETNODES", threeNodes, "-1", "FORCE"}, "ERR invalid cluster version -1: must not be negative"},
		{[]any{"CLUSTERX", "SETNODES", threeNodes, "x"}, errNotInteger},
		{[]any{"CLUSTERX", "SETNODES", threeNodes, "6", "FORCEFULLY"}, errSyntax},
		{[]any{"CLUSTERX", "SETNODES", threeNodes, "6", "FORCE", "x"}, errSyntax},
		{[]any{"CLUSTERX", "SETNODES", nodeA + " 127.0.0.1 7000 master - 0-16000", "6"},
			"ERR Invalid nodes definition: slots 16001-16383 are served by no node (every slot 0-16383 needs a master)"},
		{[]any{"CLUSTERX", "SETNODES", nodeA + " 127.0.0.1 7000 master - 0-16383\n" + nodeB + " 127.0.0.1 7001 master - 7", "6"},
			"ERR Invalid nodes definition: line 2: slot 7 is already owned by " + nodeA},
		{[]any{"CLUSTERX", "SETNODES", "abc 127.0.0.1 7000 master - 0-16383", "6"},
			`ERR Invalid nodes definition: line 1: node id "abc": want 40 hex digits`},
		{[]any{"CLUSTERX", "SETNODEID", "xyz"}, errClusterNodeID},
		{[]any{"CLUSTERX", "SETNODES", threeNodes}, "ERR wrong number of arguments for 'clusterx|setnodes' command"},
		{[]any{"CLUSTERX", "NOPE"}, "ERR unknown subcommand 'NOPE'. Try CLUSTERX HELP."},
		{[]any{"CLUSTER", "ADDSLOTS", "1"}, "ERR unknown subcommand 'ADDSLOTS'. Try CLUSTER HELP."},
	} {
		assert.EqualError(t, c.Do(ctx, tc.args...).Err(), tc.want, "%v", tc.args[:min(len(tc.args), 2)])
	}
	assert.Equal(t, int64(5), c.Do(ctx, "CLUSTERX", "VERSION").Val(), "nothing refused changed the map")
	ok(t, c, "CLUSTERX", "SETNODES", threeNodes, "5") // the same version again: accepted, no change
	ok(t, c, "CLUSTERX", "SETNODES", nodeA+" 127.0.0.1 7000 master - 0-16383", "3", "force")
	assert.Equal(t, int64(3), c.Do(ctx, "CLUSTERX", "VERSION").Val())
	assert.Equal(t, nodeA, c.Do(ctx, "CLUSTERX", "MYID").Val())
}

// TestClusterxNeedsAdmin: CLUSTERX is @admin @dangerous; CLUSTER's readers
// are not.
func TestClusterxNeedsAdmin(t *testing.T) {
	us := acl.NewUsers("adminpw")
	require.NoError(t, us.Load(strings.NewReader("user app on >pa ~* +@all -@admin -@dangerous\n"), Catalog()))
	ts := startClusterServer(t, nodeA, Config{Users: us})
	app := login(t, ts, "app", "pa")
	ctx := context.Background()
	for _, cmd := range [][]any{{"SETNODES", threeNodes, "1"}, {"SETNODEID", nodeB}, {"VERSION"}, {"MYID"}} {
		err := app.Do(ctx, append([]any{"CLUSTERX"}, cmd...)...).Err()
		assert.EqualError(t, err, "NOPERM User app has no permissions to run the 'clusterx|"+strings.ToLower(cmd[0].(string))+"' command")
	}
	require.NoError(t, app.Do(ctx, "CLUSTER", "MYID").Err())
	require.NoError(t, app.Do(ctx, "CLUSTER", "SLOTS").Err())
	admin := login(t, ts, "default", "adminpw")
	require.NoError(t, admin.Do(ctx, "CLUSTERX", "SETNODES", threeNodes, "1").Err())
}

func TestClusterIntrospection(t *testing.T) {
	ts := startClusterServer(t, nodeA, Config{})
	c := ts.client(t, 2)
	ctx := context.Background()

	// Before a topology: as a fresh Redis Cluster node.
	nodes, err := c.ClusterNodes(ctx).Result()
	require.NoError(t, err)
	assert.Equal(t, nodeA+" :7000@17000 myself,master - 0 0 0 connected\n", nodes)
	info, err := c.ClusterInfo(ctx).Result()
	require.NoError(t, err)
	assert.Contains(t, info, "cluster_state:fail\r\ncluster_slots_assigned:0\r\n")
	//lint:ignore SA1019 cluster clients still read CLUSTER SLOTS
	slots, err := c.ClusterSlots(ctx).Result()
	require.NoError(t, err)
	assert.Empty(t, slots)

	ok(t, c, "CLUSTERX", "SETNODES", threeNodes, "3")
	nodes, err = c.ClusterNodes(ctx).Result()
	require.NoError(t, err)
	assert.Equal(t, nodeA+" 127.0.0.1:7000@17000 myself,master - 0 0 3 connected 0-5460\n"+
		nodeB+" 127.0.0.1:7001@17001 master - 0 0 3 connected 5461-10922\n"+
		nodeC+" 10.1.2.3:7002@17002 master - 0 0 3 connected 10923-16383\n"+
		nodeD+" 127.0.0.1:7003@17003 slave "+nodeB+" 0 0 3 connected\n", nodes)
	info, err = c.ClusterInfo(ctx).Result()
	require.NoError(t, err)
	assert.Equal(t, "cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:16384\r\ncluster_slots_pfail:0\r\n"+
		"cluster_slots_fail:0\r\ncluster_known_nodes:4\r\ncluster_size:3\r\ncluster_current_epoch:3\r\ncluster_my_epoch:3\r\n"+
		"cluster_stats_messages_sent:0\r\ncluster_stats_messages_received:0\r\ntotal_cluster_links_buffer_limit_exceeded:0\r\n", info)

	//lint:ignore SA1019 cluster clients still read CLUSTER SLOTS
	slots, err = c.ClusterSlots(ctx).Result()
	require.NoError(t, err)
	assert.Equal(t, []redis.ClusterSlot{
		{Start: 0, End: 5460, Nodes: []redis.ClusterNode{{ID: nodeA, Addr: "127.0.0.1:7000", NetworkingMetadata: map[string]string{}}}},
		{Start: 5461, End: 10922, Nodes: []redis.ClusterNode{{ID: nodeB, Addr: "127.0.0.1:7001", NetworkingMetadata: map[string]string{}},
			{ID: nodeD, Addr: "127.0.0.1:7003", NetworkingMetadata: map[string]string{}}}},
		{Start: 10923, End: 16383, Nodes: []redis.ClusterNode{{ID: nodeC, Addr: "10.1.2.3:7002", NetworkingMetadata: map[string]string{}}}},
	}, slots)

	shards, err := c.ClusterShards(ctx).Result()
	require.NoError(t, err)
	require.Len(t, shards, 3)
	assert.Equal(t, []redis.SlotRange{{Start: 5461, End: 10922}}, shards[1].Slots)
	assert.Equal(t, []redis.Node{
		{ID: nodeB, Endpoint: "127.0.0.1", IP: "127.0.0.1", Port: 7001, Role: "master", Health: "online"},
		{ID: nodeD, Endpoint: "127.0.0.1", IP: "127.0.0.1", Port: 7003, Role: "replica", Health: "online"},
	}, shards[1].Nodes)

	assert.Equal(t, nodeA, c.Do(ctx, "CLUSTER", "MYID").Val())
	assert.Equal(t, nodeA, c.Do(ctx, "CLUSTER", "MYSHARDID").Val())
	assert.Equal(t, int64(12182), c.ClusterKeySlot(ctx, "foo").Val())
	assert.Equal(t, int64(cluster.Slot([]byte("x"))), c.ClusterKeySlot(ctx, "{x}foo").Val())
	ok(t, c, "READONLY")
	ok(t, c, "READWRITE")
	ok(t, c, "ASKING")
	help, err := c.Do(ctx, "CLUSTER", "HELP").StringSlice()
	require.NoError(t, err)
	assert.Contains(t, help, "KEYSLOT <key>")
}

func TestClusterKeysInSlot(t *testing.T) {
	ts := startClusterServer(t, nodeA, Config{})
	c := ts.client(t, 2)
	ctx := context.Background()
	ok(t, c, "CLUSTERX", "SETNODES", threeNodes, "1")
	tag := "{" + keyIn(0, 5460, "t") + "}"
	slot := cluster.Slot([]byte(tag))
	for i := range 5 {
		call(t, c, "THROTTLE", fmt.Sprintf("%s%d", tag, i), 1, 1, 60)
	}
	ok(t, c, "THROTTLE.WINDOW", tag+"w", 5, 60)
	ok(t, c, "LEASE.ACQUIRE", tag+"w", 5, 60000) // the same name: one key
	other := keyIn(0, 5460, "o")
	call(t, c, "THROTTLE", other, 1, 1, 60)

	assert.Equal(t, int64(6), c.ClusterCountKeysInSlot(ctx, slot).Val())
	keys, err := c.ClusterGetKeysInSlot(ctx, slot, 100).Result()
	require.NoError(t, err)
	assert.Equal(t, []string{tag + "0", tag + "1", tag + "2", tag + "3", tag + "4", tag + "w"}, keys)
	keys, err = c.ClusterGetKeysInSlot(ctx, slot, 2).Result()
	require.NoError(t, err)
	assert.Len(t, keys, 2)
	assert.Empty(t, c.ClusterGetKeysInSlot(ctx, slot, 0).Val())
	assert.Equal(t, int64(0), c.ClusterCountKeysInSlot(ctx, (slot+1)%cluster.Slots).Val())

	for _, tc := range []struct {
		args []any
		want string
	}{
		{[]any{"CLUSTER", "COUNTKEYSINSLOT", 16384}, errInvalidSlot},
		{[]any{"CLUSTER", "COUNTKEYSINSLOT", -1}, errInvalidSlot},
		{[]any{"CLUSTER", "COUNTKEYSINSLOT", "x"}, errNotInteger},
		{[]any{"CLUSTER", "GETKEYSINSLOT", 1, -1}, errInvalidSlotOrCount},
		{[]any{"CLUSTER", "GETKEYSINSLOT", 16384, 1}, errInvalidSlotOrCount},
		{[]any{"CLUSTER", "GETKEYSINSLOT", "x", 1}, errNotInteger},
		{[]any{"CLUSTER", "GETKEYSINSLOT", 1, "x"}, errNotInteger},
		{[]any{"CLUSTER", "KEYSLOT"}, "ERR wrong number of arguments for 'cluster|keyslot' command"},
	} {
		assert.EqualError(t, c.Do(ctx, tc.args...).Err(), tc.want, "%v", tc.args)
	}
}

// TestLostSlotsAreDropped: a new version that moves slots away drops their
// keys (every kind of state, policies' by the user's key) and keeps the
// others; a node that gains slots starts them empty.
func TestLostSlotsAreDropped(t *testing.T) {
	ts := startClusterServer(t, nodeA, Config{})
	set, err := policy.Parse([]byte(testPolicies))
	require.NoError(t, err)
	ts.srv.SetPolicies(set)
	c := ts.client(t, 2)
	ctx := context.Background()
	ok(t, c, "CLUSTERX", "SETNODES", threeNodes, "1")
	kept, lost := keyIn(0, 99, "k"), keyIn(100, 5460, "k")
	for _, k := range []string{kept, lost} {
		call(t, c, "THROTTLE", k, 1, 1, 60)
		ok(t, c, "THROTTLE.WINDOW", k+"{"+k+"}", 5, 60)
		ok(t, c, "LEASE.ACQUIRE", "{"+k+"}l", 5, 60000)
		ok(t, c, "POLICY.THROTTLE", "api", k)
	}
	require.Equal(t, int64(10), c.DBSize(ctx).Val())

	// Version 2: nodeA keeps 0-99; nodeB takes 100-10922.
	moved := nodeA + " 127.0.0.1 7000 master - 0-99\n" + nodeB + " 127.0.0.1 7001 master - 100-10922\n" +
		nodeC + " 10.1.2.3 7002 master - 10923-16383"
	ok(t, c, "CLUSTERX", "SETNODES", moved, "2")
	assert.ErrorContains(t, c.Do(ctx, "THROTTLE", lost, 1, 1, 60).Err(), "MOVED ", "redirected at once")
	ok(t, c, "DEBUG", "SWEEP") // finishes the background drop
	assert.Equal(t, int64(5), c.DBSize(ctx).Val())
	var left []string
	ts.keys.EachKey(func(k []byte) { left = append(left, string(k)) })
	for _, k := range left {
		assert.Contains(t, k, kept, "only the kept slot's keys remain")
	}
	info, err := c.Info(ctx, "cluster").Result()
	require.NoError(t, err)
	assert.Contains(t, info, "cluster_keys_dropped:5\r\n")

	// The slot comes back with FORCE at version 1: it starts empty.
	ok(t, c, "CLUSTERX", "SETNODES", threeNodes, "1", "FORCE")
	assert.Equal(t, []int64{0, 2, 1, -1, 60}, call(t, c, "THROTTLE", lost, 1, 1, 60))
}

// TestReadonlyOnAReplica: a replica serves no slot, redirects to its
// master, and after READONLY runs read-only commands for its master's
// slots (writes still go to the master).
func TestReadonlyOnAReplica(t *testing.T) {
	ts := startClusterServer(t, nodeD, Config{})
	c := ts.client(t, 2)
	ctx := context.Background()
	conn := c.Conn()
	defer conn.Close()
	require.NoError(t, conn.Do(ctx, "CLUSTERX", "SETNODES", threeNodes, "1").Err())
	k := keyIn(5461, 10922, "r")
	moved := fmt.Sprintf("MOVED %d 127.0.0.1:7001", cluster.Slot([]byte(k)))
	assert.EqualError(t, conn.Do(ctx, "TTL", k).Err(), moved)
	require.NoError(t, conn.Do(ctx, "READONLY").Err())
	assert.Equal(t, int64(-2), conn.Do(ctx, "TTL", k).Val())
	assert.EqualError(t, conn.Do(ctx, "THROTTLE", k, 1, 1, 1).Err(), moved, "writes go to the master")
	other := keyIn(0, 5460, "r")
	assert.ErrorContains(t, conn.Do(ctx, "TTL", other).Err(), "MOVED ", "not its master's slot")
	require.NoError(t, conn.Do(ctx, "READWRITE").Err())
	assert.EqualError(t, conn.Do(ctx, "TTL", k).Err(), moved)
	assert.Equal(t, nodeB, conn.Do(ctx, "CLUSTER", "MYSHARDID").Val())
}

// TestRouteDoesNotAllocate: the routing check on the hot path allocates
// nothing, for a served key and for a multi-key call.
func TestRouteDoesNotAllocate(t *testing.T) {
	ts := startClusterServer(t, nodeA, Config{})
	_, _, err := ts.srv.cluster.SetNodes(threeNodes, 1, false)
	require.NoError(t, err)
	cmd := ts.srv.cmds.byName["throttle"]
	multi := ts.srv.cmds.byName["throttle.multi"]
	k := []byte(keyIn(0, 5460, "k"))
	tag := []byte("{" + string(k) + "}x")
	args := [][]byte{[]byte("THROTTLE"), k, []byte("1"), []byte("1"), []byte("1")}
	margs := [][]byte{[]byte("THROTTLE.MULTI"), []byte("1"), k, []byte("1"), []byte("1"), []byte("1"), tag, []byte("1"), []byte("1"), []byte("1")}
	sess := &session{}
	assert.Zero(t, testing.AllocsPerRun(1000, func() {
		if ts.srv.route(sess, cmd, args) != "" || ts.srv.route(sess, multi, margs) != "" {
			t.Fatal("not served")
		}
	}))
}

// BenchmarkRoute is the routing check of one THROTTLE on a served key.
func BenchmarkRoute(b *testing.B) {
	st, err := cluster.Open(cluster.Options{NodeID: nodeA})
	require.NoError(b, err)
	_, _, err = st.SetNodes(nodeA+" 127.0.0.1 7000 master - 0-16383", 1, false)
	require.NoError(b, err)
	s := &Server{cluster: st, cmds: newRegistry(commandTable())}
	cmd := s.cmds.byName["throttle"]
	args := [][]byte{[]byte("THROTTLE"), []byte("bench:123"), []byte("999999999"), []byte("999999999"), []byte("1"), []byte("1")}
	sess := &session{}
	b.ReportAllocs()
	for b.Loop() {
		if s.route(sess, cmd, args) != "" {
			b.Fatal("not served")
		}
	}
}

// TestDropPassAtStart: a node that starts with a map (kept in its data
// directory) drops the keys it holds for slots it does not serve, in case
// it stopped before a drop pass ended.
func TestDropPassAtStart(t *testing.T) {
	st, err := cluster.Open(cluster.Options{NodeID: nodeA})
	require.NoError(t, err)
	_, _, err = st.SetNodes(threeNodes, 1, false)
	require.NoError(t, err)
	ks := keyspace.New(4, nil)
	mine, theirs := keyIn(0, 5460, "k"), keyIn(5461, 16383, "k")
	for _, k := range []string{mine, theirs} {
		_, err := ks.Acquire([]byte(k), epoch, 1, 60_000_000_000)
		require.NoError(t, err)
	}
	s := NewServer(Config{Keys: ks, Cluster: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	for s.DropStep() {
	}
	var left []string
	ks.EachKey(func(k []byte) { left = append(left, string(k)) })
	assert.Equal(t, []string{mine}, left)
}
