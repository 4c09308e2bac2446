package resp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testHandler echoes args as an array, with a few special commands.
type testHandler struct {
	release chan struct{} // SLOW waits on it
	entered chan struct{} // SLOW signals it
}

func (h *testHandler) ServeRESP(c *Conn, args [][]byte) {
	switch strings.ToUpper(string(args[0])) {
	case "PANIC":
		panic("test panic")
	case "QUIT":
		c.WriteSimple("OK")
		c.CloseAfterReply()
	case "AUTH":
		c.SetAuthenticated(true)
		c.WriteSimple("OK")
	case "HELLO":
		if len(args) > 1 && string(args[1]) == "3" {
			c.SetProto(3)
		}
		c.WriteInt(int64(c.Proto()))
	case "ID":
		c.WriteInt(int64(c.ID()))
	case "TYPES":
		c.WriteArray(9)
		c.WriteNull()
		c.WriteNullArray()
		c.WriteMap(1)
		c.WriteBulkString("k")
		c.WriteInt(1)
		c.WriteSet(1)
		c.WriteBulk([]byte("m"))
		c.WriteBool(true)
		c.WriteBool(false)
		c.WriteDouble(1.5)
		c.WriteVerbatim("txt", "hi")
		c.WriteError("ERR bad\r\nthing")
	case "BUFSIZE":
		c.WriteArray(2)
		c.WriteInt(int64(len(c.rd.buf)))
		c.WriteInt(int64(cap(c.wbuf)))
	case "BIG":
		n, _ := strconv.Atoi(string(args[1]))
		c.WriteBulkString(strings.Repeat("x", n))
	case "DETACH": // see TestDetach
		c.WriteSimple("DETACHED")
		c.Detach(func(nc net.Conn, buffered []byte) {
			fmt.Fprintf(nc, "buffered:%s\r\n", buffered)
			buf := make([]byte, 64)
			for {
				n, err := nc.Read(buf)
				if err != nil {
					return
				}
				fmt.Fprintf(nc, "raw:%s\r\n", buf[:n])
			}
		})
	case "SLOW":
		h.entered <- struct{}{}
		<-h.release
		c.WriteSimple("SLOWDONE")
	default:
		c.WriteArray(len(args))
		for _, a := range args {
			c.WriteBulk(a)
		}
	}
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startServer serves srv on 127.0.0.1:0 and returns its address. The
// server is closed at test end and Serve's result checked.
func startServer(t testing.TB, srv *Server) string {
	t.Helper()
	if srv.Handler == nil {
		srv.Handler = &testHandler{}
	}
	if srv.Logger == nil {
		srv.Logger = quietLogger()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		select {
		case err := <-done:
			assert.ErrorIs(t, err, ErrServerClosed)
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return")
		}
	})
	return ln.Addr().String()
}

type client struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	require.NoError(t, nc.SetDeadline(time.Now().Add(10*time.Second)))
	return &client{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (c *client) send(s string) {
	c.t.Helper()
	_, err := c.nc.Write([]byte(s))
	require.NoError(c.t, err)
}

func cmd(args ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.String()
}

// read reads one reply and renders it compactly.
func (c *client) read() (string, error) {
	line, err := c.br.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errors.New("empty line")
	}
	switch line[0] {
	case '$', '=':
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return line, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(c.br, buf); err != nil {
			return "", err
		}
		return line[:1] + string(buf[:n]), nil
	case '*', '%', '~', '>':
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return line, nil
		}
		if line[0] == '%' {
			n *= 2
		}
		parts := []string{}
		for range n {
			p, err := c.read()
			if err != nil {
				return "", err
			}
			parts = append(parts, p)
		}
		return line[:1] + "[" + strings.Join(parts, " ") + "]", nil
	}
	return line, nil
}

func (c *client) expect(want string) {
	c.t.Helper()
	got, err := c.read()
	require.NoError(c.t, err)
	require.Equal(c.t, want, got)
}

