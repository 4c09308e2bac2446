package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// This file is a deliberately small RESP2 client. The load generator writes
// pre-encoded requests and parses the replies it expects (an array of
// integers, or a status line) straight out of the bufio.Reader's buffer, so
// the hot loop allocates nothing. Setup commands (PING, SCRIPT LOAD, INFO) go
// through [client.Do], which allocates and is never used under load.

// ServerError is an error reply ("-ERR ...") sent by a server.
type ServerError struct {
	Msg string // the reply without the leading '-'
}

func (e *ServerError) Error() string { return "server replied: " + e.Msg }

// errShape reports a well-formed reply of the wrong type or size. The reply has
// been consumed, so the connection stays usable; the load generator counts
// these as bad replies.
var errShape = errors.New("unexpected reply shape")

// errProtocol reports bytes that are not RESP; the connection is unusable.
var errProtocol = errors.New("RESP protocol error")

// ioBufSize is the size of each connection's read and write buffers: large
// enough for a few hundred pipelined requests or replies per system call.
const ioBufSize = 64 << 10

// client is one RESP connection. It is not safe for concurrent use.
type client struct {
	nc net.Conn
	w  *bufio.Writer
	r  *bufio.Reader
}

// dial connects to addr (host:port) over TCP with Nagle's algorithm disabled.
func dial(ctx context.Context, addr string) (*client, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	return &client{nc: nc, w: bufio.NewWriterSize(nc, ioBufSize), r: bufio.NewReaderSize(nc, ioBufSize)}, nil
}

// Close closes the connection; a blocked read returns an error.
func (c *client) Close() error { return c.nc.Close() }

// readLine returns the next CRLF-terminated line without its CRLF. The slice
// points into the reader's buffer and is valid until the next read.
func (c *client) readLine() ([]byte, error) {
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("%w: line longer than %d bytes", errProtocol, ioBufSize)
		}
		if errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("%w: malformed line %q", errProtocol, line)
	}
	return line[:len(line)-2], nil
}

// parseInt parses a base-10 int64 with an optional leading '-' without
// allocating.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	var n uint64
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		d := uint64(ch - '0')
		if n > (1<<63-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	if neg {
		return -int64(n), true
	}
	if n > 1<<63-1 {
		return 0, false
	}
	return int64(n), true
}

// serverError turns an error line ("-ERR ...", CRLF stripped) into an error.
func serverError(line []byte) error {
	return &ServerError{Msg: string(line[1:])}
}

// skipRest consumes whatever follows a reply's header line, so that a reply
// of an unexpected type does not desynchronise the stream.
func (c *client) skipRest(line []byte) error {
	switch line[0] {
	case '+', '-', ':', '_', '#', ',', '(':
		return nil
	case '$', '=', '!':
		n, ok := parseInt(line[1:])
		if !ok {
			return fmt.Errorf("%w: bad bulk length %q", errProtocol, line)
		}
		if n < 0 {
			return nil
		}
		_, err := c.r.Discard(int(n) + 2)
		return err
	case '*', '~', '>', '%':
		n, ok := parseInt(line[1:])
		if !ok {
			return fmt.Errorf("%w: bad aggregate length %q", errProtocol, line)
		}
		if line[0] == '%' {
			n *= 2
		}
		for i := int64(0); i < n; i++ {
			el, err := c.readLine()
			if err != nil {
				return err
			}
			if err := c.skipRest(el); err != nil {
				return err
			}
		}
		return nil
	default:
		return fmt.Errorf("%w: unknown reply type %q", errProtocol, line[0])
	}
}

// readIntArray reads one reply that must be an array of exactly len(dst)
// integers into dst. An error reply returns a *ServerError, any other
// well-formed reply errShape (after consuming it), and I/O or framing trouble
// another error. It does not allocate.
func (c *client) readIntArray(dst []int64) error {
	line, err := c.readLine()
	if err != nil {
		return err
	}
	switch line[0] {
	case '*':
	case '-':
		return serverError(line)
	default:
		if err := c.skipRest(line); err != nil {
			return err
		}
		return errShape
	}
	n, ok := parseInt(line[1:])
	if !ok {
		return fmt.Errorf("%w: bad array length %q", errProtocol, line)
	}
	shapeOK := n == int64(len(dst))
	for i := int64(0); i < n; i++ {
		el, err := c.readLine()
		if err != nil {
			return err
		}
		if el[0] != ':' || !shapeOK {
			shapeOK = false
			if err := c.skipRest(el); err != nil {
				return err
			}
			continue
		}
		v, ok := parseInt(el[1:])
		if !ok {
			return fmt.Errorf("%w: bad integer %q", errProtocol, el)
		}
		dst[i] = v
	}
	if !shapeOK {
		return errShape
	}
	return nil
}

