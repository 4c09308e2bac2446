package compat

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The cluster tests start three sluice processes with --cluster-enabled,
// give them one topology with CLUSTERX SETNODES (0-5460, 5461-10922,
// 10923-16383) and drive stock Redis Cluster clients through them: the
// shared sequence with exact replies (each node's clock frozen with DEBUG
// CLOCK SET), then testdata/cluster_multi.json (THROTTLE.MULTI by hashtag,
// and CROSSSLOT).

var clusterNodeIDs = []string{
	"a000000000000000000000000000000000000001",
	"b000000000000000000000000000000000000002",
	"c000000000000000000000000000000000000003",
}

// processCluster is three sluice processes serving one topology.
type processCluster struct {
	nodes []*sluice
	addrs []string
}

func startProcessCluster(t *testing.T) *processCluster {
	t.Helper()
	pc := &processCluster{}
	var lines []string
	for i, id := range clusterNodeIDs {
		s := startSluice(t, "--cluster-enabled", "--cluster-node-id", id)
		pc.nodes = append(pc.nodes, s)
		pc.addrs = append(pc.addrs, s.Addr)
		first, last := i*cluster3, (i+1)*cluster3-1
		if i == 2 {
			last = 16383
		}
		lines = append(lines, fmt.Sprintf("%s %s %d master - %d-%d", id, s.Host, s.Port, first, last))
	}
	for _, a := range pc.addrs {
		c := redis.NewClient(&redis.Options{Addr: a, MaxRetries: -1})
		err := c.Do(context.Background(), "CLUSTERX", "SETNODES", strings.Join(lines, "\n"), 1).Err()
		_ = c.Close()
		if err != nil {
			t.Fatalf("CLUSTERX SETNODES on %s: %v", a, err)
		}
	}
	return pc
}

// cluster3 is a third of the slots, rounded as redis-cli --cluster create
// rounds them: 0-5460, 5461-10921 (then 10922-16383 would be Redis's; the
// last node here takes 10922-16383).
const cluster3 = 5461

// each runs f on a plain client of every live node.
func (pc *processCluster) each(t *testing.T, f func(c *redis.Client) error) {
	t.Helper()
	for i, s := range pc.nodes {
		if s.killed {
			continue
		}
		c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
		err := f(c)
		_ = c.Close()
		if err != nil {
			t.Fatalf("node %d (%s): %v", i, s.Addr, err)
		}
	}
}

func (pc *processCluster) setClock(t *testing.T, ns int64) {
	t.Helper()
	pc.each(t, func(c *redis.Client) error { return c.Do(context.Background(), "DEBUG", "CLOCK", "SET", ns).Err() })
}

// clusterMulti is testdata/cluster_multi.json.
type clusterMulti struct {
	Args           []string
	Reply          [][]int64
	CrossSlotArgs  []string `json:"crossslot_args"`
	CrossSlotError string   `json:"crossslot_error"`
}

func loadClusterMulti(t *testing.T) clusterMulti {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "cluster_multi.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m clusterMulti
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestClusterGoRedis: go-redis's ClusterClient against three processes.
func TestClusterGoRedis(t *testing.T) {
	pc := startProcessCluster(t)
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("resp%d", proto), func(t *testing.T) {
			cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: pc.addrs, Protocol: proto})
			defer cc.Close()
			pc.each(t, func(c *redis.Client) error { return c.FlushAll(context.Background()).Err() })
			goRedisClusterSequence(t, cc, func(ns int64) { pc.setClock(t, ns) })
		})
	}
}

