package server

import (
	"fmt"
	"log/slog"

	"github.com/sluicehq/sluice/clock"
	"github.com/sluicehq/sluice/cluster"
	"github.com/sluicehq/sluice/commands"
	"github.com/sluicehq/sluice/keyspace"
)

// state is what the server serves: the keyspace and its clock, their
// durable copy, and the command server on top. This file alone knows how
// they are wired together.
type state struct {
	keys  *keyspace.Keyspace
	clock *clock.Settable
	dur   *durability // nil in memory
	cmds  *commands.Server
	// cluster is this node's cluster state; nil when cluster mode is off.
	cluster *cluster.State
}

// newState opens the data directory when one is set, builds the keyspace
// emitting its changes to it, recovers what it holds (every kind of state,
// in one pass), and puts a command server on top: cc carries the server's
// other fields (settings, users, network counters), newState adds the
// state.
func newState(cfg Config, cc commands.Config, log *slog.Logger) (*state, error) {
	dur, err := openDurability(cfg, log)
	if err != nil {
		return nil, err
	}
	var journal keyspace.Journal // nil in memory, not a typed nil
	if dur != nil {
		journal, cc.Persistence = dur.store, storeView{dur.store}
	}
	st := &state{keys: keyspace.New(cfg.Shards, journal), clock: clock.NewSettable(clock.NewSystem()), dur: dur}
	now := st.clock.Now()
	if err := dur.load(st.keys, now); err != nil {
		_ = dur.close()
		return nil, err
	}
	cc.Keys, cc.Clock = st.keys, st.clock
	if cfg.ClusterEnabled {
		// After the data directory is open: the file joins Pebble's.
		if cc.Cluster, err = openCluster(cfg, log); err != nil {
			_ = dur.close()
			return nil, err
		}
	}
	st.cluster = cc.Cluster
	st.cmds = commands.NewServer(cc)
	return st, nil
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

// close closes the durable copy (see durability.close); call it once the
// network and the sweeper have stopped.
func (st *state) close() error { return st.dur.close() }
