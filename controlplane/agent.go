package controlplane

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/cluster"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Node is what the agent drives on its server: the topology and the fence
// (commands.Server implements it).
type Node interface {
	// ApplyTopology sets text at version, newer versions only.
	ApplyTopology(text string, version int64) (old, cur *cluster.View, err error)
	// SetFenced refuses (on) or serves again (off) the node's slots.
	SetFenced(on bool)
}

// Replication is the node's replication role (replication.Node
// implements it).
type Replication interface {
	// ReplicaOf follows host:port; already: it did.
	ReplicaOf(host string, port int) (already bool)
	// Promote stops following; already: it was a primary.
	Promote() (already bool)
}

// Config configures an [Agent]. Endpoints, ID, Host, Port, Node and
// Replication are required.
type Config struct {
	// Endpoints are etcd's client URLs.
	Endpoints []string
	// Cluster names the cluster: its keys live under /sluice/<Cluster>/.
	// Default "sluice".
	Cluster string
	// LeaseTTL is the registration's lease; a node whose lease expires is
	// failed over. Whole seconds (etcd's unit), default 3s.
	LeaseTTL time.Duration
	// Shape is what the controller maintains (default 3 primaries, 1
	// replica each).
	Shape cluster.Shape
	// Fence makes the node refuse its slots while its lease may have
	// expired (--cluster-partition-policy fence); false serves them until
	// a newer topology says otherwise.
	Fence bool
	// FenceMargin is how long before the lease could expire the fence
	// closes, measured from the last keepalive answer: it covers the
	// keepalive's round trip and clock rate differences. Default LeaseTTL/3.
	FenceMargin time.Duration
	// ID, Host and Port are this node's id and the address clients use.
	ID   string
	Host string
	Port int
	// Node and Replication are the server's topology and role.
	Node        Node
	Replication Replication
	// Offset asks the replica at host:port its replication offset; the
	// controller asks the live replicas of a failed primary before it picks
	// one. Default: ROLE over RESP, authenticated with Username/Password,
	// over TLS with TLS.
	Offset             func(ctx context.Context, host string, port int) (int64, error)
	Username, Password string
	// TLS, when set, is how the default Offset dials the replicas (the
	// node's --tls-replication client configuration: nodes that serve TLS
	// only announce their TLS port). Nil dials plaintext.
	TLS *tls.Config
	// Now is the fence's clock. Default time.Now.
	Now func() time.Time
	// Logger receives role changes, topologies applied, elections.
	// Default slog.Default().
	Logger *slog.Logger
	// DialTimeout bounds each connection attempt to etcd. Default 2s.
	DialTimeout time.Duration
}

// Status is the agent's link, for INFO and metrics.
type Status struct {
	Leader   bool  // this node runs the controller
	LeaseOK  bool  // the lease was renewed within its TTL
	Revision int64 // the topology revision last applied, 0 before one
}

// Agent is a node's control plane: start it with [Start], stop it with
// [Agent.Close].
type Agent struct {
	cfg    Config
	log    *slog.Logger
	cli    *clientv3.Client
	prefix string
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	leader   atomic.Bool
	lastOK   atomic.Int64 // the fence clock's UnixNano at the last keepalive answer; 0: none
	ttl      atomic.Int64 // the granted TTL, nanoseconds
	revision atomic.Int64
	applyMu  sync.Mutex  // serializes applying topologies
	fenceMu  sync.Mutex  // orders a renewal's opening and the fence check's closing
	synced   atomic.Bool // the first lease and topology read are done (or, serve, given up on)
	started  time.Time   // when Start ran: the start-up grace counts from it
	seenMu   sync.Mutex
	seen     map[string]bool                  // ids seen registered since Start
	lease    atomic.Int64                     // the lease registered on, 0 before one
	applied  atomic.Pointer[cluster.Topology] // the topology last applied from etcd
	sigMu    sync.Mutex
	sig      chan struct{} // closed when a topology is applied (appliedSignal)
}

