package commands

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"testing"
	"time"
)

// BenchmarkTopKeysCost measures what recording decisions for THROTTLE.TOP
// costs on the THROTTLE path, through the real network layer and command
// server on loopback: two servers, one recording (the default) and one
// with NoTopKeys, driven alternately in rounds from the same goroutine, so
// both see the same machine load. Requests are THROTTLE on Zipf-distributed
// keys (10,000 of them, s=1.1; a burst of 5 per minute under a frozen
// clock, so most hot keys are refused and the tail admitted), unpipelined
// and 16 deep. It reports ns per command with and without recording (the
// median round of each) and the median of the paired rounds' ratios: the
// cost is ratio − 1. The control run pits two servers without recording
// against each other: its ratio is what noise alone gives.
func BenchmarkTopKeysCost(b *testing.B) {
	type run struct {
		name    string
		depth   int
		control bool // both servers off: the ratio the noise alone gives
	}
	for _, rn := range []run{{"depth1", 1, false}, {"depth16", 16, false}, {"depth16-control", 16, true}} {
		depth := rn.depth
		b.Run(rn.name, func(b *testing.B) {
			on, off := startServer(b, true), startServerWith(b, Config{EnableDebug: true, NoTopKeys: true})
			if rn.control {
				on = startServerWith(b, Config{EnableDebug: true, NoTopKeys: true})
			}
			batches := throttleBatches(depth)
			conns := []*rawConn{dialRaw(b, on.addr), dialRaw(b, off.addr)}
			for _, c := range conns {
				c.roundTrip(b, []byte("*4\r\n$5\r\nDEBUG\r\n$5\r\nCLOCK\r\n$3\r\nSET\r\n$19\r\n1893456000000000000\r\n"), 1)
				for _, batch := range batches { // warm up: every key exists
					c.roundTrip(b, batch, depth)
				}
			}
			// Short rounds, each paired with the other server's next one:
			// load from other processes changes on a scale of milliseconds.
			perRound := max(400/depth, 1)
			rounds := max(b.N/perRound, 1)
			var perCmd [2][]float64
			var ratios []float64
			b.ReportAllocs()
			b.ResetTimer()
			for r := range rounds {
				var pair [2]float64
				for j := range conns {
					i := (r + j) % 2 // alternate which server goes first
					start := time.Now()
					for k := range perRound {
						conns[i].roundTrip(b, batches[(r*perRound+k)%len(batches)], depth)
					}
					pair[i] = float64(time.Since(start).Nanoseconds()) / float64(perRound*depth)
					perCmd[i] = append(perCmd[i], pair[i])
				}
				ratios = append(ratios, pair[0]/pair[1])
			}
			b.StopTimer()
			median := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
			b.ReportMetric(median(perCmd[0]), "ns/cmd-recording")
			b.ReportMetric(median(perCmd[1]), "ns/cmd-off")
			b.ReportMetric(median(ratios), "ratio")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// throttleBatches pre-encodes 256 batches of depth THROTTLE requests.
func throttleBatches(depth int) [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	z := rand.NewZipf(rng, 1.1, 1, 9999)
	out := make([][]byte, 256)
	for i := range out {
		var buf []byte
		for range depth {
			key := fmt.Sprintf("user:%d", z.Uint64())
			buf = fmt.Appendf(buf, "*5\r\n$8\r\nTHROTTLE\r\n$%d\r\n%s\r\n$1\r\n4\r\n$1\r\n5\r\n$2\r\n60\r\n", len(key), key)
		}
		out[i] = buf
	}
	return out
}

// rawConn is a RESP connection without a client library: the benchmark
// measures the server, not a client's encoding.
type rawConn struct {
	nc net.Conn
	r  *bufio.Reader
}

func dialRaw(b *testing.B, addr string) *rawConn {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { nc.Close() })
	return &rawConn{nc: nc, r: bufio.NewReaderSize(nc, 1<<16)}
}

// roundTrip writes req and reads n replies (each a simple or error line, or
// an array of integers), failing on an error reply.
func (c *rawConn) roundTrip(b *testing.B, req []byte, n int) {
	_ = c.nc.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.nc.Write(req); err != nil {
		b.Fatal(err)
	}
	for range n {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			b.Fatal(err)
		}
		switch line[0] {
		case '-':
			b.Fatalf("error reply %q", line)
		case '*':
			elems := 0
			for _, d := range line[1 : len(line)-2] {
				elems = elems*10 + int(d-'0')
			}
			for range elems {
				if _, err := c.r.ReadSlice('\n'); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
}
