package server

import (
	"log/slog"

	"github.com/sluicehq/sluice/clock"
	"github.com/sluicehq/sluice/commands"
	"github.com/sluicehq/sluice/keyspace"
	"github.com/sluicehq/sluice/replication"
)

// state is what the server serves: the keyspace and its clock, their
// durable copy, their copies on replicas, and the command server on top.
// This file alone knows how they are wired together.
type state struct {
	keys  *keyspace.Keyspace
	clock *clock.Settable
	dur   *durability // nil in memory
	repl  *replication.Node
	cmds  *commands.Server
}

// newState opens the data directory when one is set, builds the keyspace
// emitting its changes to it and to the replication backlog (one ordered
// stream, two consumers), recovers what the directory holds (every kind of
// state, in one pass), and puts a command server on top: cc carries the
// server's other fields (settings, users, network counters), newState adds
// the state. Replication starts with startReplication.
func newState(cfg Config, cc commands.Config, log *slog.Logger) (*state, error) {
	dur, err := openDurability(cfg, log)
	if err != nil {
		return nil, err
	}
	var store keyspace.Journal // nil in memory, not a typed nil
	if dur != nil {
		store, cc.Persistence = dur.store, storeView{dur.store}
	}
	backlog := replication.NewBacklog(int64(cfg.ReplBacklogSize), int64(cfg.ReplBufferLimit))
	st := &state{keys: keyspace.New(cfg.Shards, keyspace.Tee(store, backlog)), clock: clock.NewSettable(clock.NewSystem()), dur: dur}
	now := st.clock.Now()
	if err := dur.load(st.keys, now); err != nil {
		_ = dur.close()
		return nil, err
	}
	host, port, _ := cfg.replicaOf() // validated
	tc, err := replicationTLS(cfg)
	if err != nil {
		_ = dur.close()
		return nil, err
	}
	st.repl = replication.New(replication.Config{
		Keys: st.keys, Backlog: backlog, Now: st.clock.Now, Logger: log, ListenPort: cfg.Port,
		MasterUser: cfg.MasterUser, MasterAuth: cfg.MasterAuth, Timeout: cfg.ReplTimeout,
		PrimaryHost: host, PrimaryPort: port,
		MinReplicas: cfg.MinReplicasToWrite, MinReplicasMaxLag: cfg.MinReplicasMaxLag, TLS: tc,
	})
	cc.Keys, cc.Clock, cc.Replication = st.keys, st.clock, st.repl
	st.cmds = commands.NewServer(cc)
	return st, nil
}

// startReplication starts the replication heartbeat and, with --replicaof,
// follows the primary; port is the one a replica announces.
func (st *state) startReplication(port int) {
	st.repl.SetListenPort(port)
	st.repl.Start()
}

// sweepStep reclaims a slice of the expired state and samples the Go
// heap for --maxmemory; the sweeper calls it every Config.SweepInterval.
func (st *state) sweepStep() {
	st.keys.SweepStep(st.clock.Now())
	st.cmds.SampleMemory()
}

// keyCount counts the keys held, for the log.
func (st *state) keyCount() int { return st.keys.Len() }

// shards is the keyspace's shard count, for the log.
func (st *state) shards() int { return st.keys.Shards() }

// close stops replication (nothing more is applied or streamed) and closes
// the durable copy (see durability.close); call it once the network and the
// sweeper have stopped.
func (st *state) close() error {
	st.repl.Close()
	return st.dur.close()
}
