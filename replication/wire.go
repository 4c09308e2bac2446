package replication

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// The few RESP exchanges a replication link needs besides the stream: the
// replica's handshake commands and their one-line replies, and the
// REPLCONF ACKs a replica sends its primary.

// appendCommand appends args as a RESP array of bulk strings.
func appendCommand(b []byte, args ...string) []byte {
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, '\r', '\n')
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, '\r', '\n')
		b = append(b, a...)
		b = append(b, '\r', '\n')
	}
	return b
}

// replyError is an error reply ("-ERR ...") from the other side.
type replyError struct{ text string }

func (e *replyError) Error() string { return e.text }

// readLine reads one reply line without its CRLF. Empty lines (a primary's
// keep-alive newlines while it prepares a snapshot) are skipped.
func readLine(br *bufio.Reader) (string, error) {
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return "", err
		}
		line = strings.TrimRight(line, "\r\n")
		if line != "" {
			return line, nil
		}
	}
}

// readReply reads a one-line reply: a simple string or integer is
// returned, an error reply is a *replyError.
func readReply(br *bufio.Reader) (string, error) {
	line, err := readLine(br)
	if err != nil {
		return "", err
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", &replyError{text: line[1:]}
	}
	return "", fmt.Errorf("unexpected reply %q", truncate(line))
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// errTooLong is a request line or argument a link refuses to buffer.
var errTooLong = errors.New("request too long")

// readCommand reads one RESP array of bulk strings (what a replica sends
// its primary: REPLCONF ACK <offset>), refusing anything large.
func readCommand(br *bufio.Reader) ([]string, error) {
	line, err := readLine(br)
	if err != nil {
		return nil, err
	}
	if line[0] != '*' {
		return strings.Fields(line), nil // inline, as redis-cli may send
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil || n < 0 || n > 16 {
		return nil, fmt.Errorf("bad request header %q", truncate(line))
	}
	args := make([]string, 0, n)
	for range n {
		h, err := readLine(br)
		if err != nil {
			return nil, err
		}
		size, err := strconv.Atoi(strings.TrimPrefix(h, "$"))
		if h[0] != '$' || err != nil || size < 0 {
			return nil, fmt.Errorf("bad argument header %q", truncate(h))
		}
		if size > 1024 {
			return nil, errTooLong
		}
		buf := make([]byte, size+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return nil, err
		}
		args = append(args, string(buf[:size]))
	}
	return args, nil
}
