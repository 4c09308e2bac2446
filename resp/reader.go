package resp

import (
	"bytes"
	"io"
)

// Sizes used by the request reader that are not configurable.
const (
	// readBufInit is the initial (and shrink-back) size of a read buffer.
	readBufInit = 16 * 1024
	// maxCountLine is how far the reader looks for the CRLF that ends a
	// "*N" or "$N" header before giving up (Redis' PROTO_INLINE_MAX_SIZE).
	maxCountLine = 64 * 1024
	// maxCountDigits is the longest accepted "*N"/"$N" number (int64 has 19).
	maxCountDigits = 19
)

// protocolError is a malformed request. The connection answers with reply
// (unless silent) and is then closed.
type protocolError struct {
	msg    string // lowercase description, also the tail of the reply
	reply  string // RESP error line without "-" and CRLF
	silent bool   // close without replying (cross-protocol attack)
}

func (e *protocolError) Error() string { return "resp: protocol error: " + e.msg }

func newProtocolError(msg string) *protocolError {
	return &protocolError{msg: msg, reply: "ERR Protocol error: " + msg}
}

// Protocol error messages, as Redis words them.
const (
	msgInvalidMbulk   = "invalid multibulk length"
	msgInvalidBulk    = "invalid bulk length"
	msgTooBigMbulk    = "too big mbulk count string"
	msgTooBigBulk     = "too big bulk count string"
	msgTooBigInline   = "too big inline request"
	msgUnbalanced     = "unbalanced quotes in request"
	msgQueryBufLimit  = "max query buffer length reached"
	msgCrossProtocol  = "possible cross-protocol attack"
	expectedDollarFmt = "expected '$', got '"
)

// readerLimits are the limits the reader enforces.
type readerLimits struct {
	maxBulk        int64
	maxArgs        int64
	maxInline      int
	maxQuery       int
	preAuthArgs    int64
	preAuthBulkLen int64
}

// span is an argument's position, relative to the start of its command.
type span struct{ start, end int }

// reader is an incremental RESP request parser over a growable buffer.
//
// Unread input is buf[r:w]; r is also the first byte of the command being
// parsed. Progress inside a partially received command (pos, nargs, bulk,
// spans, scan) survives across reads, so nothing is parsed twice. Argument
// positions are kept relative to r, which makes compaction (moving buf[r:w]
// to the front) a single copy with no fix-ups.
type reader struct {
	buf   []byte
	r, w  int
	pos   int // absolute index of the next unparsed byte of the current command
	scan  int // absolute index where the search for a line end resumes
	nargs int // declared arguments of the multibulk in progress; 0 = none
	bulk  int // declared length of the bulk in progress; -1 = expecting "$N"
	spans []span
	args  [][]byte
	lim   readerLimits
	// budget is shared by the server's connections: len(buf) beyond
	// initSize is taken from it while held (nil: no shared bound).
	budget *queryBudget
}

func newReader(lim readerLimits, budget *queryBudget) *reader {
	return &reader{buf: make([]byte, lim.initSize()), bulk: -1, lim: lim, budget: budget}
}

// initSize is the initial and shrink-back size of the read buffer.
func (l readerLimits) initSize() int { return min(readBufInit, l.maxQuery) }

// next returns the next complete command, or (nil, nil) when more input is
// needed. preAuth applies the pre-authentication caps. The returned args
// alias the buffer and are valid until the next call to fill.
func (rd *reader) next(preAuth bool) ([][]byte, error) {
	for {
		if rd.nargs == 0 {
			if rd.r == rd.w {
				return nil, nil
			}
			if rd.buf[rd.r] != '*' {
				args, more, err := rd.inline()
				if err != nil || args != nil || !more {
					return args, err
				}
				continue // empty line
			}
			nl, ok, err := rd.line(rd.r, msgTooBigMbulk)
			if err != nil || !ok {
				return nil, err
			}
			n, valid := parseCount(rd.buf[rd.r+1 : nl])
			maxArgs := rd.lim.maxArgs
			if preAuth && rd.lim.preAuthArgs < maxArgs {
				maxArgs = rd.lim.preAuthArgs
			}
			if !valid || n > maxArgs {
				return nil, newProtocolError(msgInvalidMbulk)
			}
			rd.pos = nl + 2
			rd.scan = rd.pos
			if n <= 0 { // "*0", "*-1": empty command, ignored
				rd.r = rd.pos
				continue
			}
			rd.nargs = int(n)
			rd.bulk = -1
			rd.spans = rd.spans[:0]
		}
		for len(rd.spans) < rd.nargs {
			if rd.bulk < 0 {
				if rd.pos >= rd.w {
					return nil, nil
				}
				if c := rd.buf[rd.pos]; c != '$' {
					return nil, newProtocolError(expectedDollarFmt + string(rune(c)) + "'")
				}
				nl, ok, err := rd.line(rd.pos, msgTooBigBulk)
				if err != nil || !ok {
					return nil, err
				}
				n, valid := parseCount(rd.buf[rd.pos+1 : nl])
				maxBulk := rd.lim.maxBulk
				if preAuth && rd.lim.preAuthBulkLen < maxBulk {
					maxBulk = rd.lim.preAuthBulkLen
				}
				if !valid || n < 0 || n > maxBulk {
					return nil, newProtocolError(msgInvalidBulk)
				}
				if int64(nl+2-rd.r)+n+2 > int64(rd.lim.maxQuery) {
					return nil, newProtocolError(msgQueryBufLimit)
				}
				rd.bulk = int(n)
				rd.pos = nl + 2
				rd.scan = rd.pos
			}
			if rd.w-rd.pos < rd.bulk+2 {
				return nil, nil
			}
			// Like Redis, the two bytes after the payload are skipped
			// without being checked.
			rd.spans = append(rd.spans, span{rd.pos - rd.r, rd.pos - rd.r + rd.bulk})
			rd.pos += rd.bulk + 2
			rd.scan = rd.pos
			rd.bulk = -1
		}
		args := rd.build()
		rd.r = rd.pos
		rd.nargs = 0
		return args, nil
	}
}

