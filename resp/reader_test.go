package resp

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testLimits() readerLimits {
	return readerLimits{
		maxBulk:        DefaultMaxBulkLen,
		maxArgs:        DefaultMaxArgs,
		maxInline:      DefaultMaxInlineLen,
		maxQuery:       DefaultMaxQueryBuffer,
		preAuthArgs:    DefaultPreAuthMaxArgs,
		preAuthBulkLen: DefaultPreAuthMaxBulkLen,
	}
}

// chunkReader returns data in the given chunk sizes (cycling), then EOF.
type chunkReader struct {
	data   []byte
	chunks []int
	i      int
}

func (cr *chunkReader) Read(p []byte) (int, error) {
	if len(cr.data) == 0 {
		return 0, io.EOF
	}
	n := len(cr.data)
	if len(cr.chunks) > 0 {
		n = min(n, cr.chunks[cr.i%len(cr.chunks)])
		cr.i++
	}
	n = copy(p, cr.data[:n])
	cr.data = cr.data[n:]
	return n, nil
}

// parseStream runs the reader over src until EOF or a protocol error and
// returns the commands (copied) and the error reply ("" if none). It also
// checks the buffer never exceeds the cap and the loop terminates.
func parseStream(t testing.TB, src io.Reader, lim readerLimits, preAuth bool) (cmds [][]string, errReply string) {
	rd := newReader(lim, nil)
	for iter := 0; ; iter++ {
		if iter > 10_000_000 {
			t.Fatal("reader loop does not terminate")
		}
		for {
			args, err := rd.next(preAuth)
			if err != nil {
				return cmds, replyOf(t, err)
			}
			if args == nil {
				break
			}
			cmd := make([]string, len(args))
			for i, a := range args {
				cmd[i] = string(a)
			}
			cmds = append(cmds, cmd)
		}
		_, err := rd.fill(src)
		if len(rd.buf) > lim.maxQuery {
			t.Fatalf("buffer %d exceeds cap %d", len(rd.buf), lim.maxQuery)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return cmds, ""
			}
			return cmds, replyOf(t, err)
		}
	}
}

func replyOf(t testing.TB, err error) string {
	var perr *protocolError
	if !errors.As(err, &perr) {
		t.Fatalf("unexpected error type %T: %v", err, err)
	}
	if perr.silent {
		return "(silent)"
	}
	return perr.reply
}

func TestParseCount(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"5", 5, true},
		{"-1", -1, true},
		{"9223372036854775807", 9223372036854775807, true},
		{"9223372036854775808", 0, false},
		{"-9223372036854775808", -9223372036854775808, true},
		{"-9223372036854775809", 0, false},
		{"99999999999999999999", 0, false},
		{"9999999999999999999", 0, false},
		{"", 0, false},
		{"-", 0, false},
		{"+5", 0, false},
		{"5x", 0, false},
		{" 5", 0, false},
		{"--5", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseCount([]byte(tt.in))
		assert.Equal(t, tt.ok, ok, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
	}
}

