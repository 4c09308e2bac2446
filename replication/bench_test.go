package replication_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchKeys is how many keys the load spreads over: uniform, so nearly
// every request changes a key and is streamed to the replicas.
const benchKeys = 100_000

// load sends total THROTTLE requests over conns connections, depth per
// round trip, with a raw RESP client (no client library in the way).
func load(tb testing.TB, addr string, conns, depth int, total int64) {
	tb.Helper()
	var left atomic.Int64
	left.Store(total)
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer nc.Close()
			br := bufio.NewReaderSize(nc, 64<<10)
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			var req []byte
			for {
				n := min(int64(depth), left.Add(-int64(depth))+int64(depth))
				if n <= 0 {
					return
				}
				req = req[:0]
				for range n {
					k := "bench:" + strconv.Itoa(rng.IntN(benchKeys))
					req = fmt.Appendf(req, "*6\r\n$8\r\nTHROTTLE\r\n$%d\r\n%s\r\n$2\r\n15\r\n$2\r\n30\r\n$2\r\n60\r\n$1\r\n1\r\n", len(k), k)
				}
				if _, err := nc.Write(req); err != nil {
					errs <- err
					return
				}
				for range n * 6 { // "*5" and five integers per reply
					line, err := br.ReadSlice('\n')
					if err != nil {
						errs <- err
						return
					}
					if line[0] == '-' {
						errs <- fmt.Errorf("reply %q", line)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
}

// probeLag writes one key on the primary every 5 ms until stop and times
// how long after the reply the replica serves it (polling EXISTS without
// pause): the replication lag as a reader of the replica sees it. Every
// tenth probe also times WAIT 1 0 after the write: the lag plus the
// acknowledgement's way back.
func probeLag(tb testing.TB, primary, replica *proc, stop <-chan struct{}) (lags, waits []time.Duration) {
	ctx := context.Background()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return lags, waits
		case <-time.After(5 * time.Millisecond):
		}
		k := "probe:" + strconv.Itoa(i)
		if err := primary.rdb.Do(ctx, "THROTTLE", k, 15, 30, 60, 1).Err(); err != nil {
			tb.Error(err)
			return lags, waits
		}
		start := time.Now()
		if i%10 == 0 {
			if n, err := primary.rdb.Do(ctx, "WAIT", 1, 0).Int(); err != nil || n != 1 {
				tb.Errorf("WAIT: %d %v", n, err)
				return lags, waits
			}
			waits = append(waits, time.Since(start))
			continue
		}
		for {
			n, err := replica.rdb.Do(ctx, "EXISTS", k).Int()
			if err != nil {
				tb.Error(err)
				return lags, waits
			}
			if n == 1 {
				break
			}
		}
		lags = append(lags, time.Since(start))
	}
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// BenchmarkPrimaryWithReplica measures a primary's THROTTLE throughput
// with no replica and with one attached (sluice processes sharing the
// machine's CPUs with the load generator, this process), unpipelined and
// 16 deep, over 50 connections and uniform keys; with a replica it also reports the
// replication lag: the time from a change's reply to WAIT 1 confirming the
// replica applied it, p50 and p99. replicas=1+ack runs the primary with
// --min-replicas-ack 1 (every reply waits for the replica's
// acknowledgement). Compare the ops/s of replicas=0, replicas=1 and
// replicas=1+ack of the same run:
//
//	go test -run '^$' -bench PrimaryWithReplica -benchtime 400000x -count 3 ./replication
func BenchmarkPrimaryWithReplica(b *testing.B) {
	for _, depth := range []int{1, 16} {
		for _, mode := range []string{"replicas=0", "replicas=1", "replicas=1+ack", "replicas=1+probe"} {
			b.Run(fmt.Sprintf("p%d/%s", depth, mode), func(b *testing.B) {
				var args []string
				if mode == "replicas=1+ack" { // every admitting reply waits for the replica
					args = []string{"--min-replicas-ack", "1"}
				}
				primary := startProc(b, args...)
				var replica *proc
				if mode != "replicas=0" {
					replica = startProc(b, "--replicaof", "127.0.0.1 "+strconv.Itoa(primary.port))
					replica.linkUp(b)
				}
				load(b, primary.addr, 50, depth, 50_000) // warm up: keys and buffers
				stop := make(chan struct{})
				var lags, waits []time.Duration
				var probed sync.WaitGroup
				if mode == "replicas=1+probe" {
					// The probe polls the replica without pause, which
					// keeps a CPU busy: its runs measure lag, not
					// throughput.
					probed.Add(1)
					go func() { defer probed.Done(); lags, waits = probeLag(b, primary, replica, stop) }()
				}
				b.ResetTimer()
				start := time.Now()
				load(b, primary.addr, 50, depth, int64(b.N))
				elapsed := time.Since(start)
				b.StopTimer()
				close(stop)
				probed.Wait()
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
				if lags != nil {
					b.ReportMetric(float64(percentile(lags, 0.5).Microseconds())/1000, "lag-p50-ms")
					b.ReportMetric(float64(percentile(lags, 0.99).Microseconds())/1000, "lag-p99-ms")
					b.ReportMetric(float64(len(lags)), "lag-samples")
					b.ReportMetric(float64(percentile(waits, 0.99).Microseconds())/1000, "wait-p99-ms")
				}
			})
		}
	}
}

// BenchmarkFullResync1M times a replica's full resync from a primary
// holding 1,000,000 keys, from REPLICAOF to the link streaming (both
// sluice processes on loopback):
//
//	go test -run '^$' -bench FullResync1M -benchtime 1x ./replication
func BenchmarkFullResync1M(b *testing.B) {
	primary := startProc(b)
	ctx := context.Background()
	const keys = 1_000_000
	for i := 0; i < keys; i += 1000 {
		pipe := primary.rdb.Pipeline()
		for j := i; j < i+1000; j++ {
			pipe.Do(ctx, "THROTTLE", "k:"+strconv.Itoa(j), 15, 30, 3600, 1)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		replica := startProc(b)
		b.StartTimer()
		start := time.Now()
		replica.must(b, "REPLICAOF", "127.0.0.1", primary.port)
		replica.linkUp(b)
		b.ReportMetric(time.Since(start).Seconds(), "s/resync")
		b.StopTimer()
		if got := replica.must(b, "DBSIZE"); got != int64(keys) {
			b.Fatalf("replica holds %v keys", got)
		}
		replica.kill9(b)
	}
}
