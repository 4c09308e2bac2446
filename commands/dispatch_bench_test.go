package commands

import (
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
