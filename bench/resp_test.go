package main

import (
	"bufio"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
)

// fakeClient returns a client that reads the given bytes.
func fakeClient(in string) *client {
	return &client{r: bufio.NewReaderSize(strings.NewReader(in), ioBufSize)}
}

func TestParseInt(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"-1", -1, true}, {"42", 42, true},
		{"9223372036854775807", math.MaxInt64, true}, {"-9223372036854775808", math.MinInt64, true},
		{"9223372036854775808", 0, false}, {"-9223372036854775809", 0, false},
		{"", 0, false}, {"-", 0, false}, {"+1", 0, false}, {"1x", 0, false}, {" 1", 0, false},
	} {
		got, ok := parseInt([]byte(c.in))
		if ok != c.ok || got != c.want {
			t.Errorf("parseInt(%q) = %d, %v; want %d, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// TestReadIntArray checks good replies, error replies, and that replies of
// the wrong shape are consumed whole so the next reply still parses.
func TestReadIntArray(t *testing.T) {
	next := ":7\r\n" // follows every case; must still be readable
	for _, c := range []struct {
		name, in string
		want     []int64
		err      error
	}{
		{"ok", "*5\r\n:0\r\n:16\r\n:15\r\n:-1\r\n:2\r\n", []int64{0, 16, 15, -1, 2}, nil},
		{"too short", "*2\r\n:0\r\n:16\r\n", nil, errShape},
		{"too long", "*6\r\n:0\r\n:1\r\n:2\r\n:3\r\n:4\r\n:5\r\n", nil, errShape},
		{"bulk element", "*5\r\n:0\r\n$2\r\nhi\r\n:1\r\n:2\r\n:3\r\n", nil, errShape},
		{"nested", "*5\r\n*2\r\n:1\r\n$-1\r\n:1\r\n:2\r\n:3\r\n:4\r\n", nil, errShape},
		{"status", "+OK\r\n", nil, errShape},
		{"bulk", "$5\r\nhello\r\n", nil, errShape},
		{"null array", "*-1\r\n", nil, errShape},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl := fakeClient(c.in + next)
			var got [5]int64
			err := cl.readIntArray(got[:])
			if !errors.Is(err, c.err) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
			if c.err == nil && !equalInts(got[:], c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
			v, err := cl.readValue()
			if err != nil || v.Kind != ':' || v.Int != 7 {
				t.Fatalf("next reply = %v, %v; the stream lost sync", v, err)
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	var got [5]int64
	err := fakeClient("-ERR value is not an integer or out of range\r\n").readIntArray(got[:])
	var se *ServerError
	if !errors.As(err, &se) || se.Msg != "ERR value is not an integer or out of range" {
		t.Fatalf("error reply gave %v", err)
	}
	if err := fakeClient("-NOSCRIPT No matching script\r\n").readStatus("OK"); !errors.As(err, &se) {
		t.Fatalf("error reply to SET gave %v", err)
	}
	if err := fakeClient(":1\n").readIntArray(got[:]); !errors.Is(err, errProtocol) {
		t.Fatalf("LF without CR gave %v", err)
	}
	if err := fakeClient("?x\r\n").readIntArray(got[:]); !errors.Is(err, errProtocol) {
		t.Fatalf("unknown type gave %v", err)
	}
	if err := fakeClient("*5\r\n:1\r\n").readIntArray(got[:]); err == nil || errors.Is(err, errShape) {
		t.Fatalf("truncated reply gave %v", err)
	}
	if err := fakeClient("+OK\r\n").readStatus("OK"); err != nil {
		t.Fatalf("+OK gave %v", err)
	}
	if err := fakeClient("+QUEUED\r\n").readStatus("OK"); !errors.Is(err, errShape) {
		t.Fatalf("+QUEUED gave %v", err)
	}
}

func TestReadValue(t *testing.T) {
	in := "*3\r\n$3\r\nabc\r\n$-1\r\n*2\r\n:1\r\n-ERR x\r\n"
	v, err := fakeClient(in).readValue()
	if err != nil {
		t.Fatal(err)
	}
	if got := v.String(); got != `["abc" (nil) [1 (error) ERR x]]` {
		t.Fatalf("decoded %s", got)
	}
}

// TestReadIntArrayDoesNotAllocate guards the hot loop's promise.
func TestReadIntArrayDoesNotAllocate(t *testing.T) {
	reply := "*5\r\n:0\r\n:16\r\n:15\r\n:-1\r\n:2\r\n"
	in := strings.Repeat(reply, 200)
	cl := fakeClient(in)
	var got [5]int64
	n := testing.AllocsPerRun(100, func() {
		if err := cl.readIntArray(got[:]); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Fatalf("readIntArray allocates %v times per reply", n)
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func BenchmarkReadIntArray(b *testing.B) {
	b.ReportAllocs()
	var sb strings.Builder
	for i := 0; i < 1000; i++ {
		sb.WriteString("*5\r\n:0\r\n:16\r\n:" + strconv.Itoa(i%16) + "\r\n:-1\r\n:32\r\n")
	}
	in := sb.String()
	var got [5]int64
	r := strings.NewReader(in)
	cl := &client{r: bufio.NewReaderSize(r, ioBufSize)}
	i := 0
	for b.Loop() {
		if i == 1000 {
			r.Reset(in)
			cl.r.Reset(r)
			i = 0
		}
		if err := cl.readIntArray(got[:]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
