package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sluicehq/sluice/cluster"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// testLeaseTTL is the tests' lease: short, yet twice etcd's client
// keepalive tick (500 ms) beyond a one-second lease, which a loaded 2-core
// machine under -race let expire while its node was alive.
const testLeaseTTL = 2 * time.Second

// startEtcd runs a one-member etcd on loopback (random ports, a temporary
// directory) with short ticks, so that one-second leases are allowed
// (etcd's shortest lease is 1.5 election timeouts). It returns the client
// URL; t's cleanup stops it unless stop was called.
func startEtcd(t *testing.T) (endpoint string, stop func()) {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Name = "test"
	cfg.Dir = t.TempDir()
	cfg.TickMs, cfg.ElectionMs = 50, 500
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	client, peer := freeURL(t), freeURL(t)
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = "test=" + peer.String()
	e, err := embed.StartEtcd(cfg)
	require.NoError(t, err)
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		e.Close()
		t.Fatal("embedded etcd not ready within 30 s")
	}
	var once sync.Once
	stop = func() { once.Do(e.Close) }
	t.Cleanup(stop)
	return client.String(), stop
}

func freeURL(t *testing.T) url.URL {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return url.URL{Scheme: "http", Host: addr}
}

// proxy forwards a node's etcd connections, so that a test can cut one
// node off from etcd (a partition) while it keeps serving clients.
type proxy struct {
	ln     net.Listener
	target string
	cut    atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{ln: ln, target: target}
	go p.accept()
	t.Cleanup(func() { _ = ln.Close(); p.partition() })
	return p
}

func (p *proxy) url() string { return "http://" + p.ln.Addr().String() }

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.cut.Load() {
			_ = c.Close()
			continue
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(u, c); _ = u.Close() }()
		go func() { _, _ = io.Copy(c, u); _ = c.Close() }()
	}
}

// heal lets connections through again.
func (p *proxy) heal() { p.cut.Store(false) }

// partition closes every connection and refuses new ones.
func (p *proxy) partition() {
	p.cut.Store(true)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// lockedBuffer keeps a node's log for a failing test to show.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// clusterLines is the log's lines about the cluster and replication.
func (b *lockedBuffer) clusterLines() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, l := range strings.Split(b.buf.String(), "\n") {
		if strings.Contains(l, "cluster") || strings.Contains(l, "replication") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// etcdNode is one node of an etcd-driven test cluster.
type etcdNode struct {
	s     *Server
	addr  string
	proxy *proxy
	down  bool
	cfg   Config
	logs  *lockedBuffer
}

func (n *etcdNode) id() string { return n.s.state.cluster.View().ID }

// startEtcdNode starts a node in cluster mode driven by the etcd at
// endpoint, through its own proxy; edit may change its configuration.
func startEtcdNode(t *testing.T, endpoint string, edit func(*Config), fenceClock ...func() time.Time) *etcdNode {
	t.Helper()
	p := startProxy(t, endpoint[len("http://"):])
	cfg := testConfig()
	cfg.ClusterEnabled, cfg.EnableDebug = true, true
	cfg.ClusterEtcd, cfg.ClusterLeaseTTL, cfg.ClusterAnnounceIP = p.url(), testLeaseTTL, "127.0.0.1"
	cfg.ClusterName = "test"
	if edit != nil {
		edit(&cfg)
	}
	logs := &lockedBuffer{}
	s, err := New(cfg, slog.New(slog.NewTextHandler(logs, nil)))
	require.NoError(t, err)
	t.Cleanup(func() {
		assert.NoError(t, s.Shutdown(context.Background()))
		if t.Failed() {
			t.Logf("logs of the node at %s:\n%s", s.Addr(), logs.clusterLines())
		}
	})
	if len(fenceClock) > 0 {
		s.fenceClock = fenceClock[0]
	}
	go func() { _ = s.Serve() }()
	return &etcdNode{s: s, addr: s.Addr().String(), proxy: p, cfg: cfg, logs: logs}
}

// kill stops a node as a crash does, for the cluster: it leaves without
// revoking its lease, which expires within the TTL.
func (n *etcdNode) kill(t *testing.T) {
	t.Helper()
	n.down = true
	n.proxy.partition() // no resignation, no revocation reaches etcd
	require.NoError(t, n.s.Shutdown(context.Background()))
}

// eventually polls cond every 20 ms until it holds, failing with msg after
// 30 s; it logs how long it waited.
func eventually(t *testing.T, msg string, cond func() bool) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 30 s: %s", msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%.2f s: %s", time.Since(start).Seconds(), msg)
}