// expectClosed asserts the server closes the connection (EOF/reset).
func (c *client) expectClosed() {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.br.ReadByte()
	require.Error(c.t, err)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.t.Fatal("connection not closed by server")
	}
}

// eventually polls cond until it holds or 5s pass.
func eventually(t testing.TB, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting: " + msg)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestServerPipelining(t *testing.T) {
	srv := &Server{}
	addr := startServer(t, srv)
	c := dial(t, addr)
	var b strings.Builder
	for i := range 100 {
		b.WriteString(cmd("ECHO", strconv.Itoa(i)))
	}
	b.WriteString("PING inline\r\n")
	c.send(b.String())
	for i := range 100 {
		c.expect("*[$ECHO $" + strconv.Itoa(i) + "]")
	}
	c.expect("*[$PING $inline]")
	c.send(cmd("ID"))
	c.expect(":1")
	assert.Equal(t, int64(1), srv.Stats().Connected)
	assert.Positive(t, srv.Stats().BytesIn)
	assert.Positive(t, srv.Stats().BytesOut)
}

func TestServerWriters(t *testing.T) {
	addr := startServer(t, &Server{})
	c := dial(t, addr)
	c.send(cmd("TYPES"))
	c.expect("*[$-1 *-1 *[$k :1] *[$m] :1 :0 $1.5 $hi -ERR bad  thing]")
	c.send(cmd("HELLO", "3") + cmd("TYPES"))
	c.expect(":3")
	c.expect("*[_ _ %[$k :1] ~[$m] #t #f ,1.5 =txt:hi -ERR bad  thing]")
}

func TestWriterEncodings(t *testing.T) {
	c := &Conn{}
	c.proto.Store(3)
	c.WriteDouble(1e300)
	c.WriteDouble(-0.1)
	c.WriteDouble(math.Inf(1))
	c.WriteDouble(math.Inf(-1))
	c.WriteDouble(math.NaN())
	c.WriteVerbatim("markdown", "x")
	c.WritePush(2)
	c.WriteRaw([]byte("+RAW\r\n"))
	assert.Equal(t, ",1e+300\r\n,-0.1\r\n,inf\r\n,-inf\r\n,nan\r\n=5\r\ntxt:x\r\n>2\r\n+RAW\r\n", string(c.wbuf))
	c.wbuf = c.wbuf[:0]
	c.proto.Store(2)
	c.WriteDouble(2)
	c.WriteMap(3)
	c.WritePush(1)
	c.WriteSimple("a\nb")
	assert.Equal(t, "$1\r\n2\r\n*6\r\n*1\r\n+a b\r\n", string(c.wbuf))
}

func TestServerCloseAfterReply(t *testing.T) {
	addr := startServer(t, &Server{})
	c := dial(t, addr)
	c.send(cmd("ECHO", "a") + cmd("QUIT") + cmd("ECHO", "never"))
	c.expect("*[$ECHO $a]")
	c.expect("+OK")
	c.expectClosed()
}

func TestServerProtocolErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"*1\r\n$9223372036854775807\r\nx", "-ERR Protocol error: invalid bulk length"},
		{"*3000000000\r\n", "-ERR Protocol error: invalid multibulk length"},
		{"*1\r\n*1\r\n", "-ERR Protocol error: expected '$', got '*'"},
		{"SET \"a\r\n", "-ERR Protocol error: unbalanced quotes in request"},
	}
	srv := &Server{}
	addr := startServer(t, srv)
	for i, tt := range tests {
		c := dial(t, addr)
		c.send(cmd("ECHO", "before") + tt.in)
		c.expect("*[$ECHO $before]")
		c.expect(tt.want)
		c.expectClosed()
		assert.Equal(t, uint64(i+1), srv.Stats().ProtocolErrors)
	}
	c := dial(t, addr) // the server still answers a fresh client
	c.send(cmd("PING"))
	c.expect("*[$PING]")
}

