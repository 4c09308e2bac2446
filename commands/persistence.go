package commands

import (
	"errors"
)

// Persistence is the durable copy of the keyspace as the handlers see it;
// package server adapts package persistence's Store to it. The keyspace
// hands it every change by itself (the store is the keyspace's Journal);
// handlers only wait, before replying, when the durability mode promises
// replies that a crash cannot contradict.
type Persistence interface {
	// Wait returns once every change recorded before the call is as durable
	// as the mode promises replies can rely on (fsync-always: synced; other
	// modes return at once), or the error that makes that impossible.
	Wait() error
	// RepliesWait reports whether Wait can block (fsync always): in the
	// other modes replies never wait, so no barrier is set for them.
	RepliesWait() bool
	// Info lists the fields of INFO's persistence section.
	Info() []Setting
	// Recorded counts the changes recorded so far: a command that moved it
	// made a change its reply must not outrun (see Server.run).
	Recorded() uint64
}

// ReplicaAcks is the replication side of replies that wait: package
// replication's Node implements it. A Replication that also implements
// it, with AckReplicas above 0, makes every reply of a command that
// recorded a change wait for AwaitAcks, as fsync always makes it wait
// for the sync.
type ReplicaAcks interface {
	// AckReplicas is how many replicas must acknowledge (0: none).
	AckReplicas() int
	// StreamOffset is the replication stream's end: a command that moved
	// it recorded a change.
	StreamOffset() int64
	// AwaitAcks returns once AckReplicas replicas acknowledged every change
	// recorded before the call, or an error after its timeout.
	AwaitAcks() error
}

// waitDurableFn is the barrier a command that recorded a change sets
// with fsync always, bound once at NewServer.
func (s *Server) waitDurableFn() error {
	if err := s.durable.Wait(); err != nil {
		return errors.New(errNotDurable(err))
	}
	return nil
}

// awaitReplies is the barrier of a state-changing command that moved the
// replication stream with --min-replicas-ack: the sync first (fsync
// always), then the replicas' acknowledgements.
func (s *Server) awaitReplies() error {
	if s.durable != nil {
		if err := s.waitDurableFn(); err != nil {
			return err
		}
	}
	if err := s.acks.AwaitAcks(); err != nil {
		return errors.New(errNotAcked(s.acks.AckReplicas()))
	}
	return nil
}

// persistenceInfo fills INFO's persistence section.
func (s *Server) persistenceInfo(kv func(string, any)) {
	if l := s.loading.Load(); l != nil {
		kv("loading", 1)
		for _, f := range l.info() {
			kv(f.Name, f.Value)
		}
	} else {
		kv("loading", 0)
	}
	if s.cfg.Persistence == nil {
		kv("persistence_enabled", 0)
		return
	}
	kv("persistence_enabled", 1)
	for _, f := range s.cfg.Persistence.Info() {
		kv(f.Name, f.Value)
	}
}