// etcdTopology reads the topology etcd holds for the test cluster.
func etcdTopology(t *testing.T, cli *clientv3.Client) *cluster.Topology {
	t.Helper()
	r, err := cli.Get(context.Background(), "/sluice/test/topology")
	require.NoError(t, err)
	if len(r.Kvs) == 0 {
		return nil
	}
	top, err := cluster.Parse(string(r.Kvs[0].Value), r.Kvs[0].ModRevision)
	require.NoError(t, err)
	return top
}

// settled reports whether etcd's topology has the shape (primaries with
// replicas each), lists exactly the live nodes, and every live node has
// applied it and taken its role.
func settled(t *testing.T, cli *clientv3.Client, nodes []*etcdNode, primaries, replicas int) bool {
	top := etcdTopology(t, cli)
	if top == nil {
		return false
	}
	live := 0
	for _, n := range nodes {
		if n.down {
			continue
		}
		live++
		self := top.Node(n.id())
		if self == nil || n.s.state.cluster.View().Version() != top.Version {
			return false
		}
		if n.s.state.repl.IsReplica() != (self.Role == cluster.Replica) {
			return false
		}
	}
	if len(top.Nodes) != live {
		return false
	}
	masters := 0
	for _, m := range top.Nodes {
		if m.Role == cluster.Master {
			masters++
			if len(top.Replicas(m.ID)) != replicas {
				return false
			}
		}
	}
	return masters == primaries
}

// nodeAt finds the test node at addr.
func nodeAt(nodes []*etcdNode, addr string) *etcdNode {
	for _, n := range nodes {
		if n.addr == addr {
			return n
		}
	}
	return nil
}

