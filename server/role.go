package server

import (
	"fmt"
	"net"
	"strconv"

	"github.com/sluicehq/sluice/cluster"
)

// The roles /readyz?role= checks.
const (
	rolePrimary = "primary"
	roleReplica = "replica"
)

// servesAs reports whether the server serves in role now: "" when it does,
// else a short reason for the probe's reply. A primary is a replication
// primary (not following anyone) that, in cluster mode, is a master of the
// current map owning at least one slot: what a Service or load balancer
// that must reach the one node accepting a shard's writes asks. A replica
// follows a primary over a link that is streaming. ok is false for a role
// that is neither.
func (st *state) servesAs(role string) (reason string, ok bool) {
	rs := st.repl.Status()
	switch role {
	case rolePrimary:
		if rs.Replica {
			return "not a primary: replica of " + net.JoinHostPort(rs.PrimaryHost, strconv.Itoa(rs.PrimaryPort)), true
		}
		if st.cluster == nil {
			return "", true
		}
		v := st.cluster.View()
		switch {
		case v.Topology == nil:
			return "not a primary: no cluster map yet", true
		case v.Self == nil:
			return "not a primary: this node is not in the cluster map", true
		case v.Self.Role != cluster.Master:
			return "not a primary: a replica in the cluster map", true
		case len(v.Self.Ranges) == 0:
			return "not a primary: serves no slot", true
		}
		return "", true
	case roleReplica:
		if !rs.Replica {
			return "not a replica: a primary", true
		}
		if rs.LinkState != "connected" {
			return fmt.Sprintf("not a replica yet: link to %s is %s", net.JoinHostPort(rs.PrimaryHost, strconv.Itoa(rs.PrimaryPort)), rs.LinkState), true
		}
		return "", true
	}
	return "", false
}