// goRedisClusterSequence replays the sequence, then cluster_multi.json,
// through cc with exact replies; setClock freezes every node's clock.
func goRedisClusterSequence(t *testing.T, cc *redis.ClusterClient, setClock func(ns int64)) {
	t.Helper()
	ctx := context.Background()
	seq := loadSequence(t)
	clock := int64(-1)
	for _, st := range seq.Steps {
		if now := seq.clock(st); now != clock {
			setClock(now)
			clock = now
		}
		v, err := cc.Do(ctx, anyArgs(st.Args...)...).Result()
		checkReply(t, st, v, err)
	}
	m := loadClusterMulti(t)
	v, err := cc.Do(ctx, anyArgs(m.Args...)...).Result()
	if err != nil || fmt.Sprint(v) != fmt.Sprint(m.Reply) {
		t.Errorf("%q replied %v, %v; want %v", m.Args, v, err, m.Reply)
	}
	if err := cc.Do(ctx, anyArgs(m.CrossSlotArgs...)...).Err(); err == nil || err.Error() != m.CrossSlotError {
		t.Errorf("%q: %v, want %s", m.CrossSlotArgs, err, m.CrossSlotError)
	}
}

// TestClusterRedisCLI: redis-cli -c, one process per command, follows
// -MOVED to the node that serves each key.
func TestClusterRedisCLI(t *testing.T) {
	cli := lookPath(t, "redis-cli", "apt-get install redis-tools")
	pc := startProcessCluster(t)
	redisCLIClusterSequence(t, cli, pc.nodes[0], func(ns int64) { pc.setClock(t, ns) })
}

// redisCLIClusterSequence replays the sequence, then cluster_multi.json,
// with one redis-cli -c per command started at node s, checking exact
// output; setClock freezes every node's clock.
func redisCLIClusterSequence(t *testing.T, cli string, s *sluice, setClock func(ns int64)) {
	t.Helper()
	seq := loadSequence(t)
	base := []string{"-c", "-h", s.Host, "-p", strconv.Itoa(s.Port)}
	clock := int64(-1)
	for _, st := range seq.Steps {
		if now := seq.clock(st); now != clock {
			setClock(now)
			clock = now
		}
		out, err := run(t, 10*time.Second, nil, "", cli, append(base, st.Args...)...)
		if err != nil {
			t.Fatalf("%s: redis-cli -c %q: %v\n%s", st.Name, st.Args, err, out)
		}
		if got, want := strings.TrimRight(out, "\n"), redisCLIFormat(st, true); got != want {
			t.Errorf("%s: redis-cli -c %q printed\n%s\nwant\n%s", st.Name, st.Args, got, want)
		}
	}
	m := loadClusterMulti(t)
	out, err := run(t, 10*time.Second, nil, "", cli, append(base, m.Args...)...)
	var want []string
	for _, r := range m.Reply {
		for _, n := range r {
			want = append(want, strconv.FormatInt(n, 10))
		}
	}
	if err != nil || strings.TrimRight(out, "\n") != strings.Join(want, "\n") {
		t.Errorf("redis-cli -c %q: %v printed\n%s\nwant\n%s", m.Args, err, out, strings.Join(want, "\n"))
	}
	out, err = run(t, 10*time.Second, nil, "", cli, append(base, m.CrossSlotArgs...)...)
	if err != nil || strings.TrimSpace(out) != m.CrossSlotError {
		t.Errorf("redis-cli -c %q: %v printed %q, want %q", m.CrossSlotArgs, err, out, m.CrossSlotError)
	}
}

// TestClusterRedisPy runs python/test_redis_cluster.py: redis-py's
// RedisCluster (Debian's 4.3.4 checks INFO's cluster_enabled:1).
func TestClusterRedisPy(t *testing.T) {
	requirePython(t, "redis", "python3-redis")
	pc := startProcessCluster(t)
	out, err := run(t, 60*time.Second, []string{"SLUICE_CLUSTER_ADDRS=" + strings.Join(pc.addrs, ","), "PYTHONDONTWRITEBYTECODE=1"},
		"python", systemPython, "-m", "unittest", "-v", "test_redis_cluster")
	if err != nil || !strings.Contains(out, "\nOK") {
		t.Fatalf("redis-py RedisCluster tests failed: %v\n%s", err, out)
	}
	t.Logf("%s", lastLines(out, 8))
}

