package compat

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// BenchmarkClusterThroughput measures how throughput grows with the number
// of nodes: clusters of 1, 2 and 3 sluice processes, each with
// GOMAXPROCS=1, take the same pipelined THROTTLE load from a go-redis
// ClusterClient (8 workers, pipelines of 64 keys of one hashtag, the tags
// spread over every slot), the clusters taking turns
// in each round, in one run. It reports each cluster's requests per
// second and, per round, the ratio of 2 and 3 nodes to 1 node, as the
// median over rounds: the machine is shared, so only ratios measured
// side by side mean anything. The load generator runs in this process
// and competes for the same cores; on a machine with fewer cores than
// nodes + 1 the ratios show that limit, not the nodes'.
//
//	go test ./compat -run '^$' -bench ClusterThroughput -benchtime 5x
func BenchmarkClusterThroughput(b *testing.B) {
	b.Setenv("GOMAXPROCS", "1") // inherited by the sluice processes
	const (
		workers  = 8    // concurrent pipelines
		pipeline = 64   // THROTTLEs per pipeline
		perRound = 3000 // pipelines per cluster per round
	)
	var clients []*redis.ClusterClient
	for n := 1; n <= 3; n++ {
		clients = append(clients, startBenchCluster(b, n))
	}
	// A pipeline's keys share a hashtag, so it goes to one node, as one
	// client's batch for one user would; the tags spread the pipelines
	// over every node.
	keys := make([][]string, 1024)
	for i := range keys {
		for j := range pipeline {
			keys[i] = append(keys[i], "{bench"+strconv.Itoa(i)+"}:"+strconv.Itoa(j))
		}
	}
	ctx := context.Background()
	run := func(cc *redis.ClusterClient) float64 {
		var wg sync.WaitGroup
		next := make(chan int, perRound)
		for i := range perRound {
			next <- i
		}
		close(next)
		start := time.Now()
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					cmds, err := cc.Pipelined(ctx, func(p redis.Pipeliner) error {
						for _, k := range keys[i%len(keys)] {
							p.Do(ctx, "THROTTLE", k, 999999, 999999, 1, 1)
						}
						return nil
					})
					if err != nil {
						b.Errorf("pipeline: %v (%d commands)", err, len(cmds))
						return
					}
				}
			}()
		}
		wg.Wait()
		return float64(perRound*pipeline) / time.Since(start).Seconds()
	}
	for _, cc := range clients { // warm up: connections, keys created
		run(cc)
	}
	totals := make([]float64, 3)
	var r2, r3 []float64
	b.ResetTimer()
	for round := 0; b.Loop(); round++ {
		var rps [3]float64
		for k := range 3 { // each cluster in turn, starting with another each round
			i := (round + k) % 3
			rps[i] = run(clients[i])
			totals[i] += rps[i]
		}
		r2, r3 = append(r2, rps[1]/rps[0]), append(r3, rps[2]/rps[0])
	}
	median := func(x []float64) float64 { slices.Sort(x); return x[len(x)/2] }
	for i := range 3 {
		b.ReportMetric(totals[i]/float64(b.N), fmt.Sprintf("req/s-%dnode", i+1))
	}
	b.ReportMetric(median(r2), "median-2/1")
	b.ReportMetric(median(r3), "median-3/1")
}

// startBenchCluster starts n sluice processes serving the slots in n even
// ranges and returns a ClusterClient for them.
func startBenchCluster(b *testing.B, n int) *redis.ClusterClient {
	b.Helper()
	var nodes []*sluice
	var lines []string
	for i := range n {
		s := startSluice(b, "--cluster-enabled")
		nodes = append(nodes, s)
		c := redis.NewClient(&redis.Options{Addr: s.Addr})
		id, err := c.Do(context.Background(), "CLUSTER", "MYID").Text()
		_ = c.Close()
		if err != nil {
			b.Fatalf("CLUSTER MYID: %v", err)
		}
		first, last := i*16384/n, (i+1)*16384/n-1
		lines = append(lines, fmt.Sprintf("%s %s %d master - %d-%d", id, s.Host, s.Port, first, last))
	}
	var addrs []string
	for _, s := range nodes {
		c := redis.NewClient(&redis.Options{Addr: s.Addr})
		err := c.Do(context.Background(), "CLUSTERX", "SETNODES", strings.Join(lines, "\n"), 1).Err()
		_ = c.Close()
		if err != nil {
			b.Fatalf("CLUSTERX SETNODES: %v", err)
		}
		addrs = append(addrs, s.Addr)
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, PoolSize: 16})
	b.Cleanup(func() { _ = cc.Close() })
	return cc
}