// TestEtcdFailover: six nodes driven by an embedded etcd form three
// primaries with a replica each and cover every slot; go-redis's
// ClusterClient runs the first half of the exact-reply sequence, the
// primary of its key is stopped (its lease left to expire), its replica is
// promoted and the client finishes the sequence with exact replies (the
// state was replicated); the controller is stopped and another node is
// elected; etcd is stopped and every node keeps serving.
func TestEtcdFailover(t *testing.T) {
	endpoint, stopEtcd := startEtcd(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer func() { _ = cli.Close() }()
	var nodes []*etcdNode
	for range 6 {
		nodes = append(nodes, startEtcdNode(t, endpoint, func(cfg *Config) { cfg.DataDir = t.TempDir() }))
	}
	eventually(t, "3 primaries with a replica each, applied by every node", func() bool { return settled(t, cli, nodes, 3, 1) })
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.addr)
	}
	ctx := context.Background()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, MaxRedirects: 8, ClusterStateReloadInterval: 200 * time.Millisecond})
	defer func() { _ = cc.Close() }()
	slots, err := cc.ClusterShards(ctx).Result()
	require.NoError(t, err)
	require.Len(t, slots, 3)

	seq := loadSequence(t)
	half := len(seq.Steps) / 2
	seq.run(t, cc, 0, half)

	// Stop the primary of user123, once its replica has every change.
	top := etcdTopology(t, cli)
	primary := nodeAt(nodes, top.Owner(cluster.Slot([]byte("user123"))).Addr)
	replica := nodeAt(nodes, top.Replicas(primary.id())[0].Addr)
	pc := redis.NewClient(&redis.Options{Addr: primary.addr})
	acked, err := pc.Do(ctx, "WAIT", 1, 10000).Int()
	_ = pc.Close()
	require.NoError(t, err)
	require.Equal(t, 1, acked, "the replica acknowledged the first half")
	killedAt := time.Now()
	primary.kill(t)
	eventually(t, "the replica promoted and the cluster whole again", func() bool {
		return !replica.s.state.repl.IsReplica() && replica.s.state.cluster.View().Serves(cluster.Slot([]byte("user123")))
	})
	t.Logf("replica promoted %.2f s after its primary stopped (lease TTL %s)", time.Since(killedAt).Seconds(), testLeaseTTL)
	eventually(t, "the client reaches the new primary", func() bool {
		return cc.Do(ctx, "PING").Err() == nil && cc.Do(ctx, "EXISTS", "user123").Err() == nil
	})
	seq.run(t, cc, half, len(seq.Steps))

	// The first stopped primary restarts on its data directory: same id,
	// back as a replica.
	back := startEtcdNode(t, endpoint, func(cfg *Config) { cfg.DataDir = primary.cfg.DataDir })
	assert.Equal(t, primary.id(), back.id(), "the id is kept in the data directory")
	nodes = append(nodes, back)
	eventually(t, "the restarted primary rejoins as a replica", func() bool {
		top := etcdTopology(t, cli)
		self := top.Node(back.id())
		return settledLive(nodes, top) && self != nil && self.Role == cluster.Replica && back.s.state.repl.IsReplica()
	})
	bc := redis.NewClient(&redis.Options{Addr: back.addr})
	defer func() { _ = bc.Close() }()
	assert.EqualError(t, bc.Do(ctx, "CLUSTERX", "SETNODES", etcdTopology(t, cli).Text(), 1<<40).Err(),
		"ERR the topology is managed by etcd (--cluster-etcd): add FORCE to set it anyway (the controller replaces it with its next change)")
	assert.EqualError(t, bc.Do(ctx, "CLUSTERX", "SETNODEID", strings.Repeat("ab", 20)).Err(),
		"ERR the topology is managed by etcd (--cluster-etcd): this node's id is kept by it")
	assert.EqualError(t, bc.Do(ctx, "REPLICAOF", "NO", "ONE").Err(),
		"ERR REPLICAOF not allowed while the topology is managed by etcd (--cluster-etcd): the controller sets each node's role")
	assert.EqualError(t, bc.Do(ctx, "FAILOVER").Err(), "ERR FAILOVER is not valid when server is a replica.")
	info, err := bc.Info(ctx, "cluster").Result()
	require.NoError(t, err)
	assert.Contains(t, info, "cluster_etcd_lease_ok:1")
	assert.Contains(t, info, fmt.Sprintf("cluster_etcd_topology_revision:%d", etcdTopology(t, cli).Version))

	// Stop the controller (the first candidate in etcd's election):
	// another node is elected and keeps deciding.
	controller := func() *etcdNode {
		r, err := cli.Get(ctx, "/sluice/test/election/", clientv3.WithFirstCreate()...)
		require.NoError(t, err)
		for _, n := range nodes {
			if len(r.Kvs) == 1 && string(r.Kvs[0].Value) == n.id() && !n.down && n.s.state.agent.Load().Status().Leader {
				return n
			}
		}
		return nil
	}
	var leader *etcdNode
	eventually(t, "a controller", func() bool { leader = controller(); return leader != nil })
	leader.kill(t)
	eventually(t, "another controller elected", func() bool { return controller() != nil })
	eventually(t, "the cluster without the stopped controller, every slot covered", func() bool {
		top := etcdTopology(t, cli)
		return top.Node(leader.id()) == nil && settledLive(nodes, top)
	})

	// Stop etcd: once no lease can be renewed, every node keeps serving.
	// (Connections cut first: etcd's graceful stop would wait seconds for
	// the watch streams.)
	for _, n := range nodes {
		n.proxy.partition()
	}
	_ = cli.Close()
	stopEtcd()
	eventually(t, "every lease lapsed", func() bool {
		for _, n := range nodes {
			if !n.down && n.s.state.agent.Load().Status().LeaseOK {
				return false
			}
		}
		return true
	})
	for i := range 50 {
		k := fmt.Sprintf("after-etcd:%d", i)
		v, err := cc.Do(ctx, "THROTTLE", k, 15, 30, 60, 1).Result()
		require.NoError(t, err, k)
		assert.Equal(t, []any{int64(0), int64(16), int64(15), int64(-1), int64(2)}, v, k)
	}
}

