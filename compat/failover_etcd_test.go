package compat

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sluicehq/sluice/client"
	"github.com/sluicehq/sluice/cluster"
)

// The etcd failover test runs the process test: Debian's etcd
// (etcd-server, binary etcd) and six sluice processes on loopback driven
// by it (--cluster-etcd, 3 primaries with a replica each), each stock
// cluster client through them with exact replies, then kill -9 of a
// primary under load with each client's error window measured, the killed
// node restarted on its data directory (it rejoins as a replica), and
// SIGSTOP/SIGCONT of a primary.

// etcdLeaseTTL is --cluster-lease-ttl: etcd 3.4's shortest lease with its
// default election timeout is 1.5 s (a 1 s TTL is granted as 2 s anyway).
const etcdLeaseTTL = 2 * time.Second

// startEtcdProcess runs etcd on two free loopback ports with a temporary
// data directory, waits until /health answers, and stops it when the test
// ends. It returns the client URL.
func startEtcdProcess(t *testing.T) string {
	t.Helper()
	bin := lookPath(t, "etcd", "apt-get install etcd-server")
	clientURL, peerURL := "http://127.0.0.1:"+freePort(t), "http://127.0.0.1:"+freePort(t)
	cmd := exec.Command(bin, "--name", "compat", "--data-dir", t.TempDir(),
		"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "compat="+peerURL, "--log-level", "warn")
	log := &tailBuffer{max: 32 << 10}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("etcd did not stop within 10 s of SIGTERM\n%s", log)
		}
	})
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if r, err := hc.Get(clientURL + "/health"); err == nil {
			b, _ := io.ReadAll(r.Body)
			_ = r.Body.Close()
			if strings.Contains(string(b), `"health":"true"`) {
				return clientURL
			}
		}
		select {
		case <-exited:
			t.Fatalf("etcd exited before it was healthy\n%s", log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd not healthy within 30 s\n%s", log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// etcdNode is one sluice process of the etcd-driven cluster; a restart
// keeps its data directory and port.
type etcdNode struct {
	s    *sluice
	dir  string
	port int
	id   string
	down bool // killed, or stopped with SIGSTOP
}

func (n *etcdNode) addr() string { return "127.0.0.1:" + strconv.Itoa(n.port) }

// etcdCluster is six sluice processes driven by one etcd.
type etcdCluster struct {
	endpoint string
	nodes    []*etcdNode
}

// start starts n (again): GOMAXPROCS=1, so that six fit on two cores.
func (ec *etcdCluster) start(t *testing.T, n *etcdNode) {
	t.Helper()
	port := strconv.Itoa(n.port)
	if n.port == 0 {
		port = freePort(t)
	}
	n.s = startBinaryEnv(t, []string{"GOMAXPROCS=1"}, sluiceBinary(t), "--bind", "127.0.0.1", "--port", port,
		"--enable-debug-command", "--data-dir", n.dir, "--cluster-enabled", "yes", "--cluster-etcd", ec.endpoint,
		"--cluster-name", "compat", "--cluster-lease-ttl", etcdLeaseTTL.String(), "--cluster-primaries", "3",
		"--cluster-replicas", "1", "--cluster-announce-ip", "127.0.0.1")
	n.port, n.down = n.s.Port, false
	c := plainClient(n.addr())
	defer c.Close()
	id, err := c.ClusterMyID(context.Background()).Result()
	if err != nil {
		t.Fatalf("CLUSTER MYID: %v", err)
	}
	if n.id != "" && id != n.id {
		t.Fatalf("restarted on its data directory with id %s, was %s", id, n.id)
	}
	n.id = id
}

func plainClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second})
}

func (ec *etcdCluster) live() []*etcdNode {
	var out []*etcdNode
	for _, n := range ec.nodes {
		if !n.down {
			out = append(out, n)
		}
	}
	return out
}

func (ec *etcdCluster) byID(id string) *etcdNode {
	for _, n := range ec.nodes {
		if n.id == id {
			return n
		}
	}
	return nil
}

// addrs lists every node's address, live or not (what a client is given).
func (ec *etcdCluster) addrs() []string {
	var out []string
	for _, n := range ec.nodes {
		out = append(out, n.addr())
	}
	return out
}