func TestServerHTTPCloses(t *testing.T) {
	srv := &Server{}
	addr := startServer(t, srv)
	c := dial(t, addr)
	c.send("POST / HTTP/1.1\r\nHost: localhost\r\n\r\n")
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c.br)
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "connection not closed")
	assert.Empty(t, b, "no reply expected")
	assert.Equal(t, uint64(1), srv.Stats().ProtocolErrors)
}

func TestServerShrinksBuffers(t *testing.T) {
	srv := &Server{shrinkDelay: 50 * time.Millisecond}
	addr := startServer(t, srv)
	c := dial(t, addr)
	big := strings.Repeat("b", 200<<10)
	c.send(cmd("ECHO", big) + cmd("BUFSIZE"))
	c.expect("*[$ECHO $" + big + "]")
	got, err := c.read()
	require.NoError(t, err)
	require.NotEqual(t, "*[:16384 :4096]", got, "buffers should have grown")
	eventually(t, func() bool {
		c.send(cmd("BUFSIZE"))
		got, err := c.read()
		require.NoError(t, err)
		if got == "*[:16384 :4096]" {
			return true
		}
		time.Sleep(20 * time.Millisecond)
		return false
	}, "buffers shrink back")
}

func TestServerPanicRecovery(t *testing.T) {
	srv := &Server{}
	addr := startServer(t, srv)
	c := dial(t, addr)
	c.send(cmd("PANIC"))
	c.expectClosed()
	eventually(t, func() bool { return srv.Stats().PanicsRecovered == 1 }, "panic counted")
	c2 := dial(t, addr)
	c2.send(cmd("PING"))
	c2.expect("*[$PING]")
}

func TestServerMaxClients(t *testing.T) {
	srv := &Server{MaxClients: 2}
	addr := startServer(t, srv)
	c1, c2 := dial(t, addr), dial(t, addr)
	c1.send(cmd("PING"))
	c1.expect("*[$PING]")
	c2.send(cmd("PING"))
	c2.expect("*[$PING]")
	c3 := dial(t, addr)
	b, err := io.ReadAll(c3.br)
	require.NoError(t, err)
	assert.Equal(t, "-ERR max number of clients reached\r\n", string(b))
	assert.Equal(t, uint64(1), srv.Stats().Rejected)
	assert.Equal(t, uint64(2), srv.Stats().TotalConnections)
	c1.nc.Close()
	eventually(t, func() bool { return srv.Stats().Connected == 1 }, "slot freed")
	c4 := dial(t, addr)
	c4.send(cmd("PING"))
	c4.expect("*[$PING]")
}

func TestServerPreAuth(t *testing.T) {
	srv := &Server{AuthRequired: true}
	addr := startServer(t, srv)
	c := dial(t, addr)
	args := make([]string, 11)
	for i := range args {
		args[i] = "a"
	}
	// Headers only, so no unread payload can turn the close into a reset.
	c.send("*11\r\n")
	c.expect("-ERR Protocol error: invalid multibulk length")
	c.expectClosed()

	c = dial(t, addr)
	c.send("*2\r\n$4\r\nECHO\r\n$16385\r\n")
	c.expect("-ERR Protocol error: invalid bulk length")
	c.expectClosed()

	c = dial(t, addr)
	c.send(cmd("AUTH", "pw") + cmd(args...) + cmd("ECHO", strings.Repeat("x", 16385)))
	c.expect("+OK")
	c.expect("*[" + strings.TrimSpace(strings.Repeat("$a ", 11)) + "]")
	c.expect("*[$ECHO $" + strings.Repeat("x", 16385) + "]")
}

func TestServerWriteTimeout(t *testing.T) {
	srv := &Server{WriteTimeout: 200 * time.Millisecond, MaxPendingReply: 4096}
	addr := startServer(t, srv)
	c := dial(t, addr)
	if tc, ok := c.nc.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4096)
	}
	// Flood big replies without reading until the server gives up.
	req := []byte(strings.Repeat(cmd("BIG", "65536"), 16))
	start := time.Now()
	for {
		_ = c.nc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := c.nc.Write(req); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if srv.Stats().Connected == 0 {
					break
				}
				continue
			}
			break // reset by the server
		}
		require.Less(t, time.Since(start), 10*time.Second, "server never closed the flooding client")
	}
	eventually(t, func() bool { return srv.Stats().Connected == 0 }, "flooder closed")
}

