package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/clock"
	"github.com/sluicehq/sluice/cluster"
	"github.com/sluicehq/sluice/commands"
	"github.com/sluicehq/sluice/controlplane"
	"github.com/sluicehq/sluice/keyspace"
	"github.com/sluicehq/sluice/replication"
)

// state is what the server serves: the keyspace and its clock, their
// durable copy, their copies on replicas, and the command server on top.
// This file alone knows how they are wired together.
type state struct {
	keys  *keyspace.Keyspace
	clock *clock.Settable
	repl  *replication.Node
	cmds  *commands.Server
	// dur is the data directory once recovery opened and loaded it (see
	// recovery.go); nil until then, and always without Config.DataDir.
	dur atomic.Pointer[durability]
	// cluster is this node's cluster state; nil when cluster mode is off.
	cluster *cluster.State
	// agent is the etcd control plane once started (--cluster-etcd); nil
	// before and without.
	agent atomic.Pointer[controlplane.Agent]
	// replTLS is how this node dials other nodes (--tls-replication): its
	// primary, a slot's destination, and, as controller, the replicas it
	// asks for their offset. Nil dials plaintext.
	replTLS *tls.Config
}

// newState builds the keyspace and puts a command server on top: cc
// carries the server's other fields (settings, users, network counters),
// newState adds the state. With a data directory the keyspace emits its
// changes to it and the commands see it through storeView, both as soon as
// recovery has opened it (until then every command that could change state
// answers -LOADING). The keyspace also emits every change to the
// replication backlog (one ordered stream, two consumers); replTLS is how a
// replica dials its primary. Replication starts with startReplication.
// With cluster mode on, it opens the node's cluster state (kept in the data
// directory, beside the store's files).
func newState(cfg Config, cc commands.Config, replTLS *tls.Config) (*state, error) {
	st := &state{clock: clock.NewSettable(clock.NewSystem()), replTLS: replTLS}
	var journal keyspace.Journal // nil in memory, not a typed nil
	if cfg.DataDir != "" {
		journal, cc.Persistence = journalRef{st}, storeView{st: st, cfg: cfg}
	}
	backlog := replication.NewBacklog(int64(cfg.ReplBacklogSize), int64(cfg.ReplBufferLimit))
	var stream keyspace.Journal = backlog
	if cfg.ClusterEnabled {
		// CLUSTERX MIGRATE ships what changed while it copied a slot (the
		// tail passes every change on to the backlog); it connects to the
		// destination as a replica to its primary.
		cc.SlotTail = commands.NewSlotTail(backlog)
		cc.MigrateUser, cc.MigratePassword, cc.MigrateTLS = cfg.MasterUser, cfg.MasterAuth, replTLS
		stream = cc.SlotTail
	}
	st.keys = keyspace.New(cfg.Shards, keyspace.Tee(journal, stream))
	host, port, _ := cfg.replicaOf() // validated
	st.repl = replication.New(replication.Config{
		Keys: st.keys, Backlog: backlog, Now: st.clock.Now, Logger: cc.Logger, ListenPort: cfg.Port,
		AnnounceIP: cfg.ReplicaAnnounceIP, AnnouncePort: cfg.ReplicaAnnouncePort,
		MasterUser: cfg.MasterUser, MasterAuth: cfg.MasterAuth, Timeout: cfg.ReplTimeout, TLS: replTLS,
		PrimaryHost: host, PrimaryPort: port,
		MinReplicas: cfg.MinReplicasToWrite, MinReplicasMaxLag: cfg.MinReplicasMaxLag,
		AckReplicas: cfg.MinReplicasAck, AckTimeout: cfg.MinReplicasAckTimeout,
		Checkpoint: st.checkpoint,
	})
	cc.Keys, cc.Clock, cc.Replication = st.keys, st.clock, st.repl
	if cfg.ClusterEnabled {
		var err error
		if cc.Cluster, err = openCluster(cfg, cc.Logger); err != nil {
			return nil, err
		}
	}
	st.cluster = cc.Cluster
	if cfg.ClusterEtcd != "" {
		cc.ClusterManager = "etcd (--cluster-etcd)"
		cc.ClusterHandover = agentHandover{st}
		cc.ClusterInfo = func(kv func(string, any)) {
			if a := st.agent.Load(); a != nil {
				a.Info(kv)
			}
		}
	}
	st.cmds = commands.NewServer(cc)
	// FAILOVER and REPLICAOF wait for the writes in flight (the etcd
	// agent's role changes go through the same ReplicaOf).
	st.repl.SetQuiesce(st.cmds.AwaitWrites)
	return st, nil
}