// Start connects to etcd and starts the agent's loops in the background:
// it does not wait for etcd (a node whose etcd is down serves what it
// holds, and registers once etcd answers).
func Start(cfg Config) (*Agent, error) {
	if len(cfg.Endpoints) == 0 || cfg.ID == "" || cfg.Host == "" || cfg.Port == 0 || cfg.Node == nil || cfg.Replication == nil {
		return nil, errors.New("controlplane: Endpoints, ID, Host, Port, Node and Replication are required")
	}
	if cfg.Cluster == "" {
		cfg.Cluster = "sluice"
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 3 * time.Second
	}
	if cfg.Shape.Primaries <= 0 {
		cfg.Shape.Primaries = 3
	}
	if cfg.FenceMargin <= 0 {
		cfg.FenceMargin = cfg.LeaseTTL / 3
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 2 * time.Second
	}
	if cfg.Offset == nil {
		cfg.Offset = roleOffset(cfg.Username, cfg.Password, cfg.TLS)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: cfg.Endpoints, DialTimeout: cfg.DialTimeout,
		DialKeepAliveTime: cfg.LeaseTTL, DialKeepAliveTimeout: cfg.LeaseTTL,
		Logger: discardZap(),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd %s: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	a := &Agent{
		cfg: cfg, cli: cli, prefix: "/sluice/" + cfg.Cluster + "/",
		log: cfg.Logger.With("component", "controlplane", "cluster", cfg.Cluster),
	}
	a.ttl.Store(int64(cfg.LeaseTTL))
	a.started, a.seen, a.sig = time.Now(), map[string]bool{}, make(chan struct{})
	a.ctx, a.cancel = context.WithCancel(context.Background())
	// A restarted node may hold a topology that etcd has replaced while it
	// was down: it serves none of its slots before it has read etcd's
	// (with the serve policy, at most one lease TTL: etcd may be down).
	cfg.Node.SetFenced(true)
	if !cfg.Fence {
		a.wg.Add(1)
		go a.openAfter(cfg.LeaseTTL)
	}
	a.wg.Add(3)
	go a.runMembership()
	go a.runTopology()
	go a.runSeen()
	if cfg.Fence {
		a.wg.Add(1)
		go a.runFence()
	}
	a.log.Info("cluster: driven by etcd", "endpoints", strings.Join(cfg.Endpoints, ","), "node_id", cfg.ID,
		"addr", fmt.Sprintf("%s:%d", cfg.Host, cfg.Port), "lease_ttl", cfg.LeaseTTL, "fence", cfg.Fence,
		"primaries", cfg.Shape.Primaries, "replicas", cfg.Shape.Replicas)
	return a, nil
}

// Close stops the agent: it stops renewing the lease (which expires within
// its TTL: a stopped node is failed over like a crashed one) and closes the
// connection to etcd. The node keeps the last topology it applied.
func (a *Agent) Close() error {
	a.cancel()
	a.wg.Wait()
	return a.cli.Close()
}

// Status is the agent's link now.
func (a *Agent) Status() Status {
	return Status{Leader: a.leader.Load(), LeaseOK: a.leaseOK(a.cfg.LeaseTTL), Revision: a.revision.Load()}
}

// Info writes Status as INFO's "# Cluster" lines.
func (a *Agent) Info(kv func(string, any)) {
	st := a.Status()
	kv("cluster_etcd_leader", boolInt(st.Leader))
	kv("cluster_etcd_lease_ok", boolInt(st.LeaseOK))
	kv("cluster_etcd_topology_revision", st.Revision)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// leaseOK reports whether the last keepalive answer is younger than
// window on the agent's clock.
func (a *Agent) leaseOK(window time.Duration) bool {
	last := a.lastOK.Load()
	return last != 0 && a.cfg.Now().UnixNano()-last < int64(window)
}

func (a *Agent) nodeKey(id string) string { return a.prefix + "nodes/" + id }
func (a *Agent) topologyKey() string      { return a.prefix + "topology" }

// registration is the value of nodes/<id>.
type registration struct {
	ID   string `json:"id"`
	Host string `json:"host"`
	Port int    `json:"port"`
}

// sleep waits d or until the agent stops; it reports whether to go on.
func (a *Agent) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-a.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// runMembership keeps the node registered on a lease and a candidate in
// the election, and runs the controller while it leads: a lost lease
// (etcd unreachable past the TTL) starts over with a new one.
func (a *Agent) runMembership() {
	defer a.wg.Done()
	backoff := 100 * time.Millisecond
	for a.ctx.Err() == nil {
		err := a.member()
		if a.ctx.Err() != nil {
			return
		}
		a.log.Warn("cluster: etcd membership lost; registering again", "err", err, "retry_in", backoff)
		if !a.sleep(backoff) {
			return
		}
		backoff = min(backoff*2, a.cfg.LeaseTTL)
	}
}

// member is one lease's life: grant, register, keep alive, campaign, lead.
func (a *Agent) member() error {
	ctx, cancel := context.WithCancel(a.ctx)
	defer cancel()
	stepCtx, stepCancel := context.WithTimeout(ctx, a.cfg.LeaseTTL+a.cfg.DialTimeout)
	defer stepCancel()
	granted := a.cfg.Now()
	lease, err := a.cli.Grant(stepCtx, int64(a.cfg.LeaseTTL/time.Second))
	if err != nil {
		return fmt.Errorf("grant lease: %w", err)
	}
	val, _ := json.Marshal(registration{ID: a.cfg.ID, Host: a.cfg.Host, Port: a.cfg.Port})
	if _, err := a.cli.Put(stepCtx, a.nodeKey(a.cfg.ID), string(val), clientv3.WithLease(lease.ID)); err != nil {
		return fmt.Errorf("register: %w", err)
	}
	// A new lease may follow an expired one, after which the controller may
	// have given this node's slots away: the fence opens only once the
	// topology etcd holds now is applied (the watch may lag behind).
	if err := a.syncTopology(stepCtx); err != nil {
		return fmt.Errorf("read the topology: %w", err)
	}
	a.lease.Store(int64(lease.ID))
	a.renewedAt(granted, lease.TTL)
	ka, err := a.cli.KeepAlive(ctx, lease.ID)
	if err != nil {
		return fmt.Errorf("keepalive: %w", err)
	}
	a.log.Info("cluster: registered in etcd", "lease", fmt.Sprintf("%x", lease.ID), "ttl_s", lease.TTL)
	lost := make(chan struct{})
	go func() {
		defer close(lost)
		for r := range ka {
			a.renewed(r.TTL)
		}
	}()
	sess, err := concurrency.NewSession(a.cli, concurrency.WithLease(lease.ID), concurrency.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("session: %w", err)
	}
	defer sess.Orphan() // the lease is ours: let it expire, never revoke it here
	elec := concurrency.NewElection(sess, a.prefix+"election")
	campaign := make(chan error, 1)
	go func() { campaign <- elec.Campaign(ctx, a.cfg.ID) }()
	select {
	case <-lost:
		return errors.New("lease expired")
	case err := <-campaign:
		if err != nil {
			return fmt.Errorf("campaign: %w", err)
		}
	}
	a.leader.Store(true)
	a.log.Info("cluster: elected controller", "node_id", a.cfg.ID)
	err = a.lead(ctx, elec, lost)
	a.leader.Store(false)
	a.log.Warn("cluster: no longer the controller", "node_id", a.cfg.ID, "err", err)
	return err
}

// renewed records a keepalive answer at the fence clock.
func (a *Agent) renewed(ttlSeconds int64) { a.renewedAt(a.cfg.Now(), ttlSeconds) }

// renewedAt records that the lease was renewed (or granted) no earlier
// than at, and opens the fence.
func (a *Agent) renewedAt(at time.Time, ttlSeconds int64) {
	a.fenceMu.Lock()
	defer a.fenceMu.Unlock()
	a.lastOK.Store(at.UnixNano())
	if ttlSeconds > 0 {
		a.ttl.Store(ttlSeconds * int64(time.Second))
	}
	if first := !a.synced.Swap(true); first || a.cfg.Fence {
		a.cfg.Node.SetFenced(false)
	}
}

// openAfter opens the start-up fence of the serve policy after d if etcd
// has not answered by then.
func (a *Agent) openAfter(d time.Duration) {
	defer a.wg.Done()
	if !a.sleep(d) {
		return
	}
	a.fenceMu.Lock()
	defer a.fenceMu.Unlock()
	if !a.synced.Swap(true) {
		a.log.Warn("cluster: etcd has not answered within the lease TTL; serving the kept topology (--cluster-partition-policy serve)")
		a.cfg.Node.SetFenced(false)
	}
}

// runFence closes the fence once the last keepalive answer is older than
// the granted TTL minus the margin: from then on the lease may have
// expired and another node may serve this node's slots.
func (a *Agent) runFence() {
	defer a.wg.Done()
	t := time.NewTicker(min(a.cfg.LeaseTTL/10, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-t.C:
			a.fenceMu.Lock()
			if !a.leaseOK(time.Duration(a.ttl.Load()) - a.cfg.FenceMargin) {
				a.cfg.Node.SetFenced(true)
			}
			a.fenceMu.Unlock()
		}
	}
}