// onLive runs f on a plain client of every live node.
func (ec *etcdCluster) onLive(t *testing.T, f func(c *redis.Client) error) {
	t.Helper()
	for _, n := range ec.live() {
		c := plainClient(n.addr())
		err := f(c)
		_ = c.Close()
		if err != nil {
			t.Fatalf("node %s: %v", n.addr(), err)
		}
	}
}

func (ec *etcdCluster) setClock(t *testing.T, ns int64) {
	t.Helper()
	ec.onLive(t, func(c *redis.Client) error { return c.Do(context.Background(), "DEBUG", "CLOCK", "SET", ns).Err() })
}

// flushPrimaries empties every key (the replicas follow).
func (ec *etcdCluster) flushPrimaries(t *testing.T, v *clusterView) {
	t.Helper()
	for _, sh := range v.shards {
		c := plainClient(sh.master)
		err := c.FlushAll(context.Background()).Err()
		_ = c.Close()
		if err != nil {
			t.Fatalf("FLUSHALL on %s: %v", sh.master, err)
		}
	}
}

// leader is the live node that runs the controller (INFO cluster).
func (ec *etcdCluster) leader(t *testing.T) *etcdNode {
	t.Helper()
	for _, n := range ec.live() {
		c := plainClient(n.addr())
		info, err := c.Info(context.Background(), "cluster").Result()
		_ = c.Close()
		if err == nil && strings.Contains(info, "cluster_etcd_leader:1") {
			return n
		}
	}
	return nil
}

// logs is the tail of every node's log, for a failure message.
func (ec *etcdCluster) logs() string {
	var b strings.Builder
	for _, n := range ec.nodes {
		var lines []string
		for _, l := range strings.Split(n.s.log.String(), "\n") {
			if strings.Contains(l, "cluster") || strings.Contains(l, "replication") {
				lines = append(lines, l)
			}
		}
		fmt.Fprintf(&b, "--- node %s (%s):\n%s\n", n.addr(), n.id, lastLines(strings.Join(lines, "\n"), 15))
	}
	return b.String()
}

// shard is one entry of CLUSTER SHARDS: its slot ranges, its master's and
// replicas' addresses.
type shard struct {
	slots    [][2]int64
	master   string
	replicas []string
}

// clusterView is the CLUSTER SHARDS every live node answers alike, each
// node's ROLE agreeing with it.
type clusterView struct {
	shards []shard
	ids    map[string]string // address -> node id
}

// view reads CLUSTER SHARDS and ROLE from every live node; it fails when
// they disagree (a change not applied everywhere yet).
func (ec *etcdCluster) view() (*clusterView, error) {
	ctx := context.Background()
	var first string
	var v *clusterView
	for _, n := range ec.live() {
		c := plainClient(n.addr())
		shards, err := c.ClusterShards(ctx).Result()
		var role []any
		if err == nil {
			role, err = c.Do(ctx, "ROLE").Slice()
		}
		_ = c.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %v", n.addr(), err)
		}
		cv := &clusterView{ids: map[string]string{}}
		for _, s := range shards {
			var sh shard
			for _, r := range s.Slots {
				sh.slots = append(sh.slots, [2]int64{r.Start, r.End})
			}
			for _, m := range s.Nodes {
				a := fmt.Sprintf("%s:%d", m.IP, m.Port)
				cv.ids[a] = m.ID
				if m.Role == "master" {
					sh.master = a
				} else {
					sh.replicas = append(sh.replicas, a)
				}
			}
			sort.Strings(sh.replicas)
			cv.shards = append(cv.shards, sh)
		}
		sort.Slice(cv.shards, func(i, j int) bool { return cv.shards[i].master < cv.shards[j].master })
		text := cv.String()
		if v == nil {
			v, first = cv, text
		} else if text != first {
			return nil, fmt.Errorf("%s answers CLUSTER SHARDS\n%s\nanother node\n%s", n.addr(), text, first)
		}
		want := "slave"
		if cv.shardOf(n.addr()) != nil && cv.shardOf(n.addr()).master == n.addr() {
			want = "master"
		}
		if len(role) == 0 || role[0] != want {
			return nil, fmt.Errorf("%s: ROLE %v, CLUSTER SHARDS says %s", n.addr(), role, want)
		}
	}
	if v == nil {
		return nil, fmt.Errorf("no live node")
	}
	return v, nil
}

func (v *clusterView) String() string {
	var b strings.Builder
	for _, sh := range v.shards {
		fmt.Fprintf(&b, "%v master %s replicas %v\n", sh.slots, sh.master, sh.replicas)
	}
	return b.String()
}

