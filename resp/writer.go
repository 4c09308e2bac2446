package resp

import (
	"math"
	"strconv"

	"github.com/tidwall/redcon"
)

// The reply writers append to the connection's reply buffer; nothing is
// sent until the connection flushes after the current batch of pipelined
// commands (or when the buffer reaches MaxPendingReply). They must only be
// called from the connection's goroutine (inside ServeRESP, OnOpen or
// OnClose).

// WriteInt writes an integer reply (":n").
func (c *Conn) WriteInt(n int64) { c.wbuf = redcon.AppendInt(c.wbuf, n) }

// WriteArray writes an array header ("*n"); n elements must follow.
func (c *Conn) WriteArray(n int) { c.wbuf = redcon.AppendArray(c.wbuf, n) }

// WriteBulk writes a bulk string reply ("$len" + data).
func (c *Conn) WriteBulk(b []byte) { c.wbuf = redcon.AppendBulk(c.wbuf, b) }

// WriteBulkString writes a bulk string reply ("$len" + data).
func (c *Conn) WriteBulkString(s string) { c.wbuf = redcon.AppendBulkString(c.wbuf, s) }

// WriteSimple writes a simple string reply ("+s"); CR and LF in s are
// replaced by spaces.
func (c *Conn) WriteSimple(s string) { c.wbuf = redcon.AppendString(c.wbuf, s) }

// WriteError writes an error reply ("-msg"). msg carries its own code, as
// in "ERR unknown command" or "WRONGTYPE ..."; CR and LF are replaced by
// spaces.
func (c *Conn) WriteError(msg string) { c.wbuf = redcon.AppendError(c.wbuf, msg) }

// WriteNull writes a null bulk string: "$-1" in RESP2, "_" in RESP3.
func (c *Conn) WriteNull() {
	if c.Proto() == 3 {
		c.wbuf = append(c.wbuf, "_\r\n"...)
		return
	}
	c.wbuf = redcon.AppendNull(c.wbuf)
}

// WriteNullArray writes a null array: "*-1" in RESP2, "_" in RESP3.
func (c *Conn) WriteNullArray() {
	if c.Proto() == 3 {
		c.wbuf = append(c.wbuf, "_\r\n"...)
		return
	}
	c.wbuf = append(c.wbuf, "*-1\r\n"...)
}

// WriteMap writes a map header for n key/value pairs: "%n" in RESP3, an
// array of 2n elements in RESP2. 2n elements must follow.
func (c *Conn) WriteMap(n int) {
	if c.Proto() == 3 {
		c.wbuf = appendHeader(c.wbuf, '%', int64(n))
		return
	}
	c.wbuf = redcon.AppendArray(c.wbuf, 2*n)
}

// WriteSet writes a set header: "~n" in RESP3, "*n" in RESP2.
func (c *Conn) WriteSet(n int) {
	if c.Proto() == 3 {
		c.wbuf = appendHeader(c.wbuf, '~', int64(n))
		return
	}
	c.wbuf = redcon.AppendArray(c.wbuf, n)
}

// WriteBool writes a boolean: "#t"/"#f" in RESP3, ":1"/":0" in RESP2.
func (c *Conn) WriteBool(v bool) {
	switch {
	case c.Proto() == 3 && v:
		c.wbuf = append(c.wbuf, "#t\r\n"...)
	case c.Proto() == 3:
		c.wbuf = append(c.wbuf, "#f\r\n"...)
	case v:
		c.wbuf = append(c.wbuf, ":1\r\n"...)
	default:
		c.wbuf = append(c.wbuf, ":0\r\n"...)
	}
}

// WriteDouble writes a double: ",f" in RESP3, a bulk string in RESP2.
// The shortest representation that round-trips is used; infinities and
// NaN are written as "inf", "-inf" and "nan" like Redis.
func (c *Conn) WriteDouble(f float64) {
	var tmp [32]byte
	num := appendDouble(tmp[:0], f)
	if c.Proto() == 3 {
		c.wbuf = append(c.wbuf, ',')
		c.wbuf = append(c.wbuf, num...)
		c.wbuf = append(c.wbuf, '\r', '\n')
		return
	}
	c.wbuf = redcon.AppendBulk(c.wbuf, num)
}

func appendDouble(b []byte, f float64) []byte {
	switch {
	case math.IsInf(f, 1):
		return append(b, "inf"...)
	case math.IsInf(f, -1):
		return append(b, "-inf"...)
	case math.IsNaN(f):
		return append(b, "nan"...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

// WriteVerbatim writes a verbatim string: "=len\r\nfmt:s" in RESP3, a bulk
// string of s in RESP2. format must be three bytes ("txt", "mkd"); any
// other value is replaced by "txt".
func (c *Conn) WriteVerbatim(format, s string) {
	if c.Proto() != 3 {
		c.wbuf = redcon.AppendBulkString(c.wbuf, s)
		return
	}
	if len(format) != 3 {
		format = "txt"
	}
	c.wbuf = appendHeader(c.wbuf, '=', int64(len(s)+4))
	c.wbuf = append(c.wbuf, format...)
	c.wbuf = append(c.wbuf, ':')
	c.wbuf = append(c.wbuf, s...)
	c.wbuf = append(c.wbuf, '\r', '\n')
}

// WritePush writes a push header: ">n" in RESP3, "*n" in RESP2.
func (c *Conn) WritePush(n int) {
	if c.Proto() == 3 {
		c.wbuf = appendHeader(c.wbuf, '>', int64(n))
		return
	}
	c.wbuf = redcon.AppendArray(c.wbuf, n)
}

// WriteRaw appends b to the reply buffer unchanged; b must be valid RESP.
func (c *Conn) WriteRaw(b []byte) { c.wbuf = append(c.wbuf, b...) }

func appendHeader(b []byte, kind byte, n int64) []byte {
	b = append(b, kind)
	b = strconv.AppendInt(b, n, 10)
	return append(b, '\r', '\n')
}

// Pending is how many reply bytes are buffered and not yet sent. Inside
// ServeRESP it is more than zero exactly when an earlier command of the
// same batch replied and nothing was flushed since: no read or wait came
// between the two commands.
func (c *Conn) Pending() int { return len(c.wbuf) }

// IsError reports whether the reply written at offset off of the pending
// replies (a Pending value taken before the command ran) is an error
// ("-..." or RESP3's "!...").
func (c *Conn) IsError(off int) bool {
	return off < len(c.wbuf) && (c.wbuf[off] == '-' || c.wbuf[off] == '!')
}
