package commands

import (
	"io"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRawRESP(t *testing.T) {
	ts := startServer(t, true)
	c := ts.client(t, 2)
	setClock(t, c, epoch)
	got := raw(t, ts.addr,
		"*6\r\n$11\r\nCL.THROTTLE\r\n$7\r\nuser123\r\n$2\r\n15\r\n$2\r\n30\r\n$2\r\n60\r\n$1\r\n1\r\n"+
			"*5\r\n$8\r\nthrottle\r\n$4\r\n\xff\x00\xfe\n\r\n$1\r\n0\r\n$1\r\n1\r\n$1\r\n1\r\n"+
			"*5\r\n$8\r\nthrottle\r\n$4\r\n\xff\x00\xfe\n\r\n$1\r\n0\r\n$1\r\n1\r\n$1\r\n1\r\n"+
			"PING\r\n"+
			"*2\r\n$4\r\nECHO\r\n$3\r\na\x00b\r\n"+
			"*1\r\n$4\r\nfoo!\r\n"+
			"*3\r\n$8\r\nthrottle\r\n$1\r\nk\r\n$1\r\n1\r\n"+
			"*5\r\n$8\r\nthrottle\r\n$1\r\nk\r\n$3\r\n1.5\r\n$1\r\n1\r\n$1\r\n1\r\n"+
			"*5\r\n$8\r\nthrottle\r\n$1\r\nk\r\n$1\r\n1\r\n$1\r\n0\r\n$1\r\n1\r\n"+
			"*5\r\n$8\r\nthrottle\r\n$1\r\nk\r\n$1\r\n1\r\n$1\r\n1\r\n$11\r\n99999999999\r\n"+
			"*5\r\n$8\r\nthrottle\r\n$1\r\nk\r\n$1\r\n1\r\n$10\r\n2000000000\r\n$1\r\n1\r\n",
		11)
	assert.Equal(t, []string{
		"*5\r\n:0\r\n:16\r\n:15\r\n:-1\r\n:2\r\n",
		"*5\r\n:0\r\n:1\r\n:0\r\n:-1\r\n:1\r\n",
		"*5\r\n:1\r\n:1\r\n:0\r\n:1\r\n:1\r\n",
		"+PONG\r\n",
		"$3\r\na\x00b\r\n",
		"-ERR unknown command 'foo!', with args beginning with: \r\n",
		"-ERR wrong number of arguments for 'throttle' command\r\n",
		"-ERR value is not an integer or out of range\r\n",
		"-ERR invalid count: must be >= 1\r\n",
		"-ERR limit arithmetic overflows 64-bit nanoseconds\r\n",
		"-ERR zero rates are not supported\r\n",
	}, got)
}

func TestBadInputLeavesOtherKeysAlone(t *testing.T) {
	ts := startServer(t, true)
	c := ts.client(t, 2)
	setClock(t, c, epoch)
	before := call(t, c, "THROTTLE", "bystander", 5, 1, 60)
	for _, bad := range []string{
		"*1\r\n$9223372036854775807\r\nx",
		"*2\r\n$3\r\nDEL\r\n$-10\r\n",
		"*1\r\n*1\r\n$4\r\nPING\r\n",
		"\"unbalanced\r\n",
		"*3\r\n$3\r\nDEL\r\n$9\r\nbystander",
	} {
		conn, err := net.Dial("tcp", ts.addr)
		require.NoError(t, err)
		_, _ = io.WriteString(conn, bad)
		_ = conn.Close()
	}
	peek := call(t, c, "THROTTLE", "bystander", 5, 1, 60, 0)
	assert.Equal(t, before, peek, "the state of an unrelated key changed")
}

func TestUnknownCommandTruncation(t *testing.T) {
	long := strings.Repeat("x", 300)
	got := errUnknownCommand([][]byte{[]byte("nope"), []byte(long), []byte("y")})
	assert.Equal(t, "ERR unknown command 'nope', with args beginning with: '"+strings.Repeat("x", 128)+"' ", got)
	got = errUnknownCommand([][]byte{[]byte("a\r\nb"), []byte("c\nd")})
	assert.Equal(t, "ERR unknown command 'a  b', with args beginning with: 'c d' ", got)
}
