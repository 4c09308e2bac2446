package replication_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFailoverLosesNoAcknowledgedAdmission: writers spend fresh keys
// (one admission per key per hour) against whichever node is the primary;
// FAILOVER hands the role to the replica in the middle of it. Every
// admission a writer was told about is spent on the new primary, and on
// the old one, now its replica, which resumed without a full resync.
func TestFailoverLosesNoAcknowledgedAdmission(t *testing.T) {
	a, b := startNode(t, nil), startNode(t, nil)
	setClock(t, epoch, a, b)
	follow(t, b, a.host, a.port)
	// Each writer spends at least perWriter keys and goes on until it has
	// met the handover (at most maxPerWriter keys): one that finished
	// before FAILOVER paused writes would never see it.
	const writers, perWriter, maxPerWriter = 4, 400, 100_000
	var (
		mu       sync.Mutex
		acked    []string
		written  int
		slowest  time.Duration
		switched int
		started  sync.WaitGroup
		wg       sync.WaitGroup
	)
	started.Add(writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			target := a
			for i := 0; i < maxPerWriter && (i < perWriter || target == a); i++ {
				mu.Lock()
				written++
				mu.Unlock()
				if i == 50 {
					started.Done()
				}
				k := fmt.Sprintf("f:%d:%d", w, i)
				for {
					begin := time.Now()
					v, err := target.do("THROTTLE", k, 0, 1, 3600)
					took := time.Since(begin)
					mu.Lock()
					slowest = max(slowest, took)
					mu.Unlock()
					if err != nil && strings.HasPrefix(err.Error(), "READONLY") {
						target = map[*node]*node{a: b, b: a}[target]
						mu.Lock()
						switched++
						mu.Unlock()
						continue
					}
					if err != nil {
						t.Errorf("%s: %v", k, err)
						return
					}
					if v.([]any)[0] == int64(0) {
						mu.Lock()
						acked = append(acked, k)
						mu.Unlock()
					}
					break
				}
			}
		}()
	}
	started.Wait()
	require.Equal(t, "OK", a.must("FAILOVER", "TO", b.host, b.port, "TIMEOUT", 10000))
	wg.Wait()
	require.Len(t, acked, written, "every fresh key admits once")
	assert.Equal(t, writers, switched, "each writer met READONLY once, when the new primary was serving already")

	eventually(t, func() bool { return a.info("replication")["master_link_status"] == "up" }, "the old primary follows the new")
	assert.Equal(t, "master", b.info("replication")["role"])
	assert.Equal(t, "no-failover", a.info("replication")["master_failover_state"])
	waitReplicas(t, b, 1)
	for _, n := range []*node{b, a} {
		for _, k := range acked {
			v := n.must("THROTTLE", k, 0, 1, 3600, 0).([]any)
			require.Equal(t, int64(0), v[2], "%s is spent on %s", k, n.addr)
		}
	}
	as := a.info("replication")
	assert.Equal(t, "1", as["slave_partial_syncs"], "the old primary continued from its own stream")
	assert.Equal(t, "0", as["slave_full_syncs"])
	t.Logf("slowest request during the handover: %v", slowest)
	assert.Less(t, slowest, 5*time.Second, "writes paused, not stuck")
}

