package controlplane

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/sluicehq/sluice/cluster"
	"github.com/sluicehq/sluice/replication"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
)

// TestHandoverRequestWithdrawn: with the election held by the test (no
// controller decides), a master's handover request stays pending: ABORT
// and the deadline withdraw it and report it; a pending request of
// another node refuses a second; a request the controller deletes
// without flipping the map is reported as not granted. Check refuses a
// target that is not a replica and a node that is not a master.
func TestHandoverRequestWithdrawn(t *testing.T) {
	endpoint := startEtcd(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer func() { _ = cli.Close() }()
	ctx := context.Background()
	sess, err := concurrency.NewSession(cli, concurrency.WithTTL(5))
	require.NoError(t, err)
	defer func() { _ = sess.Close() }()
	require.NoError(t, concurrency.NewElection(sess, "/sluice/held/election").Campaign(ctx, "test"))

	var agents []*Agent
	var ids []string
	for i := range 2 {
		st, err := cluster.Open(cluster.Options{})
		require.NoError(t, err)
		n := &fakeNode{st: st}
		a, err := Start(Config{Endpoints: []string{endpoint}, Cluster: "held", LeaseTTL: testLeaseTTL,
			ID: st.View().ID, Host: "127.0.0.1", Port: 7000 + i, Node: n, Replication: n, Logger: slog.New(slog.DiscardHandler)})
		require.NoError(t, err)
		t.Cleanup(func() { _ = a.Close() })
		agents, ids = append(agents, a), append(ids, st.View().ID)
	}
	text := fmt.Sprintf("%s 127.0.0.1 7000 master - 0-16383\n%s 127.0.0.1 7001 slave %s", ids[0], ids[1], ids[0])
	_, err = cli.Put(ctx, "/sluice/held/topology", text)
	require.NoError(t, err)
	primary, replica := agents[0], agents[1]
	eventually(t, "both applied the topology and registered", func() bool {
		return primary.Check("127.0.0.1", 7001) == nil && replica.applied.Load() != nil && replica.Status().LeaseOK
	})
	require.ErrorIs(t, primary.Check("127.0.0.1", 7009), replication.ErrFailoverNotReplica)
	require.EqualError(t, replica.Check("127.0.0.1", 7000), "FAILOVER: this node is not a master in the topology etcd holds")

	pending := func() *cluster.Handover {
		r, err := cli.Get(ctx, "/sluice/held/handover")
		require.NoError(t, err)
		if len(r.Kvs) == 0 {
			return nil
		}
		var h cluster.Handover
		require.NoError(t, json.Unmarshal(r.Kvs[0].Value, &h))
		return &h
	}
	flip := func(deadline time.Time, abort chan struct{}) chan error {
		done := make(chan error, 1)
		go func() { done <- primary.Flip("127.0.0.1", 7001, deadline, abort) }()
		return done
	}
	wait := func(done chan error) error {
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			t.Fatal("Flip did not return within 30 s")
			return nil
		}
	}

	abort := make(chan struct{})
	done := flip(time.Now().Add(time.Minute), abort)
	eventually(t, "the request is pending", func() bool { return pending() != nil })
	require.Equal(t, cluster.Handover{From: ids[0], To: ids[1], Revision: primary.applied.Load().Version}, *pending())
	close(abort)
	require.EqualError(t, wait(done), "FAILOVER ABORT")
	require.Nil(t, pending(), "withdrawn")

	require.EqualError(t, wait(flip(time.Now().Add(200*time.Millisecond), nil)), "timed out waiting for the controller")
	require.Nil(t, pending(), "withdrawn")

	_, err = cli.Put(ctx, "/sluice/held/handover", `{"from":"other","to":"x","revision":1}`)
	require.NoError(t, err)
	require.EqualError(t, wait(flip(time.Now().Add(time.Minute), nil)),
		`another handover is in progress: {"from":"other","to":"x","revision":1}`)
	_, err = cli.Delete(ctx, "/sluice/held/handover")
	require.NoError(t, err)

	done = flip(time.Now().Add(time.Minute), nil)
	eventually(t, "the request is pending", func() bool { return pending() != nil })
	_, err = cli.Delete(ctx, "/sluice/held/handover") // as a controller refusing it
	require.NoError(t, err)
	require.ErrorContains(t, wait(done), "the controller did not grant the handover")
}
