package replication_test

import (
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"testing"

	"github.com/sluicehq/sluice/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReplicaRestartResumes: a replica stopped cleanly and restarted on
// its data directory (with --replicaof) continues from the offset it kept
// there: a partial resync, counted on both sides, and the primary's state
// key by key, including what the primary did while it was down.
func TestReplicaRestartResumes(t *testing.T) {
	dir := t.TempDir()
	primary := startNode(t, nil)
	tune := func(c *server.Config) {
		c.DataDir = dir
		c.ReplicaOf = primary.host + " " + strconv.Itoa(primary.port)
	}
	replica := startNode(t, tune)
	setClock(t, epoch, primary, replica)
	eventually(t, func() bool { return replica.info("replication")["master_link_status"] == "up" }, "link up")
	w := &workload{rng: rand.New(rand.NewPCG(18, 2)), keys: 200}
	w.run(t, primary, 1000)
	waitReplicas(t, primary, 1)
	replica.stop()
	eventually(t, func() bool { return primary.info("replication")["connected_slaves"] == "0" }, "the primary sees the replica go")
	w.run(t, primary, 500) // missed, but in the backlog

	again := startNode(t, tune)
	setClock(t, epoch, again)
	eventually(t, func() bool { return again.info("replication")["master_link_status"] == "up" }, "link up again:\n"+again.logs.String())
	waitReplicas(t, primary, 1)
	ps, rs := primary.info("replication"), again.info("replication")
	assert.Equal(t, []string{"1", "1", "0"}, []string{ps["sync_full"], ps["sync_partial_ok"], ps["sync_partial_err"]},
		"sync_full, sync_partial_ok, sync_partial_err: the restart continued")
	assert.Equal(t, []string{"0", "1"}, []string{rs["slave_full_syncs"], rs["slave_partial_syncs"]})
	assert.Equal(t, ps["master_replid"], rs["master_replid"])
	assert.Contains(t, again.logs.String(), "the data directory holds the primary's stream")
	sameState(t, primary, again, w.keys)
}

// TestRestartedReplicaResumesOnReplicaOf: a replica restarted on its data
// directory without --replicaof serves as a primary; a REPLICAOF before
// anything changed there continues from the stream its data holds (as a
// failover controller that sets roles at run time does).
func TestRestartedReplicaResumesOnReplicaOf(t *testing.T) {
	dir := t.TempDir()
	primary := startNode(t, nil)
	replica := startNode(t, func(c *server.Config) { c.DataDir = dir })
	setClock(t, epoch, primary, replica)
	follow(t, replica, primary.host, primary.port)
	w := &workload{rng: rand.New(rand.NewPCG(18, 3)), keys: 150}
	w.run(t, primary, 800)
	waitReplicas(t, primary, 1)
	replica.stop()
	w.run(t, primary, 300)

	again := startNode(t, func(c *server.Config) { c.DataDir = dir })
	setClock(t, epoch, again)
	assert.Equal(t, "master", again.info("replication")["role"])
	follow(t, again, primary.host, primary.port)
	waitReplicas(t, primary, 1)
	ps := primary.info("replication")
	// The first REPLICAOF offered the replica's own new stream (refused,
	// counted as sync_partial_err); the second continued.
	assert.Equal(t, []string{"1", "1", "1"}, []string{ps["sync_full"], ps["sync_partial_ok"], ps["sync_partial_err"]})
	sameState(t, primary, again, w.keys)
}

// TestPromotedReplicaDoesNotResume: a replica promoted with REPLICAOF NO
// ONE takes a write of its own, then is restarted on its data directory
// as a replica of its former primary: its data no longer is that
// primary's stream, so it takes a full resync and holds the primary's
// state, without its own write.
func TestPromotedReplicaDoesNotResume(t *testing.T) {
	dir := t.TempDir()
	primary := startNode(t, nil)
	replica := startNode(t, func(c *server.Config) { c.DataDir = dir })
	setClock(t, epoch, primary, replica)
	follow(t, replica, primary.host, primary.port)
	w := &workload{rng: rand.New(rand.NewPCG(18, 4)), keys: 100}
	w.run(t, primary, 500)
	waitReplicas(t, primary, 1)
	require.Equal(t, "OK", replica.must("REPLICAOF", "NO", "ONE"))
	replica.must("THROTTLE", "mine", 5, 1, 60)
	replica.stop()

	again := startNode(t, func(c *server.Config) {
		c.DataDir = dir
		c.ReplicaOf = primary.host + " " + strconv.Itoa(primary.port)
	})
	setClock(t, epoch, again)
	eventually(t, func() bool { return again.info("replication")["master_link_status"] == "up" }, "link up again")
	waitReplicas(t, primary, 1)
	assert.Equal(t, "1", again.info("replication")["slave_full_syncs"])
	assert.EqualValues(t, 0, again.must("EXISTS", "mine"), "the promoted node's own write is not the primary's")
	sameState(t, primary, again, w.keys)
}

// TestReplicaLagMs: INFO's master_repl_lag_ms and the lag gauge on
// /metrics are small on a healthy link, grow past a second while the link
// delivers nothing (the primary's heartbeats are overdue), and come back
// once it delivers again.
func TestReplicaLagMs(t *testing.T) {
	primary := startNode(t, nil)
	replica := startNode(t, func(c *server.Config) { c.MetricsAddr = "127.0.0.1:0" })
	p := startProxy(t, primary.addr)
	follow(t, replica, "127.0.0.1", p.port())
	lag := func() int64 {
		v, err := strconv.ParseInt(replica.info("replication")["master_repl_lag_ms"], 10, 64)
		require.NoError(t, err)
		return v
	}
	eventually(t, func() bool { v := lag(); return v >= 0 && v < 1000 }, "a heartbeat applied, lag under a second")
	assert.Regexp(t, `(?m)^sluice_replication_lag_seconds \d`, metrics(t, replica))

	p.setStalled(true)
	eventually(t, func() bool { return lag() >= 1500 }, "the lag grows while the link delivers nothing")
	p.setStalled(false)
	eventually(t, func() bool { return lag() < 1000 }, "the lag comes back")
}

// metrics reads a node's /metrics.
func metrics(t testing.TB, n *node) string {
	t.Helper()
	resp, err := http.Get("http://" + n.srv.MetricsAddr().String() + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// TestPrimaryCleanRestartContinues: a primary stopped cleanly and
// restarted on its data directory and port keeps its stream: its offset
// continues, its old ID becomes its second, and its replica (and that
// replica's own replica, a chain) continue with a partial resync, hold its
// state key by key, and follow its further writes.
func TestPrimaryCleanRestartContinues(t *testing.T) {
	dir := t.TempDir()
	primary := startNode(t, func(c *server.Config) { c.DataDir = dir })
	replica, chained := startNode(t, nil), startNode(t, nil)
	setClock(t, epoch, primary, replica, chained)
	follow(t, replica, primary.host, primary.port)
	follow(t, chained, replica.host, replica.port)
	w := &workload{rng: rand.New(rand.NewPCG(18, 6)), keys: 150}
	w.run(t, primary, 800)
	waitReplicas(t, primary, 1)
	before := primary.info("replication")["master_replid"]
	primary.stop()
	eventually(t, func() bool { return replica.info("replication")["master_link_status"] == "down" }, "link down")
	end, err := strconv.ParseInt(replica.info("replication")["slave_repl_offset"], 10, 64)
	require.NoError(t, err)

	again := startNode(t, func(c *server.Config) { c.DataDir = dir; c.ListenAddr = primary.addr })
	setClock(t, epoch, again)
	eventually(t, func() bool { return replica.info("replication")["master_link_status"] == "up" }, "link up again")
	as, rs := again.info("replication"), replica.info("replication")
	assert.Equal(t, []string{"0", "1", "0"}, []string{as["sync_full"], as["sync_partial_ok"], as["sync_partial_err"]},
		"sync_full, sync_partial_ok, sync_partial_err: the replica continued\n%s", again.logs.String())
	assert.Equal(t, []string{"1", "1"}, []string{rs["slave_full_syncs"], rs["slave_partial_syncs"]})
	assert.Equal(t, before, as["master_replid2"], "the old ID is the second")
	assert.Equal(t, strconv.FormatInt(end+1, 10), as["second_repl_offset"])
	assert.NotEqual(t, before, as["master_replid"])
	assert.Equal(t, as["master_replid"], rs["master_replid"], "the replica took the new ID")
	assert.Contains(t, primary.logs.String(), "kept the stream's position for a restart")
	assert.Contains(t, again.logs.String(), "holds the stream up to a clean stop")
	sameState(t, again, replica, w.keys)

	w.run(t, again, 300)
	waitReplicas(t, again, 1)
	sameState(t, again, replica, w.keys)
	eventually(t, func() bool {
		return chained.info("replication")["slave_repl_offset"] == again.info("replication")["master_repl_offset"]
	}, "the chain's end catches up")
	sameState(t, again, chained, w.keys)
	assert.Equal(t, "1", chained.info("replication")["slave_full_syncs"], "the chain's end continued too")
}

// TestPrimaryCleanRestartBehindReplica: a replica cut off before the
// primary's last writes lacks the end of the stream its primary stopped
// at, so the restarted primary refuses to continue it (its backlog starts
// at that end) and serves a full resync.
func TestPrimaryCleanRestartBehindReplica(t *testing.T) {
	dir := t.TempDir()
	primary := startNode(t, func(c *server.Config) { c.DataDir = dir })
	replica := startNode(t, nil)
	setClock(t, epoch, primary, replica)
	p := startProxy(t, primary.addr)
	follow(t, replica, "127.0.0.1", p.port())
	w := &workload{rng: rand.New(rand.NewPCG(18, 7)), keys: 150}
	w.run(t, primary, 500)
	waitReplicas(t, primary, 1)
	p.setDown(true)
	p.cut()
	eventually(t, func() bool { return primary.info("replication")["connected_slaves"] == "0" }, "the primary sees the replica go")
	w.run(t, primary, 200) // the replica misses these
	primary.stop()

	again := startNode(t, func(c *server.Config) { c.DataDir = dir; c.ListenAddr = primary.addr })
	setClock(t, epoch, again)
	p.setDown(false)
	waitReplicas(t, again, 1)
	as := again.info("replication")
	assert.Equal(t, []string{"1", "0", "1"}, []string{as["sync_full"], as["sync_partial_ok"], as["sync_partial_err"]},
		"sync_full, sync_partial_ok, sync_partial_err: refused to continue, a full resync")
	assert.Equal(t, "2", replica.info("replication")["slave_full_syncs"])
	sameState(t, again, replica, w.keys)
}

// TestPromotedReplicaContinuesCleanlyStoppedPrimary: a primary stopped
// cleanly, its caught-up replica promoted (REPLICAOF NO ONE), and the old
// primary restarted on its data directory as a replica of the promoted
// one: the kept position is the promoted node's second ID and offset, so
// the old primary continues without a full resync (a planned handover
// done by stopping the primary).
func TestPromotedReplicaContinuesCleanlyStoppedPrimary(t *testing.T) {
	dir := t.TempDir()
	primary := startNode(t, func(c *server.Config) { c.DataDir = dir })
	replica := startNode(t, nil)
	setClock(t, epoch, primary, replica)
	follow(t, replica, primary.host, primary.port)
	w := &workload{rng: rand.New(rand.NewPCG(18, 8)), keys: 100}
	w.run(t, primary, 500)
	waitReplicas(t, primary, 1)
	primary.stop()
	require.Equal(t, "OK", replica.must("REPLICAOF", "NO", "ONE"))
	w.run(t, replica, 200)

	again := startNode(t, func(c *server.Config) {
		c.DataDir = dir
		c.ReplicaOf = replica.host + " " + strconv.Itoa(replica.port)
	})
	setClock(t, epoch, again)
	waitReplicas(t, replica, 1)
	ps := replica.info("replication")
	assert.Equal(t, []string{"0", "1"}, []string{ps["sync_full"], ps["sync_partial_ok"]}, "sync_full, sync_partial_ok")
	assert.Equal(t, "0", again.info("replication")["slave_full_syncs"])
	sameState(t, replica, again, w.keys)
}
