package replication_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReplicaOfWaitsForWritesInFlight: a primary A turned into a replica
// of its promoted replica B by REPLICAOF host port, while writes that
// passed A's gate are still running (held there by DEBUG HOLD-WRITES, the
// moment a scheduler could preempt them). Every write must either end
// before A takes the offset it offers B, so that its change is in A's
// stream, or be refused with READONLY. A's stream then holds changes B
// lacks, so A takes a full resync and ends with B's state. Before the fix
// A muted its stream at once: the held writes changed A's state without
// entering its stream, B continued A at the offset it had (+CONTINUE), and
// A kept them for good (DEBUG DIGEST differed).
func TestReplicaOfWaitsForWritesInFlight(t *testing.T) {
	a, b := startNode(t, nil), startNode(t, nil)
	setClock(t, epoch, a, b)
	follow(t, b, a.host, a.port)

	// Writes B receives: every admission acknowledged here must be on B
	// after the switch.
	const writers, before = 4, 200
	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
	)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range before {
				k := fmt.Sprintf("before:%d:%d", w, i)
				v, err := a.do("THROTTLE", k, 0, 1, 3600)
				if !assert.NoError(t, err, k) {
					return
				}
				if v.([]any)[0] == int64(0) {
					mu.Lock()
					acked = append(acked, k)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	require.Len(t, acked, writers*before, "every fresh key admits once")
	waitReplicas(t, a, 1)

	// Writers go on; each one's next write passes the gate and is held
	// in flight.
	require.Equal(t, "OK", a.must("DEBUG", "HOLD-WRITES", "ON"))
	t.Cleanup(func() { _, _ = a.do("DEBUG", "HOLD-WRITES", "OFF") })
	var (
		during, refused int
		failures        []string
	)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 { // bounded: the first READONLY ends it
				_, err := a.do("THROTTLE", fmt.Sprintf("during:%d:%d", w, i), 0, 1, 3600)
				mu.Lock()
				switch {
				case err == nil:
					during++
				case strings.HasPrefix(err.Error(), "READONLY You can't write against a read only replica."):
					refused++
				default:
					failures = append(failures, err.Error())
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	eventually(t, func() bool { return a.must("DEBUG", "HOLD-WRITES", "COUNT") == int64(writers) },
		"every writer's write held in flight")

	// B, which has everything A streamed, is promoted; A follows it.
	require.Equal(t, "OK", b.must("REPLICAOF", "NO", "ONE"))
	switched := make(chan error, 1)
	go func() { _, err := a.do("REPLICAOF", b.host, b.port); switched <- err }()
	// role:slave is set with the gate closed (under the node's lock): a
	// write from then on is refused, not held.
	eventually(t, func() bool { return a.info("replication")["role"] == "slave" }, "A turns replica")
	_, err := a.do("THROTTLE", "probe", 0, 1, 3600)
	require.ErrorContains(t, err, "READONLY", "A refuses new writes while it waits for those in flight")
	require.Equal(t, "OK", a.must("DEBUG", "HOLD-WRITES", "OFF"))
	wg.Wait()
	require.NoError(t, <-switched)
	require.Empty(t, failures, "a write either runs or gets READONLY")
	assert.Equal(t, writers, during, "each held write ran and was acknowledged")
	assert.Equal(t, writers, refused, "each writer's next write got READONLY")

	eventually(t, func() bool { return a.info("replication")["master_link_status"] == "up" }, "A follows B:\n"+a.logs.String())
	waitReplicas(t, b, 1)
	assert.Equal(t, b.must("DEBUG", "DIGEST"), a.must("DEBUG", "DIGEST"), "A holds B's state:\n"+a.logs.String())
	assert.Equal(t, b.must("DBSIZE"), a.must("DBSIZE"))
	for _, n := range []*node{b, a} {
		for _, k := range acked {
			v := n.must("THROTTLE", k, 0, 1, 3600, 0).([]any)
			require.Equal(t, int64(0), v[2], "%s is spent on %s", k, n.addr)
		}
	}
	// The held writes ended in A's stream after B's promotion: B cannot
	// continue A from there, and the full resync replaces them (as in
	// Redis, a write acknowledged by the old primary after the promotion
	// is lost).
	as := a.info("replication")
	assert.Equal(t, "1", as["slave_full_syncs"], "A's stream holds the held writes, which B lacks")
	assert.Equal(t, "0", as["slave_partial_syncs"])
}

// TestReplicaOfPastTheWritesBound: a write held in flight for longer than
// REPLICAOF waits (1 s). REPLICAOF then answers, logging it, and A stays a
// replica that refuses writes but does not connect to B (which could
// continue it at an offset its state has gone past) until the write has
// ended; then it follows B and ends with B's state.
func TestReplicaOfPastTheWritesBound(t *testing.T) {
	a, b := startNode(t, nil), startNode(t, nil)
	setClock(t, epoch, a, b)
	follow(t, b, a.host, a.port)
	for i := range 100 {
		a.must("THROTTLE", key(i), 4, 2, 10)
	}
	waitReplicas(t, a, 1)

	require.Equal(t, "OK", a.must("DEBUG", "HOLD-WRITES", "ON"))
	t.Cleanup(func() { _, _ = a.do("DEBUG", "HOLD-WRITES", "OFF") })
	held := make(chan error, 1)
	go func() { _, err := a.do("THROTTLE", "held", 4, 2, 10); held <- err }()
	eventually(t, func() bool { return a.must("DEBUG", "HOLD-WRITES", "COUNT") == int64(1) }, "a write held in flight")

	require.Equal(t, "OK", b.must("REPLICAOF", "NO", "ONE"))
	require.Equal(t, "OK", a.must("REPLICAOF", b.host, b.port), "REPLICAOF answers once its wait is over")
	require.EqualValues(t, 1, a.must("DEBUG", "HOLD-WRITES", "COUNT"), "the write is still running")
	require.Contains(t, a.logs.String(), "still running")
	_, err := a.do("THROTTLE", "late", 4, 2, 10)
	require.ErrorContains(t, err, "READONLY")
	// A's follower waits for the write before its first PSYNC: B has
	// served no one.
	bs := b.info("replication")
	assert.Equal(t, "0", bs["sync_full"])
	assert.Equal(t, "0", bs["sync_partial_ok"])
	assert.Equal(t, "0", bs["connected_slaves"])

	require.Equal(t, "OK", a.must("DEBUG", "HOLD-WRITES", "OFF"))
	require.NoError(t, <-held, "the held write ran")
	eventually(t, func() bool { return a.info("replication")["master_link_status"] == "up" }, "A follows B:\n"+a.logs.String())
	require.Contains(t, a.logs.String(), "the writes ended; connecting to the primary")
	waitReplicas(t, b, 1)
	sameState(t, b, a, 100)
	assert.Equal(t, "1", a.info("replication")["slave_full_syncs"], "A's stream holds the held write, which B lacks")
}
