package commands

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// FuzzCommands sends every command in the table arbitrary arguments over a
// real connection: each call must get one well-formed reply and leave the
// connection usable (no panic, no hang, no protocol desync). Authentication
// is left out (AUTH, and HELLO's AUTH option become SETNAME): failed
// attempts are slowed and close the connection by design (auth_guard.go),
// which its own tests cover. So are PSYNC and SYNC, which turn the
// connection into a replication link (replication's tests cover them).
func FuzzCommands(f *testing.F) {
	f.Add(uint8(0), []byte("key"), []byte("15"), []byte("30"), []byte("60"), []byte("1"), uint8(6))
	f.Add(uint8(1), []byte("\xff\x00k"), []byte("-1"), []byte("0"), []byte("9223372036854775807"), []byte("-9223372036854775808"), uint8(6))
	f.Add(uint8(2), []byte("SETNAME"), []byte("a b"), []byte(""), []byte(""), []byte(""), uint8(3))
	f.Add(uint8(3), []byte("DOCS"), []byte("throttle"), []byte("nope"), []byte(""), []byte(""), uint8(4))
	f.Add(uint8(4), []byte("3"), []byte("AUTH"), []byte("default"), []byte("x"), []byte("SETNAME"), uint8(6))
	f.Add(uint8(5), []byte("GETKEYS"), []byte("DEL"), []byte("a"), []byte("b"), []byte(""), uint8(5))
	f.Add(uint8(6), []byte("+5"), []byte("0x10"), []byte("1.5"), []byte(" 1"), []byte("99999999999999999999"), uint8(6))
	ts := startServer(f, false)
	names := []string{}
	for _, c := range ts.srv.Commands() {
		switch c.Name {
		case "quit", "auth", "psync", "sync":
		default:
			names = append(names, c.Name)
		}
	}
	conn, err := net.Dial("tcp", ts.addr)
	require.NoError(f, err)
	f.Cleanup(func() { conn.Close() })
	r := bufio.NewReader(conn)
	f.Fuzz(func(t *testing.T, which uint8, a, b, c, d, e []byte, n uint8) {
		args := [][]byte{[]byte(names[int(which)%len(names)]), a, b, c, d, e}[:1+int(n)%6]
		for i, x := range args[1:] {
			if strings.EqualFold(string(x), "auth") {
				args[1+i] = []byte("SETNAME")
			}
		}
		var req strings.Builder
		fmt.Fprintf(&req, "*%d\r\n", len(args))
		for _, x := range args {
			fmt.Fprintf(&req, "$%d\r\n%s\r\n", len(x), x)
		}
		require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
		_, err := conn.Write([]byte(req.String() + "PING\r\n"))
		require.NoError(t, err)
		reply := readReply(t, r)
		require.NotEmpty(t, reply)
		require.Contains(t, "+-:*$%~_#,=>", reply[:1], "malformed reply %q", reply)
		// The PING after it proves the connection is still in step.
		require.Equal(t, "+PONG\r\n", readReply(t, r), "after %q", args)
	})
}