// readStatus reads one reply that must be the status line "+want".
func (c *client) readStatus(want string) error {
	line, err := c.readLine()
	if err != nil {
		return err
	}
	switch line[0] {
	case '+':
		if string(line[1:]) != want {
			return errShape
		}
		return nil
	case '-':
		return serverError(line)
	default:
		if err := c.skipRest(line); err != nil {
			return err
		}
		return errShape
	}
}

// Value is a decoded reply, as returned by [client.Do].
type Value struct {
	Kind  byte // '+', '-', ':', '$' or '*'
	Str   string
	Int   int64
	Array []Value
	Null  bool // a null bulk string or null array
}

// Err returns the reply as an error when it is an error reply.
func (v Value) Err() error {
	if v.Kind == '-' {
		return &ServerError{Msg: v.Str}
	}
	return nil
}

// Ints returns the reply's elements when it is an array of integers.
func (v Value) Ints() ([]int64, bool) {
	if v.Kind != '*' {
		return nil, false
	}
	out := make([]int64, len(v.Array))
	for i, e := range v.Array {
		if e.Kind != ':' {
			return nil, false
		}
		out[i] = e.Int
	}
	return out, true
}

// String renders a reply for messages and tests.
func (v Value) String() string {
	switch v.Kind {
	case '+':
		return v.Str
	case '-':
		return "(error) " + v.Str
	case ':':
		return strconv.FormatInt(v.Int, 10)
	case '$':
		if v.Null {
			return "(nil)"
		}
		return strconv.Quote(v.Str)
	case '*':
		if v.Null {
			return "(nil array)"
		}
		parts := make([]string, len(v.Array))
		for i, e := range v.Array {
			parts[i] = e.String()
		}
		return "[" + strings.Join(parts, " ") + "]"
	}
	return "?"
}

// readValue decodes one complete reply of any RESP2 type.
func (c *client) readValue() (Value, error) {
	line, err := c.readLine()
	if err != nil {
		return Value{}, err
	}
	v := Value{Kind: line[0]}
	switch line[0] {
	case '+', '-':
		v.Str = string(line[1:])
	case ':':
		n, ok := parseInt(line[1:])
		if !ok {
			return v, fmt.Errorf("%w: bad integer %q", errProtocol, line)
		}
		v.Int = n
	case '$':
		n, ok := parseInt(line[1:])
		if !ok {
			return v, fmt.Errorf("%w: bad bulk length %q", errProtocol, line)
		}
		if n < 0 {
			v.Null = true
			return v, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(c.r, buf); err != nil {
			return v, err
		}
		v.Str = string(buf[:n])
	case '*':
		n, ok := parseInt(line[1:])
		if !ok {
			return v, fmt.Errorf("%w: bad array length %q", errProtocol, line)
		}
		if n < 0 {
			v.Null = true
			return v, nil
		}
		v.Array = make([]Value, n)
		for i := range v.Array {
			if v.Array[i], err = c.readValue(); err != nil {
				return v, err
			}
		}
	default:
		// A RESP3 type from a server that should speak RESP2: keep it as
		// an opaque reply rather than losing sync.
		if err := c.skipRest(line); err != nil {
			return v, err
		}
		v.Str = string(line)
	}
	return v, nil
}

// appendCommand appends args encoded as a RESP array of bulk strings.
func appendCommand(dst []byte, args ...string) []byte {
	dst = append(dst, '*')
	dst = strconv.AppendInt(dst, int64(len(args)), 10)
	dst = append(dst, '\r', '\n')
	for _, a := range args {
		dst = appendBulk(dst, a)
	}
	return dst
}

// appendBulk appends s encoded as a RESP bulk string.
func appendBulk(dst []byte, s string) []byte {
	dst = append(dst, '$')
	dst = strconv.AppendInt(dst, int64(len(s)), 10)
	dst = append(dst, '\r', '\n')
	dst = append(dst, s...)
	return append(dst, '\r', '\n')
}

// Do sends one command and returns its reply. An error reply is returned as a
// Value, not as an error; the error is for I/O and protocol failures. A
// deadline bounds the round trip so that a wedged server cannot hang setup.
func (c *client) Do(timeout time.Duration, args ...string) (Value, error) {
	if timeout > 0 {
		_ = c.nc.SetDeadline(time.Now().Add(timeout))
		defer func() { _ = c.nc.SetDeadline(time.Time{}) }()
	}
	if _, err := c.w.Write(appendCommand(nil, args...)); err != nil {
		return Value{}, err
	}
	if err := c.w.Flush(); err != nil {
		return Value{}, err
	}
	return c.readValue()
}
