package resp

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readPaths runs f with readiness-driven reads (the default for TCP) and
// with plain net.Conn reads (the path TLS connections take).
func readPaths(t *testing.T, f func(t *testing.T, srv *Server)) {
	for _, plain := range []bool{false, true} {
		name := "ready"
		if plain {
			name = "plain"
		}
		t.Run(name, func(t *testing.T) { f(t, &Server{plainReads: plain}) })
	}
}

// TestReadyNoReadWouldBlock: unpipelined round trips cost one read each on
// a TCP connection. Each read that finds the socket empty (EAGAIN) is
// counted; plain net.Conn reads make one per request, readiness-driven
// reads only when entering the wait (once per connection here) or after a
// rare stale readiness mark.
func TestReadyNoReadWouldBlock(t *testing.T) {
	srv := &Server{}
	addr := startServer(t, srv)
	c := dial(t, addr)
	const rounds = 1000
	for i := range rounds {
		c.send(cmd("ECHO", strconv.Itoa(i)))
		c.expect("*[$ECHO $" + strconv.Itoa(i) + "]")
	}
	empty := srv.wouldBlock.Load()
	t.Logf("%d reads found the socket empty in %d round trips", empty, rounds)
	assert.Less(t, empty, uint64(rounds/10), "reads that found the socket empty, for %d round trips", rounds)
}

// TestReadyRequestArrivesWhileBusy: a request that arrives while the
// previous one is being served (after the read that drained the socket)
// is served. The poller has already reported it readable by the time the
// connection waits, so a wait that dropped that mark would hang here.
func TestReadyRequestArrivesWhileBusy(t *testing.T) {
	readPaths(t, func(t *testing.T, srv *Server) {
		h := &testHandler{release: make(chan struct{}), entered: make(chan struct{})}
		srv.Handler = h
		addr := startServer(t, srv)
		c := dial(t, addr)
		for i := range 50 {
			c.send(cmd("SLOW"))
			<-h.entered
			c.send(cmd("ECHO", strconv.Itoa(i)))
			h.release <- struct{}{}
			c.expect("+SLOWDONE")
			c.expect("*[$ECHO $" + strconv.Itoa(i) + "]")
		}
	})
}

// TestReadyLargeAndFragmented: requests larger than the read buffer (reads
// that fill it, followed at once by another read) and requests sent in
// small pieces are served whole, pipelined and not.
func TestReadyLargeAndFragmented(t *testing.T) {
	readPaths(t, func(t *testing.T, srv *Server) {
		addr := startServer(t, srv)
		c := dial(t, addr)
		big := strings.Repeat("y", 100_000) // > the 16 KiB initial buffer
		var b strings.Builder
		for i := range 20 {
			b.WriteString(cmd("ECHO", strconv.Itoa(i), big))
		}
		c.send(b.String())
		for i := range 20 {
			c.expect("*[$ECHO $" + strconv.Itoa(i) + " $" + big + "]")
		}
		req := cmd("ECHO", "pieces")
		for i := range len(req) {
			c.send(req[i : i+1])
		}
		c.expect("*[$ECHO $pieces]")
	})
}

// TestReadyCloseWakesAndDoesNotBlock: Conn.Close ends a connection waiting
// for a request and one whose command is running, from another goroutine,
// without waiting for that command; the command's reply is not sent.
func TestReadyCloseWakesAndDoesNotBlock(t *testing.T) {
	readPaths(t, func(t *testing.T, srv *Server) {
		h := &testHandler{release: make(chan struct{}), entered: make(chan struct{}, 1)}
		opened := make(chan *Conn, 2)
		closed := make(chan uint64, 2)
		srv.Handler, srv.OnOpen, srv.OnClose = h, func(c *Conn) { opened <- c }, func(c *Conn) { closed <- c.ID() }
		addr := startServer(t, srv)

		waiting := dial(t, addr)
		waiting.send(cmd("PING"))
		waiting.expect("*[$PING]")
		wc := <-opened
		require.NoError(t, wc.Close())
		waiting.expectClosed()
		assert.Equal(t, wc.ID(), <-closed)

		busy := dial(t, addr)
		bc := <-opened
		busy.send(cmd("SLOW"))
		<-h.entered
		returned := make(chan struct{})
		go func() { bc.Close(); close(returned) }()
		select {
		case <-returned:
		case <-time.After(10 * time.Second):
			t.Fatal("Close waited for the running command")
		}
		close(h.release)
		busy.expectClosed()
		assert.Equal(t, bc.ID(), <-closed)
	})
}