// startReplication starts the replication heartbeat and, with --replicaof,
// follows the primary; port is the one a replica announces. Call it once
// the state is recovered: a replica's resync must not mix with recovery.
//
// A replica restarted on its data directory resumes from the stream the
// directory holds (see checkpoint); so does a primary after a clean stop
// (see keepStream).
func (st *state) startReplication(port int) {
	st.repl.SetListenPort(port)
	if replid, offset, clean, ok := st.dur.Load().replPosition(); ok {
		st.repl.Resume(replid, offset, clean)
	}
	st.repl.Start()
}

// replAux is the auxiliary field of the data directory that names the
// replication stream the data holds, "<replid> <offset>", as Redis's RDB
// keeps repl-id and repl-offset: one field, so that the two never come
// from different writes. A replica's checkpoints say the data holds the
// stream up to offset at least; a primary's clean stop appends
// replCleanMark: exactly up to offset.
const replAux = "repl"

// replCleanMark is the third word of replAux when a primary stopped
// cleanly (see keepStream). A build that predates it reads no offset in
// "<offset> clean" and takes a full resync: safe.
const replCleanMark = "clean"

// checkpoint journals which replication stream the keyspace holds, after
// the changes it covers (replication.Config.Checkpoint): the offset on
// disk never claims a change the data directory lacks.
func (st *state) checkpoint(replid string, offset int64) {
	if d := st.dur.Load(); d != nil {
		d.store.RecordAux(replAux, []byte(replid+" "+strconv.FormatInt(offset, 10)))
	}
}

// keepStream journals, as a primary stops cleanly, which replication
// stream its data is, exactly: its ID and the stream's end offset, marked
// clean, after every change, so that its replicas continue after the
// restart (see replication.Node.Resume). Call it once replication has
// stopped, before the data directory closes. It runs under every shard
// lock (keyspace.Hold), so no change falls between the offset read and
// the field: the data holds every change up to the offset and none after.
// Only a clean stop writes it, and a restart withdraws it (Node.Start)
// before any change of its own: after a crash the journal may hold more
// changes than the replicas received or fewer (its tail not yet written),
// and no offset names what it holds, so a restarted primary takes a new ID
// and its replicas a full resync.
func (st *state) keepStream() {
	d := st.dur.Load()
	if d == nil {
		return
	}
	st.keys.Hold(func() {
		replid, offset, ok := st.repl.Stopped()
		if !ok {
			return
		}
		d.store.RecordAux(replAux, []byte(replid+" "+strconv.FormatInt(offset, 10)+" "+replCleanMark))
		d.log.Info("replication: kept the stream's position for a restart",
			slog.String("replid", replid), slog.Int64("offset", offset))
	})
}

// replPosition reads the replication stream the data directory holds, if
// it names one; clean says it holds that stream exactly up to offset (a
// primary's clean stop), not possibly more.
func (d *durability) replPosition() (replid string, offset int64, clean, ok bool) {
	if d == nil {
		return "", 0, false, false
	}
	v, ok, err := d.store.Aux(replAux)
	if err != nil || !ok {
		if err != nil {
			d.log.Warn("replication: cannot read the stream position kept in the data directory; a replica takes a full resync",
				slog.Any("err", err))
		}
		return "", 0, false, false
	}
	f := strings.Fields(string(v))
	if len(f) < 2 || len(f) > 3 || f[0] == "?" {
		return "", 0, false, false
	}
	offset, perr := strconv.ParseInt(f[1], 10, 64)
	if perr != nil || offset < 0 || (len(f) == 3 && f[2] != replCleanMark) {
		return "", 0, false, false
	}
	return f[0], offset, len(f) == 3, true
}

