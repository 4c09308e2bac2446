// Package controlplane owns a Sluice cluster node's link to etcd: its
// registration (a key on a lease that keepalives renew), the watch that
// applies every newer topology etcd holds (and sets the node's replication
// role from it), the controller election, and, on the elected node, the
// controller loop that publishes the next topology with one compare-and-
// swap transaction. What the next topology is, is decided by the pure
// function cluster.Decide; this package only gathers its inputs (the live
// registrations, the topology, the offsets of replicas, asked over RESP at
// decision time) and applies its output.
//
// The layout under /sluice/<cluster>/:
//
//	nodes/<id>   {"id":…,"host":…,"port":…} on the node's lease (TTL --cluster-lease-ttl)
//	topology     Kvrocks's SETNODES text; its mod revision is the version every node applies
//	election/    concurrency.Election's keys (one per candidate, on its lease)
//	handover     {"from":…,"to":…,"revision":…}: a FAILOVER asking for the flip, on the asking node's lease
//
// At steady state etcd sees only the lease keepalives (one every TTL/3 per
// node) and the idle watches: no request of a client reaches etcd.
//
// The agent also implements replication.Handover: FAILOVER on a primary
// pauses its writes and catches its replica up (package replication), then
// asks the controller for the flip through the handover key; the
// controller grants it (cluster.Decide) in the transaction that publishes
// the map, and deletes the request there, granted or refused.
//
// With the fence policy the agent also fences the node (it refuses keyed
// commands for its slots) once its lease may have expired: when the last
// keepalive answer is older than the TTL minus a margin, by the agent's
// clock, which tests replace.
package controlplane
