package server

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/sluicehq/sluice/cluster"
)

// benchNode is a server on loopback and a raw connection to it.
type benchNode struct {
	conn net.Conn
	r    *bufio.Reader
}

func startBenchNode(b *testing.B, clusterMode bool) *benchNode {
	b.Helper()
	cfg := testConfig()
	cfg.Shards = 256
	cfg.ClusterEnabled = clusterMode
	s, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = s.Serve() }()
	b.Cleanup(func() { _ = s.Shutdown(b.Context()) })
	conn, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	n := &benchNode{conn: conn, r: bufio.NewReaderSize(conn, 1<<16)}
	if clusterMode {
		id := s.state.cluster.View().ID
		host, port, _ := net.SplitHostPort(s.Addr().String())
		text := fmt.Sprintf("%s %s %s master - 0-%d", id, host, port, cluster.Slots-1)
		n.send(b, fmt.Appendf(nil, "*4\r\n$8\r\nCLUSTERX\r\n$8\r\nSETNODES\r\n$%d\r\n%s\r\n$1\r\n1\r\n", len(text), text), 1)
	}
	return n
}

// send writes a pipeline and reads its replies (lines replies in all).
func (n *benchNode) send(b *testing.B, batch []byte, lines int) {
	if _, err := n.conn.Write(batch); err != nil {
		b.Fatal(err)
	}
	for range lines {
		line, err := n.r.ReadSlice('\n')
		if err != nil {
			b.Fatal(err)
		}
		if line[0] == '-' {
			b.Fatalf("error reply: %s", line)
		}
	}
}

// BenchmarkClusterModeOverhead measures the per-request cost of cluster
// mode on one node serving every slot: the same pipelined batches of 256
// THROTTLE (existing keys spread over all slots) go to a node with cluster
// mode off and to one with it on, alternating which goes first, in one
// run. It reports ns per request for each, the ratio of the totals
// (on/off) and the median of the pairs' ratios, which a noisy neighbour
// moves less.
func BenchmarkClusterModeOverhead(b *testing.B) {
	off, on := startBenchNode(b, false), startBenchNode(b, true)
	const perBatch = 256
	var batch []byte
	for i := range perBatch {
		key := "bench:" + strconv.Itoa(i)
		batch = fmt.Appendf(batch, "*6\r\n$8\r\nTHROTTLE\r\n$%d\r\n%s\r\n$9\r\n999999999\r\n$9\r\n999999999\r\n$1\r\n1\r\n$1\r\n1\r\n", len(key), key)
	}
	lines := perBatch * 6     // "*5" and five integers
	off.send(b, batch, lines) // create the keys
	on.send(b, batch, lines)
	var offTime, onTime time.Duration
	var ratios []float64 // on/off of each pair of batches
	timed := func(n *benchNode) time.Duration {
		start := time.Now()
		n.send(b, batch, lines)
		return time.Since(start)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		var o, c time.Duration
		if i%2 == 0 {
			o = timed(off)
			c = timed(on)
		} else {
			c = timed(on)
			o = timed(off)
		}
		offTime, onTime = offTime+o, onTime+c
		ratios = append(ratios, float64(c)/float64(o))
	}
	slices.Sort(ratios)
	reqs := float64(b.N) * perBatch
	b.ReportMetric(float64(offTime.Nanoseconds())/reqs, "off-ns/req")
	b.ReportMetric(float64(onTime.Nanoseconds())/reqs, "on-ns/req")
	b.ReportMetric(float64(onTime)/float64(offTime), "on/off")
	b.ReportMetric(ratios[len(ratios)/2], "median-on/off")
}
