package controlplane

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluicehq/sluice/cluster"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// testLeaseTTL is short, yet leaves a loaded machine under -race time to
// renew (etcd's client sends keepalives on a 500 ms tick).
const testLeaseTTL = 2 * time.Second

// startEtcd runs a one-member etcd on loopback with short ticks (so that
// one-second leases are allowed) and returns its client URL.
func startEtcd(t *testing.T) string {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Name, cfg.Dir = "test", t.TempDir()
	cfg.TickMs, cfg.ElectionMs = 50, 500
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	client, peer := freeURL(t), freeURL(t)
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = "test=" + peer.String()
	e, err := embed.StartEtcd(cfg)
	require.NoError(t, err)
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		t.Fatal("embedded etcd not ready within 30 s")
	}
	return client.String()
}

func freeURL(t *testing.T) url.URL {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = ln.Close() }()
	return url.URL{Scheme: "http", Host: ln.Addr().String()}
}

// fakeNode is a node without a server: a real cluster.State for the
// topology, and its replication role as the agent set it.
type fakeNode struct {
	st *cluster.State
	mu sync.Mutex
	// following is the primary's "host:port", "" for a primary.
	following string
}

func (n *fakeNode) ApplyTopology(text string, version int64) (old, cur *cluster.View, err error) {
	return n.st.SetNodes(text, version, false)
}
func (n *fakeNode) SetFenced(bool) {}
func (n *fakeNode) ReplicaOf(host string, port int) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	addr := fmt.Sprintf("%s:%d", host, port)
	already := n.following == addr
	n.following = addr
	return already
}
func (n *fakeNode) Promote() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	already := n.following == ""
	n.following = ""
	return already
}
func (n *fakeNode) role() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.following
}