func TestServerIdleTimeout(t *testing.T) {
	srv := &Server{IdleTimeout: 150 * time.Millisecond}
	addr := startServer(t, srv)
	c := dial(t, addr)
	c.send(cmd("PING"))
	c.expect("*[$PING]")
	start := time.Now()
	c.expectClosed()
	assert.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond)
}

func TestServerAuthTimeout(t *testing.T) {
	srv := &Server{AuthRequired: true, AuthTimeout: 150 * time.Millisecond}
	addr := startServer(t, srv)
	c := dial(t, addr)
	c.send(cmd("PING"))
	c.expect("*[$PING]")
	c.expectClosed()

	// Once authenticated, the deadline no longer applies.
	c = dial(t, addr)
	c.send(cmd("AUTH", "x"))
	c.expect("+OK")
	time.Sleep(250 * time.Millisecond) // longer than AuthTimeout on purpose
	c.send(cmd("PING"))
	c.expect("*[$PING]")
}

func TestServerShutdown(t *testing.T) {
	h := &testHandler{release: make(chan struct{}), entered: make(chan struct{}, 1)}
	var closed atomic.Int32
	srv := &Server{Handler: h, OnClose: func(*Conn) { closed.Add(1) }}
	addr := startServer(t, srv)
	idle := dial(t, addr)
	idle.send(cmd("PING"))
	idle.expect("*[$PING]")
	busy := dial(t, addr)
	busy.send(cmd("SLOW") + cmd("ECHO", "after"))
	<-h.entered

	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(context.Background()) }()
	idle.expectClosed()
	select {
	case <-done:
		t.Fatal("Shutdown returned with a command in flight")
	default:
	}
	close(h.release)
	busy.expect("+SLOWDONE")
	busy.expect("*[$ECHO $after]")
	busy.expectClosed()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return")
	}
	assert.Equal(t, int32(2), closed.Load())
	_, err := net.DialTimeout("tcp", addr, time.Second)
	assert.Error(t, err)
}

func TestShutdownContext(t *testing.T) {
	h := &testHandler{release: make(chan struct{}), entered: make(chan struct{}, 1)}
	srv := &Server{Handler: h}
	addr := startServer(t, srv)
	c := dial(t, addr)
	c.send(cmd("SLOW"))
	<-h.entered
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, srv.Shutdown(ctx), context.DeadlineExceeded)
	close(h.release)
}

func TestServerGoroutinesReturn(t *testing.T) {
	base := runtime.NumGoroutine()
	srv := &Server{Logger: quietLogger(), Handler: &testHandler{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc, err := net.Dial("tcp", ln.Addr().String())
			if !assert.NoError(t, err) {
				return
			}
			defer nc.Close()
			_, _ = nc.Write([]byte(cmd("PING")))
			_, _ = nc.Read(make([]byte, 64))
		}()
	}
	wg.Wait()
	// A few connections stay open across Shutdown.
	c := dial(t, ln.Addr().String())
	c.send(cmd("PING"))
	c.expect("*[$PING]")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, srv.Shutdown(ctx))
	require.ErrorIs(t, <-done, ErrServerClosed)
	c.nc.Close()
	eventually(t, func() bool { return runtime.NumGoroutine() <= base }, "goroutines back to baseline")
	require.ErrorIs(t, srv.Serve(ln), ErrServerClosed)
}