// TestClusterIORedis runs node/ioredis-cluster.test.mjs: ioredis's Cluster.
func TestClusterIORedis(t *testing.T) {
	node := requireNodeClients(t)
	pc := startProcessCluster(t)
	out, err := run(t, 60*time.Second, []string{"SLUICE_ADDR=" + pc.addrs[0], "SLUICE_CLUSTER_ADDRS=" + strings.Join(pc.addrs, ",")},
		"node", node, "--test", "--test-reporter=spec", "ioredis-cluster.test.mjs")
	if err != nil {
		t.Fatalf("node --test ioredis-cluster.test.mjs: %v\n%s", err, out)
	}
	t.Logf("%s", lastLines(out, 12))
}

// TestClusterRedisBenchmark: redis-benchmark --cluster sends THROTTLE over
// keys with each node's hashtag ({tag}) to every master; no request fails
// and the nodes count every one.
func TestClusterRedisBenchmark(t *testing.T) {
	bench := lookPath(t, "redis-benchmark", "apt-get install redis-tools")
	pc := startProcessCluster(t)
	pc.setClock(t, loadSequence(t).EpochNs)
	args := []string{"--cluster", "-h", pc.nodes[0].Host, "-p", strconv.Itoa(pc.nodes[0].Port), "-n", "3000", "-c", "6", "-r", "1000", "-q",
		"THROTTLE", "key:{tag}:__rand_int__", "15", "30", "60", "1"}
	out, err := run(t, 60*time.Second, nil, "", bench, args...)
	if err != nil || strings.Contains(out, "Error") || !strings.Contains(out, "requests per second") {
		t.Fatalf("redis-benchmark %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("redis-benchmark --cluster: %s", lastLine(out))
	var total int64
	served := 0
	pc.each(t, func(c *redis.Client) error {
		info, err := c.Info(context.Background(), "stats").Result()
		n := infoInt(t, info, "throttle_allowed") + infoInt(t, info, "throttle_limited")
		if n > 0 {
			served++
		}
		total += n
		return err
	})
	if total != 3000 || served != 3 {
		t.Errorf("the nodes counted %d THROTTLE calls (%d nodes served some), want 3000 over 3", total, served)
	}
}

// kill9 ends the process with SIGKILL, as a crash would.
func (s *sluice) kill9(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-s.exited
	s.killed = true
}

// TestClusterKill9: after kill -9 of one node, the two others keep serving
// their slots, through a cluster client and directly; the dead node's
// slots fail (no failover in this mode).
func TestClusterKill9(t *testing.T) {
	pc := startProcessCluster(t)
	pc.setClock(t, loadSequence(t).EpochNs)
	ctx := context.Background()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: pc.addrs, MaxRedirects: 3,
		DialTimeout: time.Second, ReadTimeout: 2 * time.Second, MaxRetries: 1})
	defer cc.Close()
	keys := make([]string, 3) // one key per node
	for i := 0; keys[0] == "" || keys[1] == "" || keys[2] == ""; i++ {
		k := "k" + strconv.Itoa(i)
		slot, err := cc.ClusterKeySlot(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n := min(int(slot)/cluster3, 2); keys[n] == "" {
			keys[n] = k
		}
	}
	for _, k := range keys {
		if err := cc.Do(ctx, "THROTTLE", k, 100, 100, 60).Err(); err != nil {
			t.Fatalf("THROTTLE %s before the kill: %v", k, err)
		}
	}
	pc.nodes[2].kill9(t)
	for round := range 20 {
		for i, k := range keys[:2] {
			v, err := cc.Do(ctx, "THROTTLE", k, 100, 100, 60).Slice()
			if err != nil || v[0] != int64(0) || v[2] != int64(99-round) {
				t.Fatalf("round %d: THROTTLE %s (node %d) after the kill: %v, %v", round, k, i, v, err)
			}
		}
	}
	if err := cc.Do(ctx, "THROTTLE", keys[2], 100, 100, 60).Err(); err == nil {
		t.Errorf("THROTTLE %s answered though its node is dead", keys[2])
	}
	pc.each(t, func(c *redis.Client) error {
		info, err := c.ClusterInfo(ctx).Result()
		if err == nil && !strings.Contains(info, "cluster_state:ok") {
			err = fmt.Errorf("CLUSTER INFO after the kill:\n%s", info)
		}
		return err
	})
}