// shardAt is the shard that serves slot, or nil.
func (v *clusterView) shardAt(slot int) *shard {
	for i, sh := range v.shards {
		for _, r := range sh.slots {
			if int64(slot) >= r[0] && int64(slot) <= r[1] {
				return &v.shards[i]
			}
		}
	}
	return nil
}

// shardOf is the shard addr belongs to, or nil.
func (v *clusterView) shardOf(addr string) *shard {
	for i, sh := range v.shards {
		if sh.master == addr || slices.Contains(sh.replicas, addr) {
			return &v.shards[i]
		}
	}
	return nil
}

// check reports what keeps v from covering every slot exactly once with
// one master per shard, replicas[i] replicas on the shards in some order,
// and exactly the nodes in members.
func (v *clusterView) check(members []*etcdNode, replicas []int) error {
	var ranges [][2]int64
	var got []int
	seen := map[string]bool{}
	for _, sh := range v.shards {
		if sh.master == "" {
			return fmt.Errorf("a shard without a master:\n%s", v)
		}
		ranges = append(ranges, sh.slots...)
		got = append(got, len(sh.replicas))
		seen[sh.master] = true
		for _, r := range sh.replicas {
			seen[r] = true
		}
	}
	sort.Slice(ranges, func(i, j int) bool { return ranges[i][0] < ranges[j][0] })
	next := int64(0)
	for _, r := range ranges {
		if r[0] != next {
			return fmt.Errorf("slot %d is not covered exactly once:\n%s", next, v)
		}
		next = r[1] + 1
	}
	if next != 16384 {
		return fmt.Errorf("slots %d-16383 uncovered:\n%s", next, v)
	}
	want := slices.Clone(replicas)
	sort.Ints(want)
	sort.Ints(got)
	if !slices.Equal(got, want) {
		return fmt.Errorf("replicas per shard %v, want %v:\n%s", got, want, v)
	}
	if len(seen) != len(members) {
		return fmt.Errorf("%d nodes in the map, want %d:\n%s", len(seen), len(members), v)
	}
	for _, n := range members {
		if !seen[n.addr()] || v.ids[n.addr()] != n.id {
			return fmt.Errorf("node %s (%s) is not in the map:\n%s", n.addr(), n.id, v)
		}
	}
	return nil
}

// await polls cond until it returns nil, failing with its last error and
// the nodes' logs after 30 s. It returns how long it waited.
func (ec *etcdCluster) await(t *testing.T, what string, cond func() error) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		err := cond()
		if err == nil {
			d := time.Since(start)
			t.Logf("%.2f s: %s", d.Seconds(), what)
			return d
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("not within 30 s: %s: %v\n%s", what, err, ec.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// awaitShape waits until every live node answers the same map with the
// given replicas per shard, listing exactly the live nodes.
func (ec *etcdCluster) awaitShape(t *testing.T, what string, replicas ...int) (*clusterView, time.Duration) {
	t.Helper()
	var v *clusterView
	d := ec.await(t, what, func() error {
		var err error
		if v, err = ec.view(); err != nil {
			return err
		}
		return v.check(ec.live(), replicas)
	})
	return v, d
}

// tagFor finds a hashtag whose slot the shard of master serves.
func tagFor(t *testing.T, v *clusterView, master string) string {
	t.Helper()
	sh := v.shardOf(master)
	c := plainClient(master)
	defer c.Close()
	for i := range 1000 {
		tag := "f" + strconv.Itoa(i)
		slot, err := c.ClusterKeySlot(context.Background(), tag).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range sh.slots {
			if slot >= r[0] && slot <= r[1] {
				return tag
			}
		}
	}
	t.Fatalf("no hashtag of the slots of %s", master)
	return ""
}

// attempt is one command of a client after the test armed it.
type attempt struct {
	sent, done time.Time
	err        string
}

// attempts collects a client's attempts.
type attempts struct {
	mu   sync.Mutex
	list []attempt
}

func (a *attempts) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.list)
}

func (a *attempts) add(x attempt) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.list = append(a.list, x)
}

// recovered is the first success sent at or after t0, and the errors
// before it (how many, and the first and last texts).
func (a *attempts) recovered(t0 time.Time) (done time.Time, ok bool, errs int, errTexts string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var first, last string
	defer func() {
		errTexts = first
		if errs > 1 {
			errTexts += " … last: " + last
		}
	}()
	for _, x := range a.list {
		if x.err != "" {
			if errs++; first == "" {
				first = x.err
			}
			last = x.err
			continue
		}
		if !x.sent.Before(t0) {
			return x.done, true, errs, ""
		}
	}
	return time.Time{}, false, errs, ""
}

