package commands

import (
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// BenchmarkCommandPath measures what one THROTTLE costs through the real
// network layer and command server on loopback, with the real clock (a
// frozen clock would spare the handler its clock read): unpipelined and
// 16 deep, on Zipf-distributed existing keys. Besides wall time it
// reports the process's CPU time per command (user and system, client
// included) from getrusage, which other processes' load moves less: run
// it alternately on two builds to compare them.
func BenchmarkCommandPath(b *testing.B) {
	for _, depth := range []int{1, 16} {
		b.Run(map[int]string{1: "depth1", 16: "depth16"}[depth], func(b *testing.B) {
			ts := startServer(b, false)
			conn := dialRaw(b, ts.addr)
			batches := throttleBatches(depth)
			for _, batch := range batches { // warm up: every key exists
				conn.roundTrip(b, batch, depth)
			}
			rounds := max(b.N/depth, 1)
			cpu := func() time.Duration {
				var ru syscall.Rusage
				_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
				return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
			}
			b.ReportAllocs()
			b.ResetTimer()
			start, cpu0 := time.Now(), cpu()
			for r := range rounds {
				conn.roundTrip(b, batches[r%len(batches)], depth)
			}
			wall, used := time.Since(start), cpu()-cpu0
			b.StopTimer()
			n := float64(rounds * depth)
			b.ReportMetric(float64(wall.Nanoseconds())/n, "ns/cmd")
			b.ReportMetric(float64(used.Nanoseconds())/n, "cpu-ns/cmd")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkCommandPathPaired compares two builds of the server, the
// sluice binaries named by SLUICE_BENCH_A and SLUICE_BENCH_B (skipped
// without them): one client drives both in alternating short rounds of
// THROTTLE (Zipf keys, the real clock), the order swapped every round, so
// both see the same load from other processes, which moves on a scale of
// milliseconds. It reports the median of the rounds' B/A ratios of wall
// time; give the same binary twice for the ratio noise alone gives.
//
//	go build -o /tmp/sluice-old ./cmd/sluice   # on the old commit
//	go build -o /tmp/sluice-new ./cmd/sluice
//	SLUICE_BENCH_A=/tmp/sluice-old SLUICE_BENCH_B=/tmp/sluice-new \
//	  go test -run '^$' -bench CommandPathPaired -benchtime 1500x ./commands
func BenchmarkCommandPathPaired(b *testing.B) {
	binA, binB := os.Getenv("SLUICE_BENCH_A"), os.Getenv("SLUICE_BENCH_B")
	if binA == "" || binB == "" {
		b.Skip("set SLUICE_BENCH_A and SLUICE_BENCH_B to two sluice binaries")
	}
	for _, depth := range []int{1, 16} {
		b.Run(map[int]string{1: "depth1", 16: "depth16"}[depth], func(b *testing.B) {
			conns := []*rawConn{startBinary(b, binA), startBinary(b, binB)}
			batches := throttleBatches(depth)
			for _, c := range conns {
				for _, batch := range batches {
					c.roundTrip(b, batch, depth)
				}
			}
			perRound := max(320/depth, 1)
			var ratios []float64
			b.ResetTimer()
			for r := 0; b.Loop(); r++ {
				var t [2]time.Duration
				for j := range conns {
					i := (r + j) % 2
					start := time.Now()
					for k := range perRound {
						conns[i].roundTrip(b, batches[(r*perRound+k)%len(batches)], depth)
					}
					t[i] = time.Since(start)
				}
				ratios = append(ratios, float64(t[1])/float64(t[0]))
			}
			b.StopTimer()
			slices.Sort(ratios)
			b.ReportMetric(ratios[len(ratios)/2], "B/A")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// startBinary runs a sluice binary on a free loopback port for the length
// of the benchmark and connects to it.
func startBinary(b *testing.B, bin string) *rawConn {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", port, "--log-level", "warn")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if nc, err := net.Dial("tcp", "127.0.0.1:"+port); err == nil {
			nc.Close()
			return dialRaw(b, "127.0.0.1:"+port)
		}
	}
	b.Fatalf("%s did not listen on port %s", bin, port)
	return nil
}
