package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestValidateReplication: the replication settings' problems are each
// reported, naming the flag; CONFIG GET redacts masterauth and spells
// repl-timeout in seconds, as Redis does.
func TestValidateReplication(t *testing.T) {
	c := Default()
	c.ReplicaOf = "10.0.0.5 6379"
	require.NoError(t, c.Validate())
	host, port, err := c.replicaOf()
	require.NoError(t, err)
	assert.Equal(t, "10.0.0.5", host)
	assert.Equal(t, 6379, port)

	c.ReplicaOf = "[::1]:6380"
	host, port, err = c.replicaOf()
	require.NoError(t, err)
	assert.Equal(t, "::1", host)
	assert.Equal(t, 6380, port)

	for _, bad := range []string{"10.0.0.5", "10.0.0.5 0", "10.0.0.5 x", "a b c", "h 65536", "h:0"} {
		c.ReplicaOf = bad
		assert.ErrorContains(t, c.Validate(), "--replicaof", bad)
	}
	c = Default()
	c.ReplBacklogSize = 100
	c.ReplBufferLimit = 50
	c.ReplTimeout = time.Millisecond
	err = c.Validate()
	require.Error(t, err)
	assert.ErrorContains(t, err, "--repl-backlog-size 100: must be at least 16384")
	assert.ErrorContains(t, err, "--repl-buffer-limit 50: must be at least --repl-backlog-size 100")
	assert.ErrorContains(t, err, "--repl-timeout 1ms: must be at least 1s")

	c = Default()
	c.MasterAuth = "secret"
	shown := map[string]string{}
	for _, s := range c.shown() {
		shown[s.Name] = s.Value
	}
	assert.Equal(t, "<redacted>", shown["masterauth"])
	assert.Equal(t, "60", shown["repl-timeout"])
	assert.Equal(t, "1048576", shown["repl-backlog-size"])
}

// TestReplicationMetrics: a primary with a replica attached exports the
// replication metrics, the replica its link's.
func TestReplicationMetrics(t *testing.T) {
	start := func(tune func(*Config)) *Server {
		cfg := Default()
		cfg.ListenAddr, cfg.Shards = "127.0.0.1:0", 4
		if tune != nil {
			tune(&cfg)
		}
		s, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		require.NoError(t, err)
		go func() { _ = s.Serve() }()
		t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
		return s
	}
	primary := start(nil)
	replica := start(func(c *Config) { c.ReplicaOf = "127.0.0.1 " + strconv.Itoa(primary.Addr().(*net.TCPAddr).Port) })
	gather := func(s *Server) map[string]float64 {
		reg := prometheus.NewRegistry()
		reg.MustRegister(newReplicationCollector(s.state.repl))
		mfs, err := reg.Gather()
		require.NoError(t, err)
		out := map[string]float64{}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				name := mf.GetName()
				for _, l := range m.GetLabel() {
					name += "{" + l.GetName() + "=" + l.GetValue() + "}"
				}
				out[name] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
		}
		return out
	}
	require.Eventually(t, func() bool { return gather(replica)["sluice_replication_link_up"] == 1 }, 30*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool { return gather(primary)["sluice_replication_connected_replicas"] == 1 }, 30*time.Second, 5*time.Millisecond)
	p, r := gather(primary), gather(replica)
	assert.Equal(t, float64(0), p["sluice_replication_is_replica"])
	assert.Equal(t, float64(1), r["sluice_replication_is_replica"])
	assert.Equal(t, float64(1), p["sluice_replication_resyncs_served_total{kind=full}"])
	assert.Equal(t, float64(1), r["sluice_replication_resyncs_received_total{kind=full}"])
	assert.Contains(t, r, "sluice_replication_primary_last_io_seconds")
	var lagged bool
	for name := range p {
		lagged = lagged || strings.HasPrefix(name, "sluice_replication_replica_lag_bytes{replica=127.0.0.1:")
	}
	assert.True(t, lagged, "a lag per replica: %v", p)
}