// TestFailoverTimeoutAbortAndRefusals: a replica that cannot catch up
// within TIMEOUT makes FAILOVER give up and writes resume on the primary;
// FAILOVER ABORT ends a wait; the refusals use Redis's words.
func TestFailoverTimeoutAbortAndRefusals(t *testing.T) {
	a, b := startNode(t, nil), startNode(t, nil)
	_, err := a.do("FAILOVER")
	assert.EqualError(t, err, "ERR FAILOVER requires connected replicas.")
	p := startProxy(t, a.addr)
	follow(t, b, "127.0.0.1", p.port())
	_, err = b.do("FAILOVER")
	assert.EqualError(t, err, "ERR FAILOVER is not valid when server is a replica.")
	_, err = a.do("FAILOVER", "TO", "127.0.0.1", 1)
	assert.EqualError(t, err, "ERR FAILOVER target HOST and PORT is not a replica.")
	_, err = a.do("FAILOVER", "FORCE")
	assert.EqualError(t, err, "ERR FAILOVER with force option requires both a timeout and target HOST and IP.")
	_, err = a.do("FAILOVER", "TIMEOUT", 0)
	assert.EqualError(t, err, "ERR FAILOVER timeout must be greater than 0")
	_, err = a.do("FAILOVER", "ABORT")
	assert.EqualError(t, err, "ERR FAILOVER is not in progress.")

	p.setStalled(true)                // connected, delivering nothing
	a.must("THROTTLE", "k", 5, 1, 10) // which the replica cannot get
	require.Equal(t, "OK", a.must("FAILOVER", "TIMEOUT", 300))
	_, err = a.do("FAILOVER")
	assert.EqualError(t, err, "ERR FAILOVER already in progress.")
	eventually(t, func() bool { return a.info("replication")["master_failover_state"] == "no-failover" }, "timed out")
	a.must("THROTTLE", "k", 5, 1, 10) // writes resume: still the primary
	assert.Equal(t, "master", a.info("replication")["role"])
	assert.Contains(t, a.logs.String(), "FAILOVER aborted: the replica did not catch up")

	require.Equal(t, "OK", a.must("FAILOVER"))
	assert.Equal(t, "waiting-for-sync", a.info("replication")["master_failover_state"])
	done := make(chan error, 1)
	go func() { _, err := a.do("THROTTLE", "k", 5, 1, 10); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("a write went through a paused primary: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	require.Equal(t, "OK", a.must("FAILOVER", "ABORT"))
	require.NoError(t, <-done, "the paused write runs once the FAILOVER is aborted")
	p.setStalled(false)
}

// TestMinReplicasToWrite: a primary short of replicas acknowledging within
// the lag refuses writes with NOREPLICAS, serves peeks, and writes again
// once a replica is attached.
func TestMinReplicasToWrite(t *testing.T) {
	a := startNode(t, func(c *server.Config) { c.MinReplicasToWrite = 1 })
	_, err := a.do("THROTTLE", "k", 5, 1, 10)
	assert.EqualError(t, err, "NOREPLICAS Not enough good replicas to write.")
	a.must("THROTTLE", "k", 5, 1, 10, 0)
	b := startNode(t, nil)
	follow(t, b, a.host, a.port)
	eventually(t, func() bool {
		_, err := a.do("THROTTLE", "k", 5, 1, 10)
		return err == nil
	}, "writes once a replica acknowledges")
	b.stop()
	eventually(t, func() bool {
		_, err := a.do("THROTTLE", "k", 5, 1, 10)
		return err != nil && errors.Is(err, err) && strings.HasPrefix(err.Error(), "NOREPLICAS")
	}, "refused again once the replica is gone")
}

// TestFailoverTimeoutCoversWritesInFlight: a write that passed the gate
// and does not end (held by DEBUG HOLD-WRITES, as a stalled journal would
// hold it) must not keep FAILOVER ... TIMEOUT paused past its timeout: the
// handover is aborted and writes resume on the primary, which stays one.
// Before, FAILOVER waited for such a write without bound, with every write
// paused meanwhile.
func TestFailoverTimeoutCoversWritesInFlight(t *testing.T) {
	a, b := startNode(t, nil), startNode(t, nil)
	setClock(t, epoch, a, b)
	follow(t, b, a.host, a.port)

	require.Equal(t, "OK", a.must("DEBUG", "HOLD-WRITES", "ON"))
	t.Cleanup(func() { _, _ = a.do("DEBUG", "HOLD-WRITES", "OFF") })
	held := make(chan error, 1)
	go func() {
		_, err := a.do("THROTTLE", "held", 0, 1, 3600)
		held <- err
	}()
	eventually(t, func() bool { return a.must("DEBUG", "HOLD-WRITES", "COUNT") == int64(1) }, "the write is held")

	require.Equal(t, "OK", a.must("FAILOVER", "TO", b.host, b.port, "TIMEOUT", 200))
	eventually(t, func() bool { return a.info("replication")["master_failover_state"] == "no-failover" },
		"FAILOVER gave up while the write was still in flight:\n"+a.logs.String())
	assert.EqualValues(t, 1, a.must("DEBUG", "HOLD-WRITES", "COUNT"), "the write is still held")
	assert.Equal(t, "master", a.info("replication")["role"])
	assert.Equal(t, "slave", b.info("replication")["role"])
	assert.Contains(t, a.logs.String(), "writes in flight did not end within TIMEOUT")

	require.Equal(t, "OK", a.must("DEBUG", "HOLD-WRITES", "OFF"))
	require.NoError(t, <-held, "the held write completes")
	v, err := a.do("THROTTLE", "after", 0, 1, 3600)
	require.NoError(t, err, "writes resume on the primary")
	assert.Equal(t, int64(0), v.([]any)[0])
	waitReplicas(t, a, 1)
}
