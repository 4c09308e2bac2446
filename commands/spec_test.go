package commands

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/stretchr/testify/require"
)

// TestSpec runs the specification files in testdata/spec, each against a
// fresh server of its own whose clock starts frozen at 2030-01-01T00:00:00Z
// (the reference vectors' epoch). A file is a sequence of directives, each a
// line, "----" and the expected output (pebble's datadriven format; run with
// -rewrite to write the actual output in place after a deliberate change):
//
//	clock <unix-ns | RFC 3339 | +duration>
//	    freezes the server clock at that instant (a +duration, in Go's
//	    notation, moves it forward); no output
//	<command line>
//	    any other line is one command, written as redis-cli takes it
//	    ("throttle user123 15 30 60", quotes and \xHH escapes as redis-cli
//	    reads them), sent over one connection in RESP2; the output is its
//	    reply as redis-cli would show it, on one line
//
// Replies render as: OK (a simple string), (integer) 3, (error) ERR ...,
// "bulk" (Go-quoted), (nil), and arrays as [0 16 15 -1 2] whose elements
// drop the (integer) prefix and nest ([[...] [...]]).
func TestSpec(t *testing.T) {
	datadriven.Walk(t, "testdata/spec", func(t *testing.T, path string) {
		ts := startServer(t, true)
		ts.srv.Clock().Set(epoch)
		ts.keys.FixLeaseIDs(1) // lease IDs are random: fixed here, so the files can name them
		conn, err := net.Dial("tcp", ts.addr)
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close() })
		r := bufio.NewReader(conn)
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			if d.Input != "" {
				t.Fatalf("%s: a directive takes no input lines", d.Pos)
			}
			if d.Cmd == "clock" {
				ns, err := specClock(d, ts.srv.Clock().Now())
				if err != nil {
					t.Fatalf("%s: %v", d.Pos, err)
				}
				ts.srv.Clock().Set(ns)
				return ""
			}
			args, err := splitArgs(directiveLine(d))
			if err != nil {
				t.Fatalf("%s: %v", d.Pos, err)
			}
			require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
			_, err = conn.Write(encodeCommand(args))
			require.NoError(t, err)
			out, err := renderReply(r, true)
			if err != nil {
				t.Fatalf("%s: reading the reply: %v", d.Pos, err)
			}
			return out + "\n"
		})
	})
}

// directiveLine rebuilds the line datadriven split into a command and
// arguments.
func directiveLine(d *datadriven.TestData) string {
	parts := []string{d.Cmd}
	for _, a := range d.CmdArgs {
		parts = append(parts, a.String())
	}
	return strings.Join(parts, " ")
}

// specClock reads a clock directive's one argument: Unix nanoseconds, an RFC
// 3339 time, or +duration after now.
func specClock(d *datadriven.TestData, now int64) (int64, error) {
	if len(d.CmdArgs) != 1 || len(d.CmdArgs[0].Vals) != 0 {
		return 0, errors.New("clock takes one argument: unix-ns, RFC 3339 or +duration")
	}
	s := d.CmdArgs[0].Key
	if rest, ok := strings.CutPrefix(s, "+"); ok {
		dur, err := time.ParseDuration(rest)
		if err != nil {
			return 0, err
		}
		return now + int64(dur), nil
	}
	if ns, err := strconv.ParseInt(s, 10, 64); err == nil {
		return ns, nil
	}
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("clock %q is neither unix-ns, RFC 3339 nor +duration", s)
	}
	return at.UnixNano(), nil
}

// splitArgs splits a command line as redis-cli does: words separated by
// spaces; "double quotes" with \" \\ \n \r \t \b \a and \xHH escapes;
// 'single quotes' with only \' escaped. A closing quote must end the word.
func splitArgs(line string) ([]string, error) {
	var out []string
	i := 0
	for {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		if i == len(line) {
			return out, nil
		}
		var word []byte
		for i < len(line) && line[i] != ' ' && line[i] != '\t' {
			q := line[i]
			if q != '"' && q != '\'' {
				word = append(word, q)
				i++
				continue
			}
			i++
			closed := false
			for i < len(line) {
				c := line[i]
				switch {
				case c == q:
					closed = true
				case c == '\\' && i+1 < len(line) && q == '\'':
					if line[i+1] == '\'' {
						c = '\''
						i++
					}
				case c == '\\' && i+1 < len(line):
					i++
					switch e := line[i]; e {
					case 'n':
						c = '\n'
					case 'r':
						c = '\r'
					case 't':
						c = '\t'
					case 'b':
						c = '\b'
					case 'a':
						c = '\a'
					case 'x': // \xHH; without two hex digits, a plain x
						c = 'x'
						if i+2 < len(line) {
							if n, err := strconv.ParseUint(line[i+1:i+3], 16, 8); err == nil {
								c = byte(n)
								i += 2
							}
						}
					default:
						c = e
					}
				}
				i++
				if closed {
					break
				}
				word = append(word, c)
			}
			if !closed || (i < len(line) && line[i] != ' ' && line[i] != '\t') {
				return nil, fmt.Errorf("unbalanced quotes in %q", line)
			}
		}
		out = append(out, string(word))
	}
}

