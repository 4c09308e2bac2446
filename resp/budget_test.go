package resp

import (
	"bytes"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// syncBuffer is a log destination safe for the connections' goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls cond for up to 30 s (generous for a loaded machine; it
// returns as soon as cond holds).
func waitFor(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting: " + msg)
		}
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestQueryBufferTotal: connections that each send a large partial command
// (the attack: 64 connections with partial 32 MB commands took 2.6 GB, kept
// after they closed) share one budget. A connection whose buffer would
// take the total past MaxQueryBufferTotal is closed with a log line, the
// counted bytes never pass the budget, and once the connections close
// every byte they held is given back.
func TestQueryBufferTotal(t *testing.T) {
	// 700 KB of a 750 KB command fill a read buffer grown from 16 KiB to
	// 1 MiB exactly (with a quarter of it still free, so it grows no
	// further, even once the command is whole): each holding connection
	// takes 1 MiB - 16 KiB.
	const perConn = 1<<20 - 16<<10
	logs := &syncBuffer{}
	srv := &Server{
		MaxBulkLen:          800_000,
		MaxQueryBuffer:      2 << 20,
		MaxQueryBufferTotal: 3*perConn + 500_000, // room for three, and half of a fourth
		Logger:              slog.New(slog.NewTextHandler(logs, nil)),
	}
	addr := startServer(t, srv)
	partial := "*2\r\n$4\r\nECHO\r\n$750000\r\n" + strings.Repeat("p", 700_000)
	before := heapInUse()

	var holding []*client
	for i := 1; i <= 3; i++ {
		c := dial(t, addr)
		c.send(partial)
		holding = append(holding, c)
		waitFor(t, func() bool { return srv.Stats().QueryBufferBytes == int64(i*perConn) }, "a holding connection's buffer")
	}
	peak := heapInUse()

	// Over the budget: each further connection is closed, the holding ones
	// keep their buffers, and the total never passes the bound.
	for i := 1; i <= 8; i++ {
		c := dial(t, addr)
		c.send(partial)
		c.expectClosed()
		waitFor(t, func() bool { st := srv.Stats(); return st.EvictedClients == uint64(i) && st.Connected == 3 }, "an eviction")
		st := srv.Stats()
		require.LessOrEqual(t, st.QueryBufferBytes, srv.MaxQueryBufferTotal)
		require.Equal(t, int64(3*perConn), st.QueryBufferBytes, "an evicted connection gives its bytes back")
	}
	assert.Contains(t, logs.String(), "max-query-buffer-total")
	assert.Equal(t, uint64(0), srv.Stats().ProtocolErrors, "an eviction is no protocol error")

	// The holding connections still work: finishing the command is served.
	holding[0].send(strings.Repeat("p", 50_000) + "\r\n")
	reply, err := holding[0].read()
	require.NoError(t, err)
	assert.Len(t, reply, len("*[$ECHO $]")+750_000)

	for _, c := range holding {
		c.nc.Close()
	}
	waitFor(t, func() bool { return srv.Stats().Connected == 0 }, "the connections close")
	assert.Zero(t, srv.Stats().QueryBufferBytes, "closed connections hold nothing")
	after := heapInUse()
	t.Logf("heap in use: %d KiB before, %d KiB with three 1 MiB query buffers, %d KiB after they closed; %d connections evicted",
		before>>10, peak>>10, after>>10, srv.Stats().EvictedClients)
}
