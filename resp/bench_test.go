package resp

import (
	"io"
	"net"
	"testing"
	"time"
)

const throttleCmd = "*6\r\n$11\r\nCL.THROTTLE\r\n$7\r\nuser123\r\n$2\r\n15\r\n$2\r\n30\r\n$2\r\n60\r\n$1\r\n1\r\n"

// repeatReader returns one copy of msg per Read.
type repeatReader struct{ msg []byte }

func (r *repeatReader) Read(p []byte) (int, error) { return copy(p, r.msg), nil }

func BenchmarkParseThrottle(b *testing.B) {
	rd := newReader(testLimits(), nil)
	src := &repeatReader{msg: []byte(throttleCmd)}
	b.ReportAllocs()
	b.SetBytes(int64(len(throttleCmd)))
	for b.Loop() {
		if _, err := rd.fill(src); err != nil {
			b.Fatal(err)
		}
		args, err := rd.next(false)
		if err != nil || len(args) != 6 {
			b.Fatalf("%v %d", err, len(args))
		}
	}
}

func BenchmarkParseInline(b *testing.B) {
	rd := newReader(testLimits(), nil)
	src := &repeatReader{msg: []byte("CL.THROTTLE user123 15 30 60 1\r\n")}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rd.fill(src); err != nil {
			b.Fatal(err)
		}
		if args, err := rd.next(false); err != nil || len(args) != 6 {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeArray5(b *testing.B) {
	c := &Conn{wbuf: make([]byte, 0, wbufInit)}
	c.proto.Store(2)
	b.ReportAllocs()
	for b.Loop() {
		c.wbuf = c.wbuf[:0]
		c.WriteArray(5)
		c.WriteInt(0)
		c.WriteInt(16)
		c.WriteInt(15)
		c.WriteInt(-1)
		c.WriteInt(2)
	}
}

// throttleHandler answers like CL.THROTTLE: a 5-integer array.
type throttleHandler struct{}

func (throttleHandler) ServeRESP(c *Conn, args [][]byte) {
	c.WriteArray(5)
	c.WriteInt(0)
	c.WriteInt(16)
	c.WriteInt(15)
	c.WriteInt(-1)
	c.WriteInt(2)
}

const throttleReply = "*5\r\n:0\r\n:16\r\n:15\r\n:-1\r\n:2\r\n"

func benchLoopback(b *testing.B, depth int) {
	addr := startServer(b, &Server{Handler: throttleHandler{}})
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(time.Minute))
	req := make([]byte, 0, depth*len(throttleCmd))
	for range depth {
		req = append(req, throttleCmd...)
	}
	resp := make([]byte, depth*len(throttleReply))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := nc.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(nc, resp); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if string(resp[:len(throttleReply)]) != throttleReply {
		b.Fatalf("bad reply %q", resp)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*depth), "ns/cmd")
}

func BenchmarkLoopback(b *testing.B)           { benchLoopback(b, 1) }
func BenchmarkLoopbackPipeline16(b *testing.B) { benchLoopback(b, 16) }

// TestZeroAllocsPerCommand proves the steady-state parse + reply path does
// not allocate.
func TestZeroAllocsPerCommand(t *testing.T) {
	rd := newReader(testLimits(), nil)
	src := &repeatReader{msg: []byte(throttleCmd + "PING a b\r\n")}
	c := &Conn{wbuf: make([]byte, 0, wbufInit)}
	c.proto.Store(2)
	h := throttleHandler{}
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := rd.fill(src); err != nil {
			t.Fatal(err)
		}
		for {
			args, err := rd.next(false)
			if err != nil {
				t.Fatal(err)
			}
			if args == nil {
				break
			}
			h.ServeRESP(c, args)
		}
		c.wbuf = c.wbuf[:0]
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per command batch", allocs)
	}
}