func eventually(t *testing.T, msg string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 30 s: %s", msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestControllerPromotesTheReplicaWithTheHighestOffset: one master with
// two replicas; the master stops; the controller asks both replicas their
// offset (the test answers 5 and 9) and promotes the one at 9, which the
// other then follows.
func TestControllerPromotesTheReplicaWithTheHighestOffset(t *testing.T) {
	endpoint := startEtcd(t)
	var asked sync.Map
	offsets := map[int]int64{7001: 5, 7002: 9}
	var agents []*Agent
	var nodes []*fakeNode
	for i := range 3 {
		st, err := cluster.Open(cluster.Options{})
		require.NoError(t, err)
		n := &fakeNode{st: st}
		a, err := Start(Config{
			Endpoints: []string{endpoint}, Cluster: "offsets", LeaseTTL: testLeaseTTL,
			Shape: cluster.Shape{Primaries: 1, Replicas: 2},
			ID:    st.View().ID, Host: "127.0.0.1", Port: 7000 + i, Node: n, Replication: n,
			Offset: func(_ context.Context, _ string, port int) (int64, error) {
				asked.Store(port, true)
				return offsets[port], nil
			},
			Logger: slog.New(slog.DiscardHandler),
		})
		require.NoError(t, err)
		agents, nodes = append(agents, a), append(nodes, n)
		if i == 0 {
			eventually(t, "the first node masters every slot", func() bool {
				v := st.View()
				return v.Self != nil && v.Self.Role == cluster.Master
			})
		}
	}
	for i, n := range nodes[1:] {
		eventually(t, fmt.Sprintf("node %d follows the first", i+1), func() bool { return n.role() == "127.0.0.1:7000" })
	}
	require.NoError(t, agents[0].Close())
	eventually(t, "the replica at offset 9 promoted, the other following it", func() bool {
		return nodes[2].role() == "" && nodes[1].role() == "127.0.0.1:7002"
	})
	for _, port := range []int{7001, 7002} {
		_, ok := asked.Load(port)
		require.True(t, ok, "the controller asked the replica at port %d", port)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer func() { _ = cli.Close() }()
	r, err := cli.Get(context.Background(), "/sluice/offsets/topology")
	require.NoError(t, err)
	top, err := cluster.Parse(string(r.Kvs[0].Value), r.Kvs[0].ModRevision)
	require.NoError(t, err)
	require.Equal(t, nodes[2].st.View().ID, top.Owner(0).ID)
	require.Equal(t, top.Version, nodes[1].st.View().Version(), "the other replica applied it")
	for _, a := range agents[1:] {
		require.NoError(t, a.Close())
	}
}

// etcdCounter sums the embedded etcd's counter name (etcd registers its
// metrics in Prometheus's default registry).
func etcdCounter(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	require.NoError(t, err)
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// TestSteadyStateIsKeepalivesOnly: once a cluster has settled, etcd sees
// lease renewals and nothing else: no read, write or transaction while
// the leases are renewed several times over.
func TestSteadyStateIsKeepalivesOnly(t *testing.T) {
	endpoint := startEtcd(t)
	var nodes []*fakeNode
	for i := range 2 {
		st, err := cluster.Open(cluster.Options{})
		require.NoError(t, err)
		n := &fakeNode{st: st}
		a, err := Start(Config{
			Endpoints: []string{endpoint}, Cluster: "steady", LeaseTTL: testLeaseTTL,
			Shape: cluster.Shape{Primaries: 1, Replicas: 1},
			ID:    st.View().ID, Host: "127.0.0.1", Port: 7100 + i, Node: n, Replication: n,
			Logger: slog.New(slog.DiscardHandler),
		})
		require.NoError(t, err)
		t.Cleanup(func() { _ = a.Close() })
		nodes = append(nodes, n)
	}
	eventually(t, "one master and its replica, both on one version", func() bool {
		v0, v1 := nodes[0].st.View(), nodes[1].st.View()
		return v0.Version() > 0 && v0.Version() == v1.Version() && len(v0.Topology.Nodes) == 2
	})
	others := func() float64 {
		return etcdCounter(t, "etcd_mvcc_range_total") + etcdCounter(t, "etcd_mvcc_put_total") +
			etcdCounter(t, "etcd_mvcc_delete_total") + etcdCounter(t, "etcd_mvcc_txn_total")
	}
	renewed := func() float64 { return etcdCounter(t, "etcd_debugging_lease_renewed_total") }
	// Quiet: no other request while the leases are renewed twice (the
	// controller may still be reading after its last write).
	eventually(t, "a quiet period", func() bool {
		o, r := others(), renewed()
		eventually(t, "two renewals", func() bool { return renewed() >= r+2 })
		return others() == o
	})
	o, r := others(), renewed()
	require.Positive(t, o, "the counters are etcd's (the registrations were puts)")
	eventually(t, "six more renewals", func() bool { return renewed() >= r+6 })
	require.Equal(t, o, others(), "etcd saw requests other than lease keepalives at steady state")
}

// TestWholeClusterRestartKeepsTheTopology: both nodes of a cluster stop
// (their leases expire) and start again; the first one back, elected,
// does not fail the other over while it is within its start-up grace,
// so the topology etcd holds is the one from before the restart.
func TestWholeClusterRestartKeepsTheTopology(t *testing.T) {
	endpoint := startEtcd(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer func() { _ = cli.Close() }()
	ctx := context.Background()
	var logs syncBuffer
	start := func(id string, port int) (*Agent, *fakeNode) {
		st, err := cluster.Open(cluster.Options{NodeID: id})
		require.NoError(t, err)
		n := &fakeNode{st: st}
		a, err := Start(Config{
			Endpoints: []string{endpoint}, Cluster: "restart", LeaseTTL: testLeaseTTL,
			Shape: cluster.Shape{Primaries: 1, Replicas: 1},
			ID:    st.View().ID, Host: "127.0.0.1", Port: port, Node: n, Replication: n,
			Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		})
		require.NoError(t, err)
		return a, n
	}
	ids := []string{strings.Repeat("a", 40), strings.Repeat("b", 40)}
	a0, n0 := start(ids[0], 7200)
	a1, n1 := start(ids[1], 7201)
	eventually(t, "a master and its replica", func() bool {
		v0, v1 := n0.st.View(), n1.st.View()
		return v0.Version() > 0 && v0.Version() == v1.Version() && len(v0.Topology.Nodes) == 2
	})
	before := n0.st.View().Version()
	require.NoError(t, a0.Close())
	require.NoError(t, a1.Close())
	eventually(t, "both registrations expired", func() bool {
		r, err := cli.Get(ctx, "/sluice/restart/nodes/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		return err == nil && r.Count == 0
	})

	// The first node back is elected and holds its decision back for the
	// other; only then does the other start.
	a0, n0 = start(ids[0], 7200)
	defer func() { _ = a0.Close() }()
	eventually(t, "the controller waits for the node it has not seen", func() bool {
		return strings.Contains(logs.String(), "controller waits for nodes of the topology to register")
	})
	a1, n1 = start(ids[1], 7201)
	defer func() { _ = a1.Close() }()
	eventually(t, "both registered again, the roles taken again", func() bool {
		r, err := cli.Get(ctx, "/sluice/restart/nodes/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		return err == nil && r.Count == 2 && n0.role() == "" && n1.role() == "127.0.0.1:7200"
	})
	r, err := cli.Get(ctx, "/sluice/restart/topology")
	require.NoError(t, err)
	require.Equal(t, before, r.Kvs[0].ModRevision, "the topology from before the restart, not a failover and a rejoin")
}

// syncBuffer is a log the test reads while agents write it.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