// scriptClient is a long-running client script that speaks the protocol of
// python/etcd_failover_client.py.
type scriptClient struct {
	name     string
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	out      *tailBuffer
	attempts attempts
	armed    chan struct{}
	exited   chan struct{}
	waitErr  error
}

// startScript runs a client script in dir and waits for its "ready".
func startScript(t *testing.T, name, dir string, env []string, argv ...string) *scriptClient {
	t.Helper()
	sc := &scriptClient{name: name, cmd: exec.Command(argv[0], argv[1:]...), out: &tailBuffer{max: 16 << 10},
		armed: make(chan struct{}), exited: make(chan struct{})}
	sc.cmd.Dir = dir
	sc.cmd.Env = append(os.Environ(), env...)
	sc.cmd.Stderr = sc.out
	stdin, err := sc.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := sc.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	sc.stdin = stdin
	if err := sc.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			line := s.Text()
			f := strings.SplitN(line, " ", 4)
			switch {
			case line == "ready":
				close(ready)
			case line == "armed":
				close(sc.armed)
			case (f[0] == "ok" || f[0] == "err") && len(f) >= 3:
				sent, _ := strconv.ParseInt(f[1], 10, 64)
				done, _ := strconv.ParseInt(f[2], 10, 64)
				x := attempt{sent: time.Unix(0, sent), done: time.Unix(0, done)}
				if f[0] == "err" {
					x.err = "error"
					if len(f) == 4 {
						x.err = f[3]
					}
				}
				sc.attempts.add(x)
			default:
				_, _ = sc.out.Write([]byte(line + "\n"))
			}
		}
	}()
	go func() {
		<-scanned
		sc.waitErr = sc.cmd.Wait()
		close(sc.exited)
	}()
	t.Cleanup(func() {
		_ = stdin.Close()
		select {
		case <-sc.exited:
		case <-time.After(10 * time.Second):
			_ = sc.cmd.Process.Kill()
			<-sc.exited
		}
	})
	select {
	case <-ready:
	case <-sc.exited:
		t.Fatalf("%s exited before its first reply: %v\n%s", name, sc.waitErr, sc.out)
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: no first reply within 30 s\n%s", name, sc.out)
	}
	return sc
}

// arm tells the script that errors are expected from now on, and waits
// until it has read it.
func (sc *scriptClient) arm(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(sc.stdin, "armed\n"); err != nil {
		t.Fatalf("%s: %v\n%s", sc.name, err, sc.out)
	}
	select {
	case <-sc.armed:
	case <-sc.exited:
		t.Fatalf("%s exited: %v\n%s", sc.name, sc.waitErr, sc.out)
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not read \"armed\" within 10 s\n%s", sc.name, sc.out)
	}
}

// end closes the script's stdin; it must exit 0.
func (sc *scriptClient) end(t *testing.T) {
	t.Helper()
	_ = sc.stdin.Close()
	select {
	case <-sc.exited:
		if sc.waitErr != nil {
			t.Errorf("%s: %v\n%s", sc.name, sc.waitErr, sc.out)
		}
	case <-time.After(15 * time.Second):
		t.Errorf("%s did not exit within 15 s of its stdin closing\n%s", sc.name, sc.out)
	}
}

// loop runs one attempt of f every pause until stop is closed, at most
// for 60 s or max attempts; an error before armed is closed is reported on
// the returned channel (and ends it).
func loop(stop, armed <-chan struct{}, pause time.Duration, max int, into *attempts, f func(i int) error) <-chan error {
	res := make(chan error, 1)
	go func() {
		defer close(res)
		end := time.Now().Add(60 * time.Second)
		for i := 1; i <= max && time.Now().Before(end); i++ {
			select {
			case <-stop:
				return
			default:
			}
			sent := time.Now()
			err := f(i)
			x := attempt{sent: sent, done: time.Now()}
			select {
			case <-armed:
			default:
				if err != nil {
					res <- fmt.Errorf("attempt %d before the test armed it: %v", i, err)
					return
				}
			}
			if err != nil {
				x.err = err.Error()
			}
			into.add(x)
			time.Sleep(pause)
		}
	}()
	return res
}