func TestServerLimitsAndConfig(t *testing.T) {
	l := (&Server{}).Limits()
	assert.Equal(t, Limits{
		MaxClients: 10000, MaxBulkLen: 1 << 20, MaxArgs: 65536, MaxInlineLen: 64 << 10,
		MaxQueryBuffer: 32 << 20, MaxQueryBufferTotal: 256 << 20, PreAuthMaxArgs: 10, PreAuthMaxBulkLen: 16384,
		MaxPendingReply: 1 << 20, WriteTimeout: 10 * time.Second, AuthTimeout: 10 * time.Second,
	}, l)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	err = (&Server{Handler: &testHandler{}, MaxBulkLen: 100, MaxQueryBuffer: 100}).Serve(ln)
	require.ErrorContains(t, err, "MaxQueryBuffer")
	err = (&Server{Handler: &testHandler{}, MaxQueryBuffer: 64 << 20, MaxQueryBufferTotal: 32 << 20}).Serve(ln)
	require.ErrorContains(t, err, "MaxQueryBufferTotal must be at least MaxQueryBuffer")
}

func TestServerOnOpenAndBigBulk(t *testing.T) {
	srv := &Server{OnOpen: func(c *Conn) { c.WriteSimple("HELLO " + strconv.FormatUint(c.ID(), 10)) }}
	addr := startServer(t, srv)
	c := dial(t, addr)
	c.expect("+HELLO 1")
	big := strings.Repeat("b", 1<<20)
	c.send(cmd("ECHO", big))
	c.expect("*[$ECHO $" + big + "]")
	// Only the header: the server rejects it before reading a payload
	// (sending the payload could get the reply lost to a TCP reset).
	c.send("*2\r\n$4\r\nECHO\r\n$1048577\r\n")
	c.expect("-ERR Protocol error: invalid bulk length")
	c.expectClosed()
}

func TestConnAccessorsAndHooks(t *testing.T) {
	type info struct{ remote, local string }
	opened := make(chan *Conn, 1)
	closedIDs := make(chan uint64, 4)
	h := HandlerFunc(func(c *Conn, args [][]byte) {
		switch string(args[0]) {
		case "SETCTX":
			c.SetContext(info{c.RemoteAddr(), c.LocalAddr()})
			c.WriteSimple("OK")
		case "GETCTX":
			v := c.Context().(info)
			c.WriteArray(2)
			c.WriteBulkString(v.remote)
			c.WriteBulkString(v.local)
		case "KILLME":
			done := make(chan struct{})
			go func() { c.Close(); close(done) }() // from another goroutine, like CLIENT KILL
			<-done
		}
	})
	srv := &Server{Handler: h, OnOpen: func(c *Conn) { opened <- c }, OnClose: func(c *Conn) { closedIDs <- c.ID() }}
	addr := startServer(t, srv)
	c := dial(t, addr)
	sc := <-opened
	assert.Equal(t, uint64(1), sc.ID())
	assert.Equal(t, 2, sc.Proto())
	assert.True(t, sc.Authenticated())
	c.send(cmd("SETCTX") + cmd("GETCTX"))
	c.expect("+OK")
	c.expect("*[$" + c.nc.LocalAddr().String() + " $" + addr + "]")
	c.send(cmd("KILLME"))
	c.expectClosed()
	select {
	case id := <-closedIDs:
		assert.Equal(t, uint64(1), id)
	case <-time.After(5 * time.Second):
		t.Fatal("OnClose not called")
	}
	assert.Empty(t, closedIDs)
}

// TestReaderNoPreallocation checks a huge declared count costs nothing.
func TestReaderNoPreallocation(t *testing.T) {
	lim := testLimits()
	lim.maxArgs = 1 << 40
	rd := newReader(lim, nil)
	src := &chunkReader{data: []byte("*1000000000\r\n$1\r\na\r\n")}
	allocs := testing.AllocsPerRun(1, func() {
		_, _ = rd.fill(src)
		args, err := rd.next(false)
		require.NoError(t, err)
		require.Nil(t, args)
	})
	assert.LessOrEqual(t, allocs, 1.0) // at most the first span slice
	assert.LessOrEqual(t, cap(rd.spans), 16)
	assert.Equal(t, 16<<10, len(rd.buf))
}