// settledLive reports whether every live node applied top and lists in it.
func settledLive(nodes []*etcdNode, top *cluster.Topology) bool {
	for _, n := range nodes {
		if n.down {
			continue
		}
		if top.Node(n.id()) == nil || n.s.state.cluster.View().Version() != top.Version {
			return false
		}
	}
	return true
}

// fakeClock is the fence's clock in tests: the system clock plus an offset
// the test moves forward.
type fakeClock struct{ offset atomic.Int64 }

func (c *fakeClock) now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// TestEtcdFenceZombie: a primary with --cluster-partition-policy fence cut
// off from etcd refuses its slots (-CLUSTERDOWN) once its fence clock says
// its lease may have expired — while etcd still holds its registration and
// its replica is still a replica, so before the new primary can admit —
// and keeps refusing while the replica, promoted, admits. Healed, it
// rejoins as a replica of the new primary.
func TestEtcdFenceZombie(t *testing.T) {
	endpoint, _ := startEtcd(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer func() { _ = cli.Close() }()
	ctx := context.Background()
	clock := &fakeClock{}
	const ttl = testLeaseTTL
	shape := func(cfg *Config) {
		cfg.ClusterPrimaries, cfg.ClusterReplicas, cfg.ClusterLeaseTTL, cfg.ClusterPartitionPolicy = 1, 1, ttl, "fence"
	}
	zombie := startEtcdNode(t, endpoint, shape, clock.now)
	nodes := []*etcdNode{zombie}
	eventually(t, "the first node serves every slot", func() bool { return settled(t, cli, nodes, 1, 0) })
	heir := startEtcdNode(t, endpoint, shape)
	nodes = append(nodes, heir)
	eventually(t, "the second node is its replica", func() bool { return settled(t, cli, nodes, 1, 1) })

	zc := redis.NewClient(&redis.Options{Addr: zombie.addr, MaxRetries: -1})
	defer func() { _ = zc.Close() }()
	eventually(t, "the primary admits (its fence open)", func() bool { return zc.Do(ctx, "THROTTLE", "k", 15, 30, 60, 1).Err() == nil })
	acked, err := zc.Do(ctx, "WAIT", 1, 10000).Int()
	require.NoError(t, err)
	require.Equal(t, 1, acked)

	zombie.proxy.partition()
	clock.offset.Store(int64(ttl)) // the fence clock says the lease may have expired
	eventually(t, "the zombie refuses", func() bool {
		err := zc.Do(ctx, "THROTTLE", "k", 15, 30, 60, 1).Err()
		return err != nil && strings.HasPrefix(err.Error(), "CLUSTERDOWN ")
	})
	r, err := cli.Get(ctx, "/sluice/test/nodes/"+zombie.id())
	require.NoError(t, err)
	assert.Len(t, r.Kvs, 1, "the zombie refuses while etcd still holds its registration")
	assert.True(t, heir.s.state.repl.IsReplica(), "the zombie refuses before its replica is promoted")
	assert.Contains(t, zc.Do(ctx, "INFO", "cluster").String(), "cluster_fenced:1")

	hc := redis.NewClient(&redis.Options{Addr: heir.addr, MaxRetries: -1})
	defer func() { _ = hc.Close() }()
	eventually(t, "the replica, promoted, admits", func() bool { return hc.Do(ctx, "THROTTLE", "k", 15, 30, 60, 1).Err() == nil })
	err = zc.Do(ctx, "THROTTLE", "k", 15, 30, 60, 1).Err()
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "CLUSTERDOWN "), "the zombie still refuses: %v", err)

	zombie.proxy.heal()
	eventually(t, "the zombie, healed, rejoins as a replica of the new primary", func() bool { return settled(t, cli, nodes, 1, 1) })
	top := etcdTopology(t, cli)
	assert.Equal(t, heir.id(), top.Node(zombie.id()).MasterID)
	err = zc.Do(ctx, "THROTTLE", "k", 15, 30, 60, 1).Err()
	require.Error(t, err)
	assert.Equal(t, "MOVED "+fmt.Sprint(cluster.Slot([]byte("k")))+" "+heir.addr, err.Error())
}

// String is the whole log.
func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
