package replication_test

import (
	"net"
	"strconv"
	"testing"

	"github.com/sluicehq/sluice/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReplicaAnnounce: a replica behind a port mapping (a proxy on
// 127.0.0.2:P forwarding to it) with --replica-announce-ip 127.0.0.2 and
// --replica-announce-port P is shown at that address by its primary's
// INFO replication and ROLE; FAILOVER TO matches it there (not at the
// address it connects from), and the demoted primary then follows it
// through the mapping. REPLCONF ip-address refuses what cannot name a
// replica.
func TestReplicaAnnounce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("needs the loopback alias 127.0.0.2 (Linux has it): %v", err)
	}
	mapped := ln.Addr().(*net.TCPAddr).Port
	a := startNode(t, nil)
	b := startNode(t, func(c *server.Config) { c.ReplicaAnnounceIP, c.ReplicaAnnouncePort = "127.0.0.2", mapped })
	startProxyOn(t, ln, b.addr)
	follow(t, b, a.host, a.port)
	eventually(t, func() bool { return a.info("replication")["connected_slaves"] == "1" }, "the primary sees its replica")
	slave := a.info("replication")["slave0"]
	assert.Regexp(t, "^ip=127.0.0.2,port="+strconv.Itoa(mapped)+",state=", slave)
	prole := a.must("ROLE").([]any)
	assert.Equal(t, []any{"127.0.0.2", strconv.Itoa(mapped)}, prole[2].([]any)[0].([]any)[:2])

	// The announced address is what Redis validates on the replica's side
	// and the primary's.
	for _, bad := range []string{"", "10.0.0.1,port=1", "a b", "x:y"} {
		_, err := a.do("REPLCONF", "ip-address", bad)
		assert.EqualError(t, err, "ERR REPLCONF ip-address '"+bad+"': must be an IP address or a host name", "%q", bad)
	}
	for _, good := range []string{"10.0.0.1", "::1", "replica-1.example"} {
		assert.Equal(t, "OK", a.must("REPLCONF", "ip-address", good), good)
	}

	_, err = a.do("FAILOVER", "TO", b.host, b.port)
	assert.EqualError(t, err, "ERR FAILOVER target HOST and PORT is not a replica.")
	_, err = a.do("FAILOVER", "TO", "127.0.0.1", mapped)
	assert.EqualError(t, err, "ERR FAILOVER target HOST and PORT is not a replica.")

	a.must("THROTTLE", "k", 5, 1, 10)
	require.Equal(t, "OK", a.must("FAILOVER", "TO", "127.0.0.2", mapped))
	eventually(t, func() bool {
		i := a.info("replication")
		return i["role"] == "slave" && i["master_link_status"] == "up"
	}, "the demoted primary follows its target:\n"+a.logs.String())
	i := a.info("replication")
	assert.Equal(t, "127.0.0.2", i["master_host"])
	assert.Equal(t, strconv.Itoa(mapped), i["master_port"])
	assert.Equal(t, "master", b.info("replication")["role"])
	eventually(t, func() bool { return b.info("replication")["connected_slaves"] == "1" }, "the new primary sees the old one")
	assert.Regexp(t, "^ip=127.0.0.1,port="+strconv.Itoa(a.port)+",", b.info("replication")["slave0"],
		"a replica without the settings is shown where it connects from")
}
