// Package cluster owns how Sluice nodes share the keys of a Redis Cluster:
// the hash slot of a key (CRC16 of the key or of its {hashtag}, modulo
// 16384, exactly as Redis computes it), the topology that says which node
// serves which slot (parsed from and written back to Apache Kvrocks's
// CLUSTERX SETNODES text, with its version), and this node's view of that
// topology: its id, its role and the bitmap of the slots it serves, which
// dispatch reads on every command.
//
// The topology is supplied from outside (CLUSTERX SETNODES, a controller);
// nodes do not gossip. [Decide] is a controller's judgement as a pure
// function: from the current topology, the live nodes and the replicas'
// offsets, the next topology (failover, joins, the shape to keep), never
// leaving a slot without a master; package controlplane runs it on etcd. [State] is the one mutable thing: it holds the
// current [View] behind an atomic pointer, so routing a command costs one
// pointer load, one [Slot] computation and one bit test, and a new topology
// replaces the view whole. With a directory, State keeps the node id and
// the topology in a small file there, so a restarted node serves at once.
//
// A slot moved with its state (Kvrocks's CLUSTERX MIGRATE) marks the view
// without changing the topology: the source stops serving the slot's
// writes, then redirects the slot to the destination, which serves it
// until a new topology (CLUSTERX SETSLOT, [State.SetSlot]) says so.
//
// The package knows nothing of sockets, commands or replies; package
// commands words its errors.
package cluster