// build turns spans into argument slices (capacity-capped so an append by
// the handler cannot overwrite the next argument).
func (rd *reader) build() [][]byte {
	rd.args = rd.args[:0]
	for _, s := range rd.spans {
		a, b := rd.r+s.start, rd.r+s.end
		rd.args = append(rd.args, rd.buf[a:b:b])
	}
	return rd.args
}

// line finds the "\r\n" ending a "*N"/"$N" header starting at from. It
// returns the index of '\r', or ok=false when more input is needed.
func (rd *reader) line(from int, tooBig string) (nl int, ok bool, err error) {
	start := max(rd.scan, from+1)
	i := bytes.IndexByte(rd.buf[start:rd.w], '\r')
	if i < 0 {
		rd.scan = rd.w
		if rd.w-from > maxCountLine {
			return 0, false, newProtocolError(tooBig)
		}
		return 0, false, nil
	}
	nl = start + i
	if nl+1 >= rd.w {
		rd.scan = nl
		return 0, false, nil
	}
	if rd.buf[nl+1] != '\n' {
		if tooBig == msgTooBigMbulk {
			return 0, false, newProtocolError(msgInvalidMbulk)
		}
		return 0, false, newProtocolError(msgInvalidBulk)
	}
	return nl, true, nil
}

// parseCount parses an optional '-' followed by 1..19 decimal digits,
// without overflow.
func parseCount(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg = true
		b = b[1:]
	}
	if len(b) == 0 || len(b) > maxCountDigits {
		return 0, false
	}
	var u uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		u = u*10 + uint64(c-'0') // 19 digits cannot overflow uint64
	}
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return -int64(u), true // -(1<<63) wraps to itself: correct
	}
	if u > 1<<63-1 {
		return 0, false
	}
	return int64(u), true
}

// inline parses an inline command at r. It returns the args of a complete
// command; (nil, true, nil) for an empty line that was skipped; and
// (nil, false, nil) when more input is needed.
func (rd *reader) inline() (args [][]byte, more bool, err error) {
	start := max(rd.scan, rd.r)
	i := bytes.IndexByte(rd.buf[start:rd.w], '\n')
	if i < 0 {
		rd.scan = rd.w
		if rd.w-rd.r > rd.lim.maxInline {
			return nil, false, newProtocolError(msgTooBigInline)
		}
		return nil, false, nil
	}
	nl := start + i
	if nl-rd.r > rd.lim.maxInline {
		return nil, false, newProtocolError(msgTooBigInline)
	}
	end := nl
	if end > rd.r && rd.buf[end-1] == '\r' {
		end--
	}
	spans, ok := splitArgs(rd.buf[rd.r:end], rd.spans[:0])
	rd.spans = spans
	if !ok {
		return nil, false, newProtocolError(msgUnbalanced)
	}
	if len(spans) == 0 {
		rd.r = nl + 1
		rd.pos, rd.scan = rd.r, rd.r
		return nil, true, nil
	}
	args = rd.build()
	rd.r = nl + 1
	rd.pos, rd.scan = rd.r, rd.r
	if isCrossProtocol(args) {
		return nil, false, &protocolError{msg: msgCrossProtocol, silent: true}
	}
	return args, false, nil
}

// isCrossProtocol reports whether an inline command looks like HTTP.
func isCrossProtocol(args [][]byte) bool {
	first := args[0]
	if len(first) >= 5 && bytes.EqualFold(first[:5], []byte("host:")) {
		return true
	}
	if bytes.EqualFold(first, []byte("POST")) { // Redis closes on POST unconditionally
		return true
	}
	for _, m := range [...]string{"GET", "PUT", "HEAD", "DELETE", "OPTIONS"} {
		if bytes.EqualFold(first, []byte(m)) {
			for _, a := range args[1:] {
				if bytes.Contains(a, []byte("HTTP/")) {
					return true
				}
			}
			return false
		}
	}
	return false
}