// startControlPlane starts the etcd agent with --cluster-etcd (once the
// state is recovered and replication started: the agent sets the
// replication role). Starting does not wait for etcd. A nil fenceClock is
// the system clock.
func (st *state) startControlPlane(cfg Config, log *slog.Logger, fenceClock func() time.Time) error {
	if cfg.ClusterEtcd == "" {
		return nil
	}
	host, err := cfg.clusterHost()
	if err != nil {
		return err
	}
	a, err := controlplane.Start(controlplane.Config{
		Endpoints: cfg.etcdEndpoints(), Cluster: cfg.ClusterName, LeaseTTL: cfg.ClusterLeaseTTL,
		Shape: cluster.Shape{Primaries: cfg.ClusterPrimaries, Replicas: cfg.ClusterReplicas},
		Fence: cfg.ClusterPartitionPolicy == "fence",
		ID:    st.cluster.View().ID, Host: host, Port: st.cluster.Announced().Port,
		Node: st.cmds, Replication: st.repl, Username: cfg.MasterUser, Password: cfg.MasterAuth, TLS: st.replTLS,
		Now: fenceClock, Logger: log,
	})
	if err != nil {
		return fmt.Errorf("--cluster-etcd: %w", err)
	}
	st.agent.Store(a)
	return nil
}

// etcdLink is the etcd agent's status, for the metrics; ok is false
// without one.
func (st *state) etcdLink() (controlplane.Status, bool) {
	if a := st.agent.Load(); a != nil {
		return a.Status(), true
	}
	return controlplane.Status{}, false
}

// agentHandover lets FAILOVER run under etcd: the agent, once started,
// checks the target and asks the controller for the flip.
type agentHandover struct{ st *state }

var errNoAgent = errors.New("FAILOVER: the etcd control plane has not started yet")

// Check implements replication.Handover.
func (h agentHandover) Check(host string, port int) error {
	if a := h.st.agent.Load(); a != nil {
		return a.Check(host, port)
	}
	return errNoAgent
}

// Flip implements replication.Handover.
func (h agentHandover) Flip(host string, port int, deadline time.Time, abort <-chan struct{}) error {
	if a := h.st.agent.Load(); a != nil {
		return a.Flip(host, port, deadline, abort)
	}
	return errNoAgent
}

// journalRef is the keyspace's Journal with a data directory: the store,
// once recovery has opened it. No change is recorded before (commands that
// change state answer -LOADING and the sweep has not started).
type journalRef struct{ st *state }

// Record implements keyspace.Journal.
func (j journalRef) Record(c keyspace.Change) {
	if d := j.st.dur.Load(); d != nil {
		d.store.Record(c)
	}
}

// openCluster opens this node's cluster state, kept in the data directory
// when there is one, and logs the node's id and topology version.
func openCluster(cfg Config, log *slog.Logger) (*cluster.State, error) {
	st, err := cluster.Open(cluster.Options{Dir: cfg.DataDir, NodeID: cfg.ClusterNodeID, Announce: cluster.Announce{
		IP: cfg.ClusterAnnounceIP, Port: cfg.ClusterAnnouncePort, Hostname: cfg.ClusterAnnounceHostname}})
	if err != nil {
		return nil, fmt.Errorf("--cluster-enabled: %w", err)
	}
	v := st.View()
	log.Info("cluster mode", slog.String("node_id", v.ID), slog.Int64("topology_version", v.Version()),
		slog.Bool("kept", cfg.DataDir != ""))
	return st, nil
}

// sweepStep reclaims a slice of the expired state, drops a slice of the
// keys of slots a cluster node lost, and samples the Go heap for
// --maxmemory; the sweeper calls it every Config.SweepInterval.
func (st *state) sweepStep() {
	st.keys.SweepStep(st.clock.Now())
	st.cmds.DropStep()
	st.cmds.SampleMemory()
}

// keyCount counts the keys held, for the log.
func (st *state) keyCount() int { return st.keys.Len() }

// shards is the keyspace's shard count, for the log.
func (st *state) shards() int { return st.keys.Shards() }

// close stops replication (nothing more is applied or streamed) and closes
// the durable copy (see durability.close); call it once the network, the
// sweeper and recovery have stopped.
func (st *state) close() error {
	if a := st.agent.Load(); a != nil {
		_ = a.Close()
	}
	st.repl.Close()
	st.keepStream()
	return st.dur.Load().close()
}
