package server

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sluicehq/sluice/cluster"
	"github.com/sluicehq/sluice/internal/testpki"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// TestEtcdFailoverTLSOnly: three nodes that serve TLS only (no plaintext
// port, client certificates required, --tls-replication) form one primary
// with two replicas: each announces its TLS port and the replicas follow
// over TLS. The primary is stopped; the controller asks both live
// replicas their offset with ROLE over TLS (the offsets it logs are the
// ones the replicas report, none unknown) and promotes the one with the
// highest; the other follows it.
func TestEtcdFailoverTLSOnly(t *testing.T) {
	caFile, certFile, keyFile := testpki.Write(t)
	endpoint, _ := startEtcd(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer func() { _ = cli.Close() }()
	ctx := context.Background()
	tlsOnly := func(cfg *Config) {
		u := freeURL(t)
		port, err := strconv.Atoi(u.Port())
		require.NoError(t, err)
		cfg.ListenAddr, cfg.Port, cfg.TLSPort = "", 0, port
		cfg.TLSCertFile, cfg.TLSKeyFile, cfg.TLSCACertFile, cfg.TLSAuthClients = certFile, keyFile, caFile, "yes"
		cfg.TLSReplication = true
		cfg.ClusterPrimaries, cfg.ClusterReplicas = 1, 2
	}
	primary := startEtcdNode(t, endpoint, tlsOnly)
	nodes := []*etcdNode{primary}
	eventually(t, "the first node serves every slot", func() bool { return settled(t, cli, nodes, 1, 0) })
	nodes = append(nodes, startEtcdNode(t, endpoint, tlsOnly), startEtcdNode(t, endpoint, tlsOnly))
	eventually(t, "the other two are its replicas", func() bool { return settled(t, cli, nodes, 1, 2) })
	top := etcdTopology(t, cli)
	assert.Equal(t, primary.addr, top.Node(primary.id()).Addr, "the node announces its TLS port")

	clientTLS, err := replicationTLS(primary.cfg) // a client certificate and the CA
	require.NoError(t, err)
	dial := func(n *etcdNode) *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: n.addr, TLSConfig: clientTLS, MaxRetries: -1, DisableIdentity: true})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	for _, n := range nodes {
		setClockOn(t, dial(n), 1_700_000_000*int64(time.Second))
	}
	pc := dial(primary)
	eventually(t, "the primary admits", func() bool { return pc.Do(ctx, "THROTTLE", "k", 15, 30, 60, 1).Err() == nil })
	for i := range 20 {
		require.NoError(t, pc.Do(ctx, "THROTTLE", fmt.Sprintf("k:%d", i), 15, 30, 60, 1).Err())
	}
	acked, err := pc.Do(ctx, "WAIT", 2, 10000).Int()
	require.NoError(t, err)
	require.Equal(t, 2, acked, "both replicas follow over TLS")

	// Once the primary is gone the replicas' offsets stay put until one
	// is promoted (at least a second later: the lease was renewed).
	primary.kill(t)
	offsets := map[string]int64{}
	for _, n := range nodes[1:] {
		v, err := dial(n).Do(ctx, "ROLE").Slice()
		require.NoError(t, err)
		require.Equal(t, "slave", v[0], "%s still a replica", n.addr)
		offsets[n.id()] = v[4].(int64)
	}
	require.Positive(t, offsets[nodes[1].id()])
	var heir *etcdNode
	eventually(t, "a replica promoted, the other following it", func() bool {
		if !settled(t, cli, nodes, 1, 1) {
			return false
		}
		for _, n := range nodes[1:] {
			if !n.s.state.repl.IsReplica() && n.s.state.cluster.View().Serves(cluster.Slot([]byte("k"))) {
				heir = n
				return true
			}
		}
		return false
	})
	for id, off := range offsets {
		assert.LessOrEqual(t, off, offsets[heir.id()], "the promoted replica had the highest offset (%s had %d)", id, off)
	}
	var asked string
	for _, n := range nodes[1:] {
		logs := n.logs.clusterLines()
		assert.False(t, strings.Contains(logs, "replica offset unknown"), "%s: an offset asked over TLS was not answered", n.addr)
		for _, l := range strings.Split(logs, "\n") {
			if strings.Contains(l, "cluster: replica offsets") {
				asked = l
			}
		}
	}
	require.NotEmpty(t, asked, "the controller asked the replicas their offsets")
	for id, off := range offsets {
		assert.Contains(t, asked, fmt.Sprintf("%s:%d", id, off), "the controller got the offset the replica reports")
	}
	v, err := dial(heir).Do(ctx, "THROTTLE", "k", 15, 30, 60, 1).Slice()
	require.NoError(t, err)
	assert.Equal(t, int64(14), v[2], "the promoted replica holds the primary's state")
}