// encodeCommand writes args as a RESP array of bulk strings.
func encodeCommand(args []string) []byte {
	var b []byte
	b = fmt.Appendf(b, "*%d\r\n", len(args))
	for _, a := range args {
		b = fmt.Appendf(b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b
}

// renderReply reads one reply and renders it on one line as redis-cli shows
// it; top says whether it is the whole reply (only there do integers and
// doubles carry their (integer) and (double) prefix).
func renderReply(r *bufio.Reader, top bool) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if len(line) < 3 || !strings.HasSuffix(line, "\r\n") {
		return "", fmt.Errorf("malformed reply line %q", line)
	}
	kind, text := line[0], line[1:len(line)-2]
	prefixed := func(prefix string) string {
		if top {
			return prefix + text
		}
		return text
	}
	switch kind {
	case '+':
		return text, nil
	case '-':
		return "(error) " + text, nil
	case ':', '(':
		return prefixed("(integer) "), nil
	case ',':
		return prefixed("(double) "), nil
	case '#':
		return map[string]string{"t": "(true)", "f": "(false)"}[text], nil
	case '_':
		return "(nil)", nil
	case '$', '=':
		n, err := strconv.Atoi(text)
		if err != nil {
			return "", fmt.Errorf("bulk length %q: %w", text, err)
		}
		if n < 0 {
			return "(nil)", nil
		}
		body := make([]byte, n+2)
		if _, err := io.ReadFull(r, body); err != nil {
			return "", err
		}
		s := string(body[:n])
		if kind == '=' && len(s) >= 4 {
			s = s[4:] // verbatim strings start with their format: "txt:"
		}
		return strconv.Quote(s), nil
	case '*', '~', '%':
		n, err := strconv.Atoi(text)
		if err != nil {
			return "", fmt.Errorf("aggregate length %q: %w", text, err)
		}
		if n < 0 {
			return "(nil)", nil
		}
		if kind == '%' {
			n *= 2
		}
		elems := make([]string, n)
		for i := range elems {
			if elems[i], err = renderReply(r, false); err != nil {
				return "", err
			}
		}
		if kind != '%' {
			return "[" + strings.Join(elems, " ") + "]", nil
		}
		pairs := make([]string, 0, n/2)
		for i := 0; i < n; i += 2 {
			pairs = append(pairs, elems[i]+": "+elems[i+1])
		}
		return "{" + strings.Join(pairs, ", ") + "}", nil
	}
	return "", fmt.Errorf("unknown reply type %q", line)
}

// TestSplitArgs checks the spec runner's reading of a command line against
// what redis-cli makes of the same line.
func TestSplitArgs(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []string
		err  bool
	}{
		{line: "throttle user123 15 30 60", want: []string{"throttle", "user123", "15", "30", "60"}},
		{line: "  a   b ", want: []string{"a", "b"}},
		{line: `set "a b" ""`, want: []string{"set", "a b", ""}},
		{line: `k "\xff\x00k" "q\"\\\n"`, want: []string{"k", "\xff\x00k", "q\"\\\n"}},
		{line: `k 'it\'s' 'a\nb'`, want: []string{"k", "it's", `a\nb`}},
		{line: `k pre"fix"`, want: []string{"k", "prefix"}},
		{line: `k "open`, err: true},
		{line: `k "a"b`, err: true},
		{line: `k "\x4" "\x+1"`, want: []string{"k", "x4", "x+1"}},
	} {
		got, err := splitArgs(tc.line)
		if tc.err {
			require.Error(t, err, tc.line)
			continue
		}
		require.NoError(t, err, tc.line)
		require.Equal(t, tc.want, got, tc.line)
	}
}
