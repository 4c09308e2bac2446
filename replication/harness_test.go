package replication_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sluicehq/sluice/server"
	"github.com/stretchr/testify/require"
)

// epoch is the instant the tests freeze clocks at (2030-01-01).
const epoch int64 = 1893456000000000000

// node is a real server (server.New) on a loopback port.
type node struct {
	t    testing.TB
	srv  *server.Server
	addr string
	host string
	port int
	rdb  *redis.Client
	logs *logBuffer
	done chan struct{}
	once sync.Once
}

// logBuffer keeps a server's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// startNode starts a server with DEBUG on, tuned by tune, stopped at the
// end of the test.
func startNode(t testing.TB, tune func(*server.Config)) *node {
	t.Helper()
	cfg := server.Default()
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.Shards = 8
	cfg.EnableDebug = true
	if tune != nil {
		tune(&cfg)
	}
	logs := &logBuffer{}
	srv, err := server.New(cfg, slog.New(slog.NewTextHandler(io.MultiWriter(logs), &slog.HandlerOptions{Level: slog.LevelDebug})))
	require.NoError(t, err)
	addr := srv.Addr().String()
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	n := &node{t: t, srv: srv, addr: addr, host: host, port: p, logs: logs, done: make(chan struct{})}
	go func() { defer close(n.done); _ = srv.Serve() }()
	n.rdb = redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, MaxRetries: -1, PoolSize: 16,
		Password: cfg.RequirePass, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second})
	t.Cleanup(n.stop)
	if cfg.DataDir != "" { // recovery runs after the port opens
		eventually(t, func() bool { return n.info("persistence")["loading"] == "0" }, "recovered")
	}
	return n
}

// stop shuts the server down gracefully.
func (n *node) stop() {
	n.once.Do(func() {
		_ = n.rdb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = n.srv.Shutdown(ctx)
		<-n.done
	})
}

// do runs one command and returns its reply.
func (n *node) do(args ...any) (any, error) {
	return n.rdb.Do(context.Background(), args...).Result()
}

// must runs one command that must succeed.
func (n *node) must(args ...any) any {
	n.t.Helper()
	v, err := n.do(args...)
	require.NoError(n.t, err, "%v", args)
	return v
}

// info returns the fields of an INFO section.
func (n *node) info(section string) map[string]string {
	n.t.Helper()
	s, ok := n.must("INFO", section).(string)
	require.True(n.t, ok)
	out := map[string]string{}
	for _, line := range strings.Split(s, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "#") {
			out[k] = v
		}
	}
	return out
}

// setClock freezes the clocks of every node at ns.
func setClock(t testing.TB, ns int64, nodes ...*node) {
	t.Helper()
	for _, n := range nodes {
		require.Equal(t, "OK", n.must("DEBUG", "CLOCK", "SET", ns))
	}
}

// follow makes replica follow primary (at addr, default primary's) and
// waits until its link is up.
func follow(t testing.TB, replica *node, host string, port int) {
	t.Helper()
	require.Equal(t, "OK", replica.must("REPLICAOF", host, port))
	eventually(t, func() bool { return replica.info("replication")["master_link_status"] == "up" },
		"replica link up:\n"+replica.logs.String())
}

// eventually polls cond until it holds, failing after 30 s (tests share a
// loaded machine).
func eventually(t testing.TB, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting: " + msg)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitReplicas runs WAIT n on primary and requires n acknowledgements.
func waitReplicas(t testing.TB, primary *node, n int) {
	t.Helper()
	require.EqualValues(t, n, primary.must("WAIT", n, 20000), "WAIT %d", n)
}

// proxy forwards connections to a target, and can cut them all and refuse
// new ones for a while: a network partition between a replica and its
// primary.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	down   bool
	stall  chan struct{} // non-nil: forwarding waits until it is closed
}

func startProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return startProxyOn(t, ln, target)
}

// startProxyOn is startProxy on a listener of the caller's (whose port a
// node may need to know before target starts).
func startProxyOn(t testing.TB, ln net.Listener, target string) *proxy {
	t.Helper()
	p := &proxy{ln: ln, target: target}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.setStalled(false); p.cut() })
	return p
}

func (p *proxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.mu.Unlock()
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go func() { p.forward(s, c); s.Close() }()
		go func() { p.forward(c, s); c.Close() }()
	}
}

// forward copies src to dst, holding each chunk while the proxy stalls.
func (p *proxy) forward(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			stall := p.stall
			p.mu.Unlock()
			if stall != nil {
				<-stall
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// setStalled holds (true) or releases (false) every byte in transit: a
// link that stays connected but delivers nothing.
func (p *proxy) setStalled(v bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case v && p.stall == nil:
		p.stall = make(chan struct{})
	case !v && p.stall != nil:
		close(p.stall)
		p.stall = nil
	}
}

// cut closes every forwarded connection.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// setDown refuses (true) or accepts (false) new connections.
func (p *proxy) setDown(v bool) {
	p.mu.Lock()
	p.down = v
	p.mu.Unlock()
}

// key names the i-th key of a test.
func key(i int) string { return fmt.Sprintf("key:%d", i) }