func TestReaderTable(t *testing.T) {
	const (
		eMbulk   = "ERR Protocol error: invalid multibulk length"
		eBulk    = "ERR Protocol error: invalid bulk length"
		eInline  = "ERR Protocol error: too big inline request"
		eUnbal   = "ERR Protocol error: unbalanced quotes in request"
		eQuery   = "ERR Protocol error: max query buffer length reached"
		eTooMb   = "ERR Protocol error: too big mbulk count string"
		eTooBulk = "ERR Protocol error: too big bulk count string"
	)
	tests := []struct {
		name    string
		in      string
		preAuth bool
		lim     func(*readerLimits)
		want    [][]string
		err     string
	}{
		{name: "simple", in: "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", want: [][]string{{"GET", "k"}}},
		{name: "throttle", in: "*6\r\n$11\r\nCL.THROTTLE\r\n$7\r\nuser123\r\n$2\r\n15\r\n$2\r\n30\r\n$2\r\n60\r\n$1\r\n1\r\n",
			want: [][]string{{"CL.THROTTLE", "user123", "15", "30", "60", "1"}}},
		{name: "empty bulk", in: "*1\r\n$0\r\n\r\n", want: [][]string{{""}}},
		{name: "binary bulk", in: "*1\r\n$5\r\na\x00\r\nb\r\n", want: [][]string{{"a\x00\r\nb"}}},
		{name: "pipeline", in: "*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\nPING\r\n", want: [][]string{{"PING"}, {"PING"}, {"PING"}}},
		{name: "partial at eof", in: "*2\r\n$3\r\nGET\r\n$1\r\n", want: nil},
		{name: "bulk max int64", in: "*1\r\n$9223372036854775807\r\nx", err: eBulk},
		{name: "bulk max int64+1", in: "*1\r\n$9223372036854775808\r\nx", err: eBulk},
		{name: "bulk 20 digits", in: "*1\r\n$12345678901234567890\r\nx", err: eBulk},
		{name: "bulk -1", in: "*1\r\n$-1\r\n", err: eBulk},
		{name: "bulk -10", in: "*1\r\n$-10\r\n", err: eBulk},
		{name: "bulk +5", in: "*1\r\n$+5\r\nhello\r\n", err: eBulk},
		{name: "bulk 5x", in: "*1\r\n$5x\r\nhello\r\n", err: eBulk},
		{name: "bulk empty", in: "*1\r\n$\r\n", err: eBulk},
		{name: "bulk over max", in: "*1\r\n$1048577\r\n", err: eBulk},
		{name: "bulk at max ok", in: "*1\r\n$3\r\nabc\r\n", lim: func(l *readerLimits) { l.maxBulk = 3; l.maxQuery = 64 }, want: [][]string{{"abc"}}},
		{name: "bulk bad terminator", in: "*1\r\n$3\rxabc\r\n", err: eBulk},
		{name: "array -10", in: "*-10\r\n*1\r\n$4\r\nPING\r\n", want: [][]string{{"PING"}}},
		{name: "array 0", in: "*0\r\n*1\r\n$4\r\nPING\r\n", want: [][]string{{"PING"}}},
		{name: "array 3000000000", in: "*3000000000\r\n", err: eMbulk},
		{name: "array 1000000000 no body", in: "*1000000000\r\n", err: eMbulk},
		{name: "array 1000000000 big limit", in: "*1000000000\r\n", lim: func(l *readerLimits) { l.maxArgs = 1 << 40 }, want: nil},
		{name: "array not number", in: "*x\r\n", err: eMbulk},
		{name: "array empty count", in: "*\r\n", err: eMbulk},
		{name: "array bad terminator", in: "*1\rx", err: eMbulk},
		{name: "array max args", in: "*3\r\n", lim: func(l *readerLimits) { l.maxArgs = 2 }, err: eMbulk},
		{name: "nested array", in: "*1\r\n*1\r\n$1\r\nx\r\n", err: "ERR Protocol error: expected '$', got '*'"},
		{name: "expected dollar", in: "*1\r\n:1\r\n", err: "ERR Protocol error: expected '$', got ':'"},
		{name: "too big mbulk count", in: "*" + strings.Repeat("1", 70000), err: eTooMb},
		{name: "too big bulk count", in: "*1\r\n$" + strings.Repeat("1", 70000), err: eTooBulk},
		{name: "preauth args ok", in: "*10\r\n" + strings.Repeat("$1\r\na\r\n", 10), preAuth: true, want: [][]string{strings.Split(strings.Repeat("a", 10), "")}},
		{name: "preauth args", in: "*11\r\n", preAuth: true, err: eMbulk},
		{name: "preauth bulk", in: "*1\r\n$16385\r\n", preAuth: true, err: eBulk},
		{name: "preauth bulk ok", in: "*1\r\n$16384\r\n" + strings.Repeat("x", 16384) + "\r\n", preAuth: true, want: [][]string{{strings.Repeat("x", 16384)}}},
		{name: "query limit declared", in: "*2\r\n$40\r\n", lim: func(l *readerLimits) { l.maxBulk = 45; l.maxQuery = 50 }, err: eQuery},
		{name: "query limit many args", in: "*100\r\n" + strings.Repeat("$10\r\n0123456789\r\n", 100),
			lim: func(l *readerLimits) { l.maxBulk = 50; l.maxQuery = 256 }, err: eQuery},
		{name: "query ok pipeline over cap", in: strings.Repeat("*1\r\n$10\r\n0123456789\r\n", 100),
			lim: func(l *readerLimits) { l.maxBulk = 50; l.maxQuery = 64 }, want: repeatCmd([]string{"0123456789"}, 100)},

		{name: "inline", in: "SET k v\r\n", want: [][]string{{"SET", "k", "v"}}},
		{name: "inline lf", in: "SET  k\tv\nGET k\n", want: [][]string{{"SET", "k", "v"}, {"GET", "k"}}},
		{name: "inline empty lines", in: "\r\n\n   \r\nPING\r\n", want: [][]string{{"PING"}}},
		{name: "inline dquote", in: `SET "a b" "x\"y"` + "\r\n", want: [][]string{{"SET", "a b", `x"y`}}},
		{name: "inline escapes", in: `X "\n\r\t\b\a\\\x41\x7a\q"` + "\n", want: [][]string{{"X", "\n\r\t\b\a\\Azq"}}},
		{name: "inline bad hex", in: `X "\xZZ"` + "\n", want: [][]string{{"X", "xZZ"}}},
		{name: "inline squote", in: `X 'a\'b' 'c\nd'` + "\n", want: [][]string{{"X", "a'b", `c\nd`}}},
		{name: "inline empty quotes", in: `X "" ''` + "\n", want: [][]string{{"X", "", ""}}},
		{name: "inline quote mid token", in: `X a"b c"d` + "\n", err: eUnbal},
		{name: "inline quote mid token ok", in: `X a"b c"` + "\n", want: [][]string{{"X", "ab c"}}},
		{name: "inline unbalanced", in: `SET "k v` + "\r\n", err: eUnbal},
		{name: "inline unbalanced single", in: "SET 'k\n", err: eUnbal},
		{name: "inline quote followed", in: `SET "k"v` + "\n", err: eUnbal},
		{name: "inline nul ends", in: "A B\x00C D\n", want: [][]string{{"A", "B"}}},
		{name: "inline too big", in: strings.Repeat("a", 70000), err: eInline},
		{name: "inline too big complete", in: strings.Repeat("a", 70000) + "\n", err: eInline},
		{name: "inline partial", in: "PING", want: nil},
		{name: "http post", in: "POST / HTTP/1.1\r\nHost: x\r\n\r\n", err: "(silent)"},
		{name: "http get", in: "GET / HTTP/1.1\r\n", err: "(silent)"},
		{name: "http options", in: "options * HTTP/1.0\r\n", err: "(silent)"},
		{name: "http host", in: "host: example.com\r\n", err: "(silent)"},
		{name: "redis get not http", in: "GET key\r\n", want: [][]string{{"GET", "key"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim := testLimits()
			if tt.lim != nil {
				tt.lim(&lim)
			}
			// Whole, one byte at a time, and random chunks: same result.
			chunkings := [][]int{nil, {1}, {3, 1, 7}}
			for _, ch := range chunkings {
				got, errReply := parseStream(t, &chunkReader{data: []byte(tt.in), chunks: ch}, lim, tt.preAuth)
				assert.Equal(t, tt.want, got, "chunks %v", ch)
				assert.Equal(t, tt.err, errReply, "chunks %v", ch)
			}
		})
	}
}

func repeatCmd(cmd []string, n int) [][]string {
	out := make([][]string, n)
	for i := range out {
		out[i] = cmd
	}
	return out
}

func pipelineStream() ([]byte, [][]string) {
	var b bytes.Buffer
	var want [][]string
	for i := range 40 {
		switch i % 4 {
		case 0:
			b.WriteString("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nv\r\nx\x00\r\n")
			want = append(want, []string{"SET", "key", "v\r\nx\x00"})
		case 1:
			b.WriteString("PING \"a\\x41\"\r\n")
			want = append(want, []string{"PING", "aA"})
		case 2:
			b.WriteString("*0\r\n*1\r\n$0\r\n\r\n")
			want = append(want, []string{""})
		case 3:
			big := strings.Repeat("z", 20000+i)
			b.WriteString("*2\r\n$4\r\nECHO\r\n$" + strconv.Itoa(len(big)) + "\r\n" + big + "\r\n")
			want = append(want, []string{"ECHO", big})
		}
	}
	return b.Bytes(), want
}

func TestReaderChunkings(t *testing.T) {
	data, want := pipelineStream()
	lim := testLimits()
	lim.maxQuery = 64 << 10 // force compaction and growth paths
	got, errReply := parseStream(t, &chunkReader{data: data, chunks: []int{1}}, lim, false)
	require.Empty(t, errReply)
	require.Equal(t, want, got)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		chunks := make([]int, 1+rng.IntN(8))
		for i := range chunks {
			chunks[i] = 1 + rng.IntN(30000)
		}
		got, errReply := parseStream(t, &chunkReader{data: data, chunks: chunks}, lim, false)
		require.Empty(t, errReply)
		require.Equal(t, want, got, "chunks %v", chunks)
	}
}

// TestReaderNoRescan checks a big bulk received in tiny pieces is not
// re-parsed on every read (each read costs O(1) parsing work).
func TestReaderNoRescan(t *testing.T) {
	lim := testLimits()
	big := strings.Repeat("x", 1<<20)
	data := []byte("*1\r\n$" + strconv.Itoa(len(big)) + "\r\n" + big + "\r\n")
	got, errReply := parseStream(t, &chunkReader{data: data, chunks: []int{64}}, lim, false)
	require.Empty(t, errReply)
	require.Equal(t, [][]string{{big}}, got)
}

func TestReaderArgsCapped(t *testing.T) {
	rd := newReader(testLimits(), nil)
	_, err := rd.fill(&chunkReader{data: []byte("*2\r\n$1\r\na\r\n$1\r\nb\r\n")})
	require.NoError(t, err)
	args, err := rd.next(false)
	require.NoError(t, err)
	require.Len(t, args, 2)
	_ = append(args[0], 'Z') // must not clobber the buffer
	assert.Equal(t, "b", string(args[1]))
	assert.Equal(t, byte(0x0d), rd.buf[9])
}
