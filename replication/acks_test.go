package replication_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sluicehq/sluice/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// offset reads a node's master_repl_offset.
func offset(t testing.TB, n *node) int64 {
	t.Helper()
	v, err := strconv.ParseInt(n.info("replication")["master_repl_offset"], 10, 64)
	require.NoError(t, err)
	return v
}

// TestAdmittingRepliesWaitForReplicas: with --min-replicas-ack 1 every
// admitting reply leaves only once the replica acknowledged the change:
// right after each reply the replica already serves the key. With the
// link stalled, a reply is withheld after the primary made the change,
// and released, as a success, once the link delivers again, while reads
// and peeks are answered at once.
func TestAdmittingRepliesWaitForReplicas(t *testing.T) {
	primary := startNode(t, func(c *server.Config) { c.MinReplicasAck, c.MinReplicasAckTimeout = 1, 30*time.Second })
	replica := startNode(t, nil)
	setClock(t, epoch, primary, replica)
	p := startProxy(t, primary.addr)
	follow(t, replica, "127.0.0.1", p.port())
	for i := range 200 {
		v := primary.must("THROTTLE", key(i), 5, 1, 60).([]any)
		require.Equal(t, int64(0), v[0])
		require.EqualValues(t, 1, replica.must("EXISTS", key(i)), "%s on the replica when its reply arrived", key(i))
	}

	p.setStalled(true)
	before := offset(t, primary)
	c := redis.NewClient(&redis.Options{Addr: primary.addr, Protocol: 2, MaxRetries: -1, ReadTimeout: time.Minute})
	t.Cleanup(func() { _ = c.Close() })
	reply := make(chan error, 1)
	go func() { reply <- c.Do(context.Background(), "THROTTLE", "held", 5, 1, 60).Err() }()
	eventually(t, func() bool { return offset(t, primary) > before }, "the primary made the change")
	select {
	case err := <-reply:
		t.Fatalf("a reply left before the replica acknowledged its change: %v", err)
	default:
	}
	assert.EqualValues(t, 0, replica.must("EXISTS", "held"))
	// Reads and peeks change nothing of their own: they are answered at
	// once, whatever the stream does meanwhile.
	assert.EqualValues(t, 1, primary.must("EXISTS", "held"))
	assert.Equal(t, int64(0), primary.must("THROTTLE", "held", 5, 1, 60, 0).([]any)[0])
	p.setStalled(false)
	select {
	case err := <-reply:
		require.NoError(t, err, "released by the acknowledgement, not the timeout")
	case <-time.After(30 * time.Second):
		t.Fatal("the reply never came")
	}
	assert.EqualValues(t, 1, replica.must("EXISTS", "held"))
}

// TestAdmittingReplyTimesOutWithoutReplicas: with --min-replicas-ack 1
// and no replica, an admission is answered -NOREPLICAS after
// --min-replicas-ack-timeout (the change was made here: a peek shows it);
// a refusal changes nothing and is answered at once.
func TestAdmittingReplyTimesOutWithoutReplicas(t *testing.T) {
	primary := startNode(t, func(c *server.Config) { c.MinReplicasAck, c.MinReplicasAckTimeout = 1, 200*time.Millisecond })
	setClock(t, epoch, primary)
	// On a client of its own: the server closes the connection after the
	// error, as after a failed sync (the replies of a pipelined batch are
	// replaced by the one error).
	c := redis.NewClient(&redis.Options{Addr: primary.addr, Protocol: 2, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	err := c.Do(context.Background(), "THROTTLE", "k", 0, 1, 60).Err()
	require.Error(t, err)
	assert.Equal(t, "NOREPLICAS Not enough replicas acknowledged the change in time (--min-replicas-ack 1); it was made here, but a failover may lose it.", err.Error())
	v := primary.must("THROTTLE", "k", 0, 1, 60).([]any) // refused: nothing to wait for
	assert.Equal(t, int64(1), v[0], "the first admission was made")
	assert.Equal(t, "1", primary.must("CONFIG", "GET", "min-replicas-ack").([]any)[1])
	assert.Equal(t, "200", primary.must("CONFIG", "GET", "min-replicas-ack-timeout").([]any)[1])
}