// splitArgs splits an inline command like Redis' sdssplitargs, decoding
// quotes and escapes in place (the output never outruns the input). Spans
// are relative to the start of line. ok is false on unbalanced quotes.
// As in C, a NUL byte ends the line.
func splitArgs(line []byte, spans []span) (_ []span, ok bool) {
	n := len(line)
	at := func(i int) byte {
		if i < n {
			return line[i]
		}
		return 0
	}
	p, out := 0, 0
	for {
		for p < n && isSpace(line[p]) {
			p++
		}
		if at(p) == 0 {
			return spans, true
		}
		inq, insq, done := false, false, false
		tokStart := out
		for !done {
			c := at(p)
			switch {
			case inq:
				switch {
				case c == '\\' && at(p+1) == 'x' && isHex(at(p+2)) && isHex(at(p+3)):
					line[out] = hexVal(at(p+2))<<4 | hexVal(at(p+3))
					out++
					p += 3
				case c == '\\' && at(p+1) != 0:
					p++
					e := line[p]
					switch e {
					case 'n':
						e = '\n'
					case 'r':
						e = '\r'
					case 't':
						e = '\t'
					case 'b':
						e = '\b'
					case 'a':
						e = '\a'
					}
					line[out] = e
					out++
				case c == '"':
					if nx := at(p + 1); nx != 0 && !isSpace(nx) {
						return spans, false
					}
					done = true
				case c == 0:
					return spans, false
				default:
					line[out] = c
					out++
				}
			case insq:
				switch {
				case c == '\\' && at(p+1) == '\'':
					p++
					line[out] = '\''
					out++
				case c == '\'':
					if nx := at(p + 1); nx != 0 && !isSpace(nx) {
						return spans, false
					}
					done = true
				case c == 0:
					return spans, false
				default:
					line[out] = c
					out++
				}
			default:
				switch c {
				case ' ', '\n', '\r', '\t', 0:
					done = true
				case '"':
					inq = true
				case '\'':
					insq = true
				default:
					line[out] = c
					out++
				}
			}
			if at(p) != 0 {
				p++
			}
		}
		spans = append(spans, span{tokStart, out})
	}
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func hexVal(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// fill makes room and performs exactly one Read into the buffer. It fails
// with a protocol error when a single command would exceed maxQuery.
func (rd *reader) fill(src io.Reader) (int, error) {
	if err := rd.makeRoom(); err != nil {
		return 0, err
	}
	n, err := src.Read(rd.buf[rd.w:])
	if n > 0 {
		rd.w += n
	}
	return n, err
}

// fillFD is fill for a raw non-blocking socket: one read system call.
// syscall.EAGAIN means no bytes were waiting; (0, nil) is end of file.
func (rd *reader) fillFD(fd int) (int, error) {
	if err := rd.makeRoom(); err != nil {
		return 0, err
	}
	n, err := readRaw(fd, rd.buf[rd.w:])
	rd.w += n
	return n, err
}

// makeRoom guarantees free space after w: it rewinds an empty buffer,
// compacts when the unread part is small, and grows (doubling, capped at
// maxQuery) otherwise. Every byte is copied O(1) times amortized.
func (rd *reader) makeRoom() error {
	if rd.r == rd.w {
		rd.shift(rd.r)
		return nil
	}
	size := len(rd.buf)
	if size-rd.w >= size/4 && rd.w < size {
		return nil
	}
	used := rd.w - rd.r
	if used <= size/2 || (size >= rd.lim.maxQuery && rd.r > 0) {
		copy(rd.buf, rd.buf[rd.r:rd.w])
		rd.shift(rd.r)
		return nil
	}
	if size >= rd.lim.maxQuery {
		if rd.w < size {
			return nil
		}
		return newProtocolError(msgQueryBufLimit)
	}
	grown := min(2*size, rd.lim.maxQuery)
	if !rd.budget.reserve(grown - size) {
		return errQueryBudget
	}
	nb := make([]byte, grown)
	copy(nb, rd.buf[rd.r:rd.w])
	rd.buf = nb
	rd.shift(rd.r)
	return nil
}

// shift moves all positions d bytes toward the front (after a copy).
func (rd *reader) shift(d int) {
	rd.r -= d
	rd.w -= d
	rd.pos = max(rd.pos-d, rd.r)
	rd.scan = max(rd.scan-d, rd.r)
}

// shrink drops a large buffer when it holds no data.
func (rd *reader) shrink() {
	if rd.r == rd.w && len(rd.buf) > rd.lim.initSize() {
		rd.budget.give(len(rd.buf) - rd.lim.initSize())
		rd.buf = make([]byte, rd.lim.initSize())
		rd.r, rd.w, rd.pos, rd.scan = 0, 0, 0, 0
	}
}

// release drops the buffers of a reader that is done (its connection
// closed), returning what it took from the budget; the reader must not be
// used again.
func (rd *reader) release() {
	rd.budget.give(max(len(rd.buf)-rd.lim.initSize(), 0))
	rd.buf, rd.spans, rd.args = nil, nil, nil
	rd.r, rd.w, rd.pos, rd.scan = 0, 0, 0, 0
}
