package replication

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/sluicehq/sluice/keyspace"
)

// blockSize is the size of one buffer of the backlog: memory is taken and
// given back in blocks, reused through a spare list, so appending
// allocates nothing in steady state.
const blockSize = 16 << 10

// ErrDropped is returned by Reader.Read once the reader fell further
// behind the stream than the backlog's limit, or the stream was reset.
var ErrDropped = errors.New("replica fell too far behind the replication stream")

// Backlog is the replication stream kept in memory: the bytes of the last
// Size at least (Redis's repl-backlog-size), from which a replica that
// reconnects resumes with a partial resynchronisation, and whatever
// connected replicas have not read yet, up to Limit behind the end (Redis's
// client-output-buffer-limit for replicas). Every reader reads from this
// one buffer: replicas share the memory, and a slow one costs memory only
// for what it has not read.
//
// On a primary the Backlog is the keyspace's Journal (through
// keyspace.Tee): Record encodes each change under the changed key's shard
// lock and never blocks on the network. On a replica Record is muted and
// the primary's bytes are appended as received, so that the replica's
// offsets are the primary's and its own replicas can follow it. It is safe
// for concurrent use.
type Backlog struct {
	size, limit int64

	mu     sync.Mutex
	blocks []*block // retained, oldest first; the last is being filled
	spare  []*block // emptied blocks, reused
	end    int64    // the stream's end offset: bytes ever appended
	// endA mirrors end, readable without mu (Node.StreamOffset).
	endA  atomic.Int64
	muted bool // Record ignores the keyspace (a replica)
	// idle is set until the first replica connects or the node first
	// follows a primary: until then Record returns at once, so a server
	// that never replicates pays nothing per change (Redis, too, creates
	// its backlog when the first replica attaches).
	idle    atomic.Bool
	readers []*Reader
	scratch []byte // one record being encoded, under mu
}

// block is blockSize bytes of the stream starting at offset start.
type block struct {
	start int64
	buf   []byte // len: bytes filled
}

// NewBacklog returns an empty backlog at offset 0 keeping at least size
// bytes and dropping readers that fall more than limit bytes behind
// (limit is raised to size when lower).
func NewBacklog(size, limit int64) *Backlog {
	b := &Backlog{size: max(size, 1), limit: max(limit, size, 1)}
	b.idle.Store(true)
	return b
}

// activate ends idleness: every later change is recorded. A replica's
// full resync reads the stream's offset after this, and a change that
// still saw the backlog idle had released its key's shard lock before the
// snapshot took it, so the snapshot holds it: nothing falls between.
func (b *Backlog) activate() { b.idle.Store(false) }

// Record appends c to the stream, unless idle or muted. It implements
// keyspace.Journal.
func (b *Backlog) Record(c keyspace.Change) {
	if b.idle.Load() {
		return
	}
	b.mu.Lock()
	if !b.muted {
		b.scratch = appendChange(b.scratch[:0], c)
		b.appendLocked(b.scratch)
	}
	b.mu.Unlock()
}

// appendPing appends a heartbeat carrying unixNanos.
func (b *Backlog) appendPing(unixNanos int64) {
	b.mu.Lock()
	b.scratch = appendPing(b.scratch[:0], unixNanos)
	b.appendLocked(b.scratch)
	b.mu.Unlock()
}

// appendGetAck appends a GETACK and returns the offset before it.
func (b *Backlog) appendGetAck() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	at := b.end
	b.appendLocked([]byte{tagGetAck})
	for _, r := range b.readers {
		select {
		case r.urgent <- struct{}{}:
		default:
		}
	}
	return at
}

// appendRaw appends bytes received from this node's primary (a replica
// mirrors its primary's stream).
func (b *Backlog) appendRaw(p []byte) {
	b.mu.Lock()
	b.appendLocked(p)
	b.mu.Unlock()
}

func (b *Backlog) appendLocked(p []byte) {
	grew := false
	for len(p) > 0 {
		var last *block
		if n := len(b.blocks); n > 0 && len(b.blocks[n-1].buf) < blockSize {
			last = b.blocks[n-1]
		} else {
			last = b.newBlock()
			grew = true
		}
		k := min(blockSize-len(last.buf), len(p))
		last.buf = append(last.buf, p[:k]...)
		p = p[k:]
		b.end += int64(k)
	}
	b.endA.Store(b.end)
	if grew {
		b.trim()
	}
	for _, r := range b.readers {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

func (b *Backlog) newBlock() *block {
	var bl *block
	if n := len(b.spare); n > 0 {
		bl, b.spare = b.spare[n-1], b.spare[:n-1]
		bl.buf = bl.buf[:0]
	} else {
		bl = &block{buf: make([]byte, 0, blockSize)}
	}
	bl.start = b.end
	b.blocks = append(b.blocks, bl)
	return bl
}

// trim gives back the blocks no one needs: older than Size before the end
// and already read by every reader. A reader further behind than Limit is
// dropped instead of holding memory.
func (b *Backlog) trim() {
	keep := b.end - b.size
	for _, r := range b.readers {
		if !r.dropped && r.pos < b.end-b.limit {
			r.dropped = true
		}
		if !r.dropped || r.busy {
			// A reader writing blocks out keeps them until it is done,
			// dropped or not (see Reader.next).
			keep = min(keep, r.pos)
		}
	}
	i := 0
	for i < len(b.blocks)-1 && b.blocks[i].start+int64(len(b.blocks[i].buf)) <= keep {
		i++
	}
	if i > 0 {
		b.spare = append(b.spare, b.blocks[:i]...)
		b.blocks = append(b.blocks[:0], b.blocks[i:]...)
	}
}

// first is the offset before the oldest byte held. Called with mu held.
func (b *Backlog) first() int64 {
	if len(b.blocks) == 0 {
		return b.end
	}
	return b.blocks[0].start
}

// Offset is the offset of the end of the stream: master_repl_offset on a
// primary, slave_repl_offset on a replica.
func (b *Backlog) Offset() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.end
}

// BacklogStatus describes the backlog for INFO.
type BacklogStatus struct {
	Size    int64 // repl_backlog_size
	First   int64 // offset before the oldest byte held (repl_backlog_first_byte_offset - 1)
	End     int64 // master_repl_offset
	Bytes   int64 // memory held by blocks in use
	Readers int
}

// Status reports the backlog's extent.
func (b *Backlog) Status() BacklogStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	return BacklogStatus{Size: b.size, First: b.first(), End: b.end,
		Bytes: int64(len(b.blocks)) * blockSize, Readers: len(b.readers)}
}