// freshReply is THROTTLE's reply for a fresh key with 15 30 60 1.
var freshReply = []any{int64(0), int64(16), int64(15), int64(-1), int64(2)}

// doer is a go-redis client, plain or cluster.
type doer interface {
	Do(ctx context.Context, args ...any) *redis.Cmd
}

func freshThrottle(ctx context.Context, c doer, key string) error {
	v, err := c.Do(ctx, "THROTTLE", key, 15, 30, 60, 1).Result()
	if err == nil && fmt.Sprint(v) != fmt.Sprint(freshReply) {
		err = fmt.Errorf("THROTTLE %s replied %v, want %v", key, v, freshReply)
	}
	return err
}

// servedBy polls THROTTLE of keys with tag directly on addr (no
// redirection) from t0 until it is served there, and returns when that
// was; it gives up when stop is closed.
func servedBy(addr, tag string, stop <-chan struct{}) <-chan time.Time {
	res := make(chan time.Time, 1)
	go func() {
		c := plainClient(addr)
		defer c.Close()
		for i := 0; ; i++ {
			if freshThrottle(context.Background(), c, fmt.Sprintf("{%s}:served:%d", tag, i)) == nil {
				res <- time.Now()
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return res
}

// window reports one client's error window after t0 (failing the test
// when it never recovered or took more than 30 s) and returns it.
func window(t *testing.T, name string, a *attempts, t0 time.Time) time.Duration {
	t.Helper()
	done, ok, errs, first := a.recovered(t0)
	if !ok {
		t.Errorf("%s: no success on the failed primary's slots sent after it failed (%d errors, first: %s)", name, errs, first)
		return 0
	}
	w := done.Sub(t0)
	t.Logf("%s: first success %.2f s after the failure (%d errors before it: %s)", name, w.Seconds(), errs, first)
	if w > 30*time.Second {
		t.Errorf("%s: error window %.1f s, want under 30 s", name, w.Seconds())
	}
	return w
}

// failed counts a's errors.
func failed(a *attempts) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, x := range a.list {
		if x.err != "" {
			n++
		}
	}
	return n
}

// awaitRecovered waits until a has a success sent at or after t0.
func awaitRecovered(t *testing.T, ec *etcdCluster, name string, a *attempts, t0 time.Time) {
	t.Helper()
	ec.await(t, name+" served on the failed primary's slots", func() error {
		if _, ok, errs, first := a.recovered(t0); !ok {
			return fmt.Errorf("%d errors, first: %s", errs, first)
		}
		return nil
	})
}

// TestEtcdFailoverProcesses: etcd and six sluice processes form three
// primaries with a replica each; go-redis (client.NewClusterClient),
// redis-py's RedisCluster, ioredis's Cluster and redis-cli -c each run the
// exact-reply sequence through them. Then, under a bounded go-redis load,
// the primary of slot 0 is killed with SIGKILL while every client sends
// commands for its slots: its replica serves them again and
// every client gets served again (redis-py by a new RedisCluster after
// its reload failed, as README's Failover table says); each client's
// error window is logged, and bounded by 30 s. The killed node, restarted
// on its data directory, rejoins as the replica of its successor. Last,
// another primary is stopped with SIGSTOP: its replica takes its slots
// (go-redis measured with the default ReadTimeout and with 500 ms); after
// SIGCONT the old primary, now out of the map, registers again and rejoins
// as the replica of its successor, redirecting its old slots (under the
// serve policy it keeps them only until it reads the newer map).
func TestEtcdFailoverProcesses(t *testing.T) {
	began := time.Now()
	endpoint := startEtcdProcess(t)
	cli := lookPath(t, "redis-cli", "apt-get install redis-tools")
	requirePython(t, "redis", "python3-redis")
	node := requireNodeClients(t)
	ctx := context.Background()

	ec := &etcdCluster{endpoint: endpoint}
	for range 6 {
		n := &etcdNode{dir: t.TempDir()}
		ec.start(t, n)
		ec.nodes = append(ec.nodes, n)
	}
	v, _ := ec.awaitShape(t, "3 primaries with a replica each, every slot covered, on every node", 1, 1, 1)

	// The exact-reply sequence through each client.
	setClock := func(ns int64) { ec.setClock(t, ns) }
	var primaries []string
	for _, sh := range v.shards {
		primaries = append(primaries, sh.master)
	}
	t.Run("go-redis", func(t *testing.T) {
		ec.flushPrimaries(t, v)
		cc := client.NewClusterClient(&redis.ClusterOptions{Addrs: ec.addrs()})
		defer cc.Close()
		goRedisClusterSequence(t, cc, setClock)
	})
	t.Run("redis-py", func(t *testing.T) {
		// The script flushes and sets the clock of the nodes it is given.
		out, err := run(t, 60*time.Second, []string{"SLUICE_CLUSTER_ADDRS=" + strings.Join(primaries, ","), "PYTHONDONTWRITEBYTECODE=1"},
			"python", systemPython, "-m", "unittest", "-v", "test_redis_cluster")
		if err != nil || !strings.Contains(out, "\nOK") {
			t.Fatalf("redis-py RedisCluster: %v\n%s", err, lastLines(out, 30))
		}
	})
	t.Run("ioredis", func(t *testing.T) {
		out, err := run(t, 60*time.Second, []string{"SLUICE_ADDR=" + primaries[0], "SLUICE_CLUSTER_ADDRS=" + strings.Join(ec.addrs(), ",")},
			"node", node, "--test", "--test-reporter=spec", "ioredis-cluster.test.mjs")
		if err != nil {
			t.Fatalf("ioredis Cluster: %v\n%s", err, lastLines(out, 30))
		}
	})
	t.Run("redis-cli", func(t *testing.T) {
		ec.flushPrimaries(t, v)
		redisCLIClusterSequence(t, cli, ec.byID(v.ids[primaries[0]]).s, setClock)
	})
	if t.Failed() {
		return
	}

	// kill -9 of the primary of slot 0, while every client sends commands
	// for its slots. redis-py 4.3.4 reloads its map from the nodes it
	// knows in CLUSTER SLOTS order, and its reload fails
	// (RedisClusterException: it deep-copies the client) when the first of
	// them is the dead node: the README's case, where a new RedisCluster
	// is needed. The controller runs on this node or not, as elected.
	victim := ec.byID(v.ids[v.shardAt(0).master])
	heir := ec.byID(v.ids[v.shardOf(victim.addr()).replicas[0]])
	var other *etcdNode // a primary redis-cli starts at
	for _, p := range primaries {
		if n := ec.byID(v.ids[p]); n != victim {
			other = n
		}
	}
	tag := tagFor(t, v, victim.addr())
	t.Logf("killing primary %s (%s; runs the controller: %v); its replica %s; keys {%s}:…", victim.addr(), victim.id,
		victim == ec.leader(t), heir.addr(), tag)

	env := []string{"SLUICE_CLUSTER_ADDRS=" + strings.Join(ec.addrs(), ","), "SLUICE_FAILOVER_TAG=" + tag}
	py := startScript(t, "redis-py", "python", append(env, "PYTHONDONTWRITEBYTECODE=1", "SLUICE_FAILOVER_NAME=py"),
		systemPython, "etcd_failover_client.py")
	ior := startScript(t, "ioredis", "node", env, node, "ioredis-etcd-failover.mjs")

	stop, armed := make(chan struct{}), make(chan struct{})
	endLoops := sync.OnceFunc(func() { close(stop) })
	t.Cleanup(endLoops) // when the test fails before
	cc := client.NewClusterClient(&redis.ClusterOptions{Addrs: ec.addrs()})
	defer cc.Close()
	// A second go-redis client reloads its map every second instead of
	// every two (client.ClusterStateReloadInterval).
	cc1 := client.NewClusterClient(&redis.ClusterOptions{Addrs: ec.addrs(), ClusterStateReloadInterval: time.Second})
	defer cc1.Close()
	var goRedis, goRedis1, load, cliAttempts attempts
	goDone := loop(stop, armed, time.Millisecond, 20000, &goRedis, func(i int) error {
		return freshThrottle(ctx, cc, fmt.Sprintf("{%s}:go:%d", tag, i))
	})
	go1Done := loop(stop, armed, time.Millisecond, 20000, &goRedis1, func(i int) error {
		return freshThrottle(ctx, cc1, fmt.Sprintf("{%s}:go1:%d", tag, i))
	})
	var otherErrs atomic.Int64 // on the slots of the other primaries
	loadDone := loop(stop, armed, time.Millisecond, 20000, &load, func(i int) error {
		key := fmt.Sprintf("load:%d", i) // every slot
		err := freshThrottle(ctx, cc, key)
		if err != nil && v.shardOf(victim.addr()) != v.shardAt(cluster.Slot([]byte(key))) {
			otherErrs.Add(1)
		}
		return err
	})
	cliDone := loop(stop, armed, 10*time.Millisecond, 3000, &cliAttempts, func(i int) error {
		out, err := run(t, 10*time.Second, nil, "", cli, "-c", "-h", other.s.Host, "-p", strconv.Itoa(other.port),
			"THROTTLE", fmt.Sprintf("{%s}:cli:%d", tag, i), "15", "30", "60", "1")
		if want := "0\n16\n15\n-1\n2"; err == nil && strings.TrimSpace(out) != want {
			err = fmt.Errorf("printed %q, want %q", out, want)
		}
		if err != nil {
			return fmt.Errorf("%v: %s", err, strings.TrimSpace(out))
		}
		return nil
	})
	// Every Go loop has been served before the kill.
	ec.await(t, "the Go clients served before the kill, 200 commands of load", func() error {
		for _, a := range []*attempts{&goRedis, &goRedis1, &load, &cliAttempts} {
			if a.count() == 0 {
				return fmt.Errorf("a loop has no attempt yet")
			}
		}
		if n := load.count(); n < 200 {
			return fmt.Errorf("%d commands of load so far", n)
		}
		return nil
	})
	py.arm(t)
	ior.arm(t)
	close(armed)
	t0 := time.Now()
	victim.s.kill9(t)
	victim.down = true
	served := servedBy(heir.addr(), tag, stop)
	awaitRecovered(t, ec, "go-redis", &goRedis, t0)
	awaitRecovered(t, ec, "go-redis reloading every second", &goRedis1, t0)
	awaitRecovered(t, ec, "redis-cli -c", &cliAttempts, t0)
	awaitRecovered(t, ec, py.name, &py.attempts, t0)
	awaitRecovered(t, ec, "ioredis", &ior.attempts, t0)
	var servedAt time.Time
	select {
	case servedAt = <-served:
	case <-time.After(30 * time.Second):
		t.Fatalf("the replica %s does not serve the slots 30 s after its primary was killed\n%s", heir.addr(), ec.logs())
	}
	endLoops()
	py.end(t)
	ior.end(t)
	for _, ch := range []<-chan error{goDone, go1Done, loadDone, cliDone} {
		if err := <-ch; err != nil {
			t.Error(err)
		}
	}
	t.Logf("kill -9 (lease TTL %s): the replica serves the slots %.2f s after the kill", etcdLeaseTTL, servedAt.Sub(t0).Seconds())
	windows := map[string]time.Duration{}
	for name, a := range map[string]*attempts{"go-redis (client.NewClusterClient)": &goRedis, "go-redis with ClusterStateReloadInterval 1 s": &goRedis1,
		"redis-py (a new RedisCluster on RedisClusterException)": &py.attempts,
		"ioredis (slotsRefreshInterval 2000)":                    &ior.attempts, "redis-cli -c": &cliAttempts} {
		windows[name] = window(t, name, a, t0)
	}
	t.Logf("go-redis load on every slot: %d of %d commands failed, %d of them on the other primaries' slots",
		failed(&load), load.count(), otherErrs.Load())
	v, _ = ec.awaitShape(t, "the killed primary out of the map, its replica a primary, every slot covered", 1, 1, 0)
	if s := v.shardOf(heir.addr()); s == nil || s.master != heir.addr() {
		t.Fatalf("the killed primary's replica %s is not a primary:\n%s", heir.addr(), v)
	}

	// The killed node restarts on its data directory: same id (checked by
	// start), back as a replica of the master without one.
	ec.start(t, victim)
	v, rejoin := ec.awaitShape(t, "the restarted node back as a replica, 3 primaries with a replica each", 1, 1, 1)
	if s := v.shardOf(victim.addr()); s == nil || s.master != heir.addr() {
		t.Fatalf("the restarted node %s is not the replica of %s:\n%s", victim.addr(), heir.addr(), v)
	}

	// SIGSTOP of another primary that does not run the controller.
	leader := ec.leader(t)
	var frozen *etcdNode
	for _, sh := range v.shards {
		if n := ec.byID(v.ids[sh.master]); n != leader && n != heir {
			frozen = n
			break
		}
	}
	heir2 := ec.byID(v.ids[v.shardOf(frozen.addr()).replicas[0]])
	tag2 := tagFor(t, v, frozen.addr())
	t.Logf("stopping primary %s (%s) with SIGSTOP; its replica %s; keys {%s}:…", frozen.addr(), frozen.id, heir2.addr(), tag2)
	// A stopped node accepts connections and answers nothing: go-redis
	// waits for ReadTimeout (3 s by default) on each try; a second client
	// has a short one.
	stop2, armed2 := make(chan struct{}), make(chan struct{})
	endLoops2 := sync.OnceFunc(func() { close(stop2) })
	t.Cleanup(endLoops2)
	ccShort := client.NewClusterClient(&redis.ClusterOptions{Addrs: ec.addrs(), ReadTimeout: 500 * time.Millisecond})
	defer ccShort.Close()
	var goRedis2, goShort attempts
	goDone2 := loop(stop2, armed2, time.Millisecond, 20000, &goRedis2, func(i int) error {
		return freshThrottle(ctx, cc, fmt.Sprintf("{%s}:go:%d", tag2, i))
	})
	shortDone := loop(stop2, armed2, time.Millisecond, 20000, &goShort, func(i int) error {
		return freshThrottle(ctx, ccShort, fmt.Sprintf("{%s}:short:%d", tag2, i))
	})
	ec.await(t, "go-redis served before SIGSTOP", func() error {
		if goRedis2.count() == 0 || goShort.count() == 0 {
			return fmt.Errorf("no attempt yet")
		}
		return nil
	})
	close(armed2)
	t1 := time.Now()
	if err := frozen.s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozen.down = true
	t.Cleanup(func() { _ = frozen.s.cmd.Process.Signal(syscall.SIGCONT) }) // runs before its stop
	served2 := servedBy(heir2.addr(), tag2, stop2)
	v, _ = ec.awaitShape(t, "the stopped primary out of the map, its replica a primary", 1, 1, 0)
	if s := v.shardOf(heir2.addr()); s == nil || s.master != heir2.addr() {
		t.Fatalf("the stopped primary's replica %s is not a primary:\n%s", heir2.addr(), v)
	}
	awaitRecovered(t, ec, "go-redis", &goRedis2, t1)
	awaitRecovered(t, ec, "go-redis with ReadTimeout 500 ms", &goShort, t1)
	select {
	case servedAt = <-served2:
	case <-time.After(30 * time.Second):
		t.Fatalf("the replica %s does not serve the slots 30 s after its primary was stopped\n%s", heir2.addr(), ec.logs())
	}
	endLoops2()
	for _, ch := range []<-chan error{goDone2, shortDone} {
		if err := <-ch; err != nil {
			t.Error(err)
		}
	}
	t.Logf("SIGSTOP (lease TTL %s): the replica serves the slots %.2f s after the stop", etcdLeaseTTL, servedAt.Sub(t1).Seconds())
	windows["SIGSTOP: go-redis (client.NewClusterClient)"] = window(t, "SIGSTOP: go-redis (client.NewClusterClient)", &goRedis2, t1)
	windows["SIGSTOP: go-redis with ReadTimeout 500 ms"] = window(t, "SIGSTOP: go-redis with ReadTimeout 500 ms", &goShort, t1)

	// SIGCONT: the old primary reads the newer map (it is no longer in it),
	// registers on a new lease and rejoins as a replica.
	if err := frozen.s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	frozen.down = false
	v, back := ec.awaitShape(t, "the resumed node back as a replica, 3 primaries with a replica each", 1, 1, 1)
	if s := v.shardOf(frozen.addr()); s == nil || s.master != heir2.addr() {
		t.Fatalf("the resumed node %s is not the replica of %s:\n%s", frozen.addr(), heir2.addr(), v)
	}
	fc := plainClient(frozen.addr())
	defer fc.Close()
	err := fc.Do(ctx, "THROTTLE", "{"+tag2+"}:after", 15, 30, 60, 1).Err()
	slot, _ := fc.ClusterKeySlot(ctx, tag2).Result()
	if want := fmt.Sprintf("MOVED %d %s", slot, heir2.addr()); err == nil || err.Error() != want {
		t.Errorf("THROTTLE on the resumed node for its old slots: %v, want %s", err, want)
	}
	t.Logf("measured: %v; rejoin after restart %.2f s, after SIGCONT %.2f s; the test ran %.1f s", windows, rejoin.Seconds(), back.Seconds(),
		time.Since(began).Seconds())
}
