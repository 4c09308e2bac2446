package server

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// probe GETs path on s's metrics listener: the status code and the body.
func probe(t *testing.T, s *Server, path string) (int, string) {
	t.Helper()
	code, _, body := get(t, "http://"+s.MetricsAddr().String()+path)
	return code, strings.TrimSpace(body)
}

// TestReadyzRole: /readyz?role=primary answers 200 on a real primary and
// 503 naming its primary on a real replica; role=replica the reverse, once
// the replica's link streams; promoting the replica turns its answers
// over; plain /readyz is 200 on both; an unknown role is a 400.
func TestReadyzRole(t *testing.T) {
	primary, _ := serveWithMetrics(t, testConfig())
	port := strconv.Itoa(primary.Addr().(*net.TCPAddr).Port)
	cfg := testConfig()
	cfg.ReplicaOf = "127.0.0.1 " + port
	replica, _ := serveWithMetrics(t, cfg)

	code, body := probe(t, primary, "/readyz?role=primary")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ready: primary", body)
	code, body = probe(t, primary, "/readyz?role=replica")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, "not a replica: a primary", body)

	require.Eventually(t, func() bool { code, _ := probe(t, replica, "/readyz?role=replica"); return code == http.StatusOK },
		30*time.Second, 5*time.Millisecond, "the replica's link streams")
	code, body = probe(t, replica, "/readyz?role=primary")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, "not a primary: replica of 127.0.0.1:"+port, body)
	for _, s := range []*Server{primary, replica} {
		code, body = probe(t, s, "/readyz")
		assert.Equal(t, http.StatusOK, code)
		assert.Equal(t, "ready", body)
	}
	code, body = probe(t, replica, "/readyz?role=master")
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Equal(t, `unknown role "master": want primary or replica`, body)

	c := redis.NewClient(&redis.Options{Addr: replica.Addr().String()})
	defer c.Close()
	require.NoError(t, c.Do(context.Background(), "REPLICAOF", "NO", "ONE").Err())
	code, _ = probe(t, replica, "/readyz?role=primary")
	assert.Equal(t, http.StatusOK, code, "promoted")
	code, body = probe(t, replica, "/readyz?role=replica")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, "not a replica: a primary", body)
}

// TestReadyzRoleCluster: in cluster mode a primary must also be a master
// of the current map owning slots; each map below changes the answer,
// while plain /readyz stays 200.
func TestReadyzRoleCluster(t *testing.T) {
	cfg := testConfig()
	cfg.ClusterEnabled, cfg.ClusterNodeID = true, clusterIDs[0]
	s, _ := serveWithMetrics(t, cfg)
	c := redis.NewClient(&redis.Options{Addr: s.Addr().String()})
	defer c.Close()
	ctx := context.Background()
	self := clusterIDs[0] + " " + strings.Replace(s.Addr().String(), ":", " ", 1)
	other := clusterIDs[1] + " 127.0.0.1 1"
	for _, step := range []struct {
		nodes string // "" pushes nothing
		code  int
		body  string
	}{
		{"", http.StatusServiceUnavailable, "not a primary: no cluster map yet"},
		{self + " master - 0-16383", http.StatusOK, "ready: primary"},
		{self + " master - 0-100\n" + other + " master - 101-16383", http.StatusOK, "ready: primary"},
		{other + " master - 0-16383\n" + self + " master -", http.StatusServiceUnavailable, "not a primary: serves no slot"},
		{other + " master - 0-16383\n" + self + " slave " + clusterIDs[1], http.StatusServiceUnavailable, "not a primary: a replica in the cluster map"},
		{other + " master - 0-16383", http.StatusServiceUnavailable, "not a primary: this node is not in the cluster map"},
		{self + " master - 0-16383", http.StatusOK, "ready: primary"},
	} {
		if step.nodes != "" {
			v, err := c.Do(ctx, "CLUSTERX", "VERSION").Int64()
			require.NoError(t, err)
			require.NoError(t, c.Do(ctx, "CLUSTERX", "SETNODES", step.nodes, v+1).Err(), step.nodes)
		}
		code, body := probe(t, s, "/readyz?role=primary")
		assert.Equal(t, step.code, code, step.nodes)
		assert.Equal(t, step.body, body, step.nodes)
		code, _ = probe(t, s, "/readyz")
		assert.Equal(t, http.StatusOK, code, step.nodes)
	}
}