// setMuted makes Record ignore the keyspace (true: this node is a replica)
// or append it (false: a primary).
func (b *Backlog) setMuted(v bool) {
	b.activate() // a node that ever followed a primary keeps its stream going
	b.mu.Lock()
	b.muted = v
	b.mu.Unlock()
}

// isMuted reports whether Record ignores the keyspace.
func (b *Backlog) isMuted() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.muted
}

// reset empties the backlog and starts the stream again at offset (a
// replica's full resynchronisation), dropping every reader.
func (b *Backlog) reset(offset int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.spare = append(b.spare, b.blocks...)
	b.blocks = b.blocks[:0]
	b.end = offset
	b.endA.Store(offset)
	for _, r := range b.readers {
		r.dropped = true
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

// Reader reads the stream from an offset on, holding the backlog's bytes
// it has not read yet (up to the backlog's limit).
type Reader struct {
	b       *Backlog
	pos     int64 // under b.mu
	dropped bool  // under b.mu
	busy    bool  // under b.mu: between next and advance
	wake    chan struct{}
	// urgent receives a value when a GETACK was appended: a WAIT is
	// waiting, so the bytes should not be held back to batch them.
	urgent chan struct{}
}

// newReader returns a reader at from, or false when the backlog no longer
// (or does not yet) hold the bytes after from. from < 0 means the end.
func (b *Backlog) newReader(from int64) (*Reader, int64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if from < 0 {
		from = b.end
	}
	if from < b.first() || from > b.end {
		return nil, 0, false
	}
	r := &Reader{b: b, pos: from, wake: make(chan struct{}, 1), urgent: make(chan struct{}, 1)}
	b.readers = append(b.readers, r)
	return r, from, true
}

// canContinue reports whether a reader could start at offset.
func (b *Backlog) canContinue(offset int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return offset >= b.first() && offset <= b.end
}

// next returns up to max of the stream's next bytes as slices of the
// backlog's own blocks, without copying them (dst is reused), and their
// length: 0 when the reader has read everything appended so far (wait on
// Wake), ErrDropped once it was dropped. The slices stay valid, and the
// blocks unrecycled, until advance, which must follow each next.
func (r *Reader) next(max int, dst [][]byte) ([][]byte, int, error) {
	b := r.b
	b.mu.Lock()
	defer b.mu.Unlock()
	dst = dst[:0]
	if r.dropped {
		return dst, 0, ErrDropped
	}
	n, at := 0, r.pos
	for _, bl := range b.blocks {
		if n >= max {
			break
		}
		end := bl.start + int64(len(bl.buf))
		if end <= at {
			continue
		}
		part := bl.buf[at-bl.start:]
		part = part[:min(len(part), max-n)]
		dst = append(dst, part)
		n += len(part)
		at += int64(len(part))
	}
	r.busy = n > 0
	return dst, n, nil
}

// advance moves the reader past n bytes returned by next and releases
// the blocks next returned.
func (r *Reader) advance(n int) {
	b := r.b
	b.mu.Lock()
	r.pos += int64(n)
	r.busy = false
	b.mu.Unlock()
}

// Read copies the stream's next bytes into p and returns how many: 0 when
// it has read everything appended so far (wait on Wake), ErrDropped once
// the reader was dropped.
func (r *Reader) Read(p []byte) (int, error) {
	parts, n, err := r.next(len(p), nil)
	if err != nil || n == 0 {
		return 0, err
	}
	at := 0
	for _, part := range parts {
		at += copy(p[at:], part)
	}
	r.advance(n)
	return n, nil
}

// Wake receives a value after bytes were appended (or the reader was
// dropped) since the last receive.
func (r *Reader) Wake() <-chan struct{} { return r.wake }

// Close stops the reader: the backlog no longer keeps bytes for it.
func (r *Reader) Close() {
	b := r.b
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, x := range b.readers {
		if x == r {
			b.readers = append(b.readers[:i], b.readers[i+1:]...)
			break
		}
	}
	r.dropped = true
}
