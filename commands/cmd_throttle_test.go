package commands

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/sluicehq/sluice/internal/vectors"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestVectorsEndToEnd replays every reference row over TCP with go-redis,
// in RESP2 and RESP3, setting the server clock with DEBUG CLOCK SET.
func TestVectorsEndToEnd(t *testing.T) {
	wd, err := os.Getwd()
	require.NoError(t, err)
	p, err := vectors.Path(wd)
	require.NoError(t, err)
	f, err := vectors.Load(p)
	require.NoError(t, err)
	require.Len(t, f.Rows, 89)
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("RESP%d", proto), func(t *testing.T) {
			ts := startServer(t, true)
			c := ts.client(t, proto)
			for i, row := range f.Rows {
				setClock(t, c, f.EpochNs+row.TNs)
				args := make([]any, len(row.Args))
				for j, a := range row.Args {
					args[j] = a
				}
				v, err := do(c, args...)
				if row.Expect == nil {
					require.Error(t, err, "row %d %v", i, row.Args)
					assert.True(t, strings.HasPrefix(err.Error(), "ERR "), "row %d: %v", i, err)
					continue
				}
				assert.Equal(t, row.Expect, ints(t, v, err), "row %d %s %v (%s)", i, row.Scenario, row.Args, row.Note)
			}
		})
	}
}

func TestReadmeExample(t *testing.T) {
	ts := startServer(t, true)
	c := ts.client(t, 3)
	setClock(t, c, epoch)
	assert.Equal(t, []int64{0, 16, 15, -1, 2}, call(t, c, "THROTTLE", "user123", 15, 30, 60, 1))
	assert.Equal(t, []int64{0, 16, 14, -1, 4}, call(t, c, "CL.THROTTLE", "user123", 15, 30, 60))
}

// TestConcurrentAdmitsExactlyOverTCP: N connections x M calls on one key at
// one frozen instant admit exactly max_burst+1.
func TestConcurrentAdmitsExactlyOverTCP(t *testing.T) {
	ts := startServer(t, true)
	c := ts.client(t, 2)
	setClock(t, c, epoch)
	const goroutines, calls, burst = 20, 40, 149
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted, limited := 0, 0
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", ts.addr)
			if !assert.NoError(t, err) {
				return
			}
			defer conn.Close()
			r := bufio.NewReader(conn)
			a, l := 0, 0
			for i := 0; i < calls; i++ {
				_, err := fmt.Fprintf(conn, "THROTTLE hot %d 1 60\r\n", burst)
				if !assert.NoError(t, err) {
					return
				}
				reply := readReply(t, r)
				switch {
				case strings.HasPrefix(reply, "*5\r\n:0\r\n"):
					a++
				case strings.HasPrefix(reply, "*5\r\n:1\r\n"):
					l++
				default:
					t.Errorf("unexpected reply %q", reply)
					return
				}
			}
			mu.Lock()
			admitted += a
			limited += l
			mu.Unlock()
		}()
	}
	wg.Wait()
	assert.Equal(t, burst+1, admitted)
	assert.Equal(t, goroutines*calls-(burst+1), limited)
}
