package persistence

import "encoding/binary"

// Operations in the pending log: opSet key tat, opDelete key, opFlush (the
// TAT namespace), opCreate key tat (opSet of a key that had no TAT),
// opForget key (opDelete of a key no fold stored but from its records, see
// gcra.Journal); opPut key value, opDrop key, opFlushPrefix prefix (other
// namespaces; their keys carry the namespace). A key or value is a uvarint
// length and its bytes; a TAT is 8 bytes big-endian.
const (
	opSet byte = iota + 1
	opDelete
	opFlush
	opPut
	opDrop
	opFlushPrefix
	opCreate
	opForget
)

const (
	chunkSize     = 64 << 10 // pending log chunk
	maxFreeChunks = 64       // chunks kept for reuse (4 MiB)
)

// pendingLog is the encoded changes waiting for the writer, in chunks, so
// that appending never copies what is already buffered however far the
// writer falls behind. An operation never spans two chunks. It is not safe
// for concurrent use: Store.mu guards it.
type pendingLog struct {
	chunks [][]byte
	size   int      // bytes in chunks
	free   [][]byte // drained chunks of chunkSize, for reuse
}

// tail returns the last chunk, first adding one when it has less than n
// bytes of room.
func (p *pendingLog) tail(n int) *[]byte {
	if k := len(p.chunks); k > 0 && cap(p.chunks[k-1])-len(p.chunks[k-1]) >= n {
		return &p.chunks[k-1]
	}
	var c []byte
	if k := len(p.free); k > 0 && n <= chunkSize {
		c, p.free = p.free[k-1], p.free[:k-1]
	} else {
		c = make([]byte, 0, max(n, chunkSize))
	}
	p.chunks = append(p.chunks, c)
	return &p.chunks[len(p.chunks)-1]
}

func (p *pendingLog) appendSet(op byte, key []byte, tat int64) {
	c := p.tail(1 + binary.MaxVarintLen64 + len(key) + 8)
	n := len(*c)
	*c = append(*c, op)
	*c = binary.AppendUvarint(*c, uint64(len(key)))
	*c = append(*c, key...)
	*c = binary.BigEndian.AppendUint64(*c, uint64(tat))
	p.size += len(*c) - n
}

func (p *pendingLog) appendDelete(op byte, key []byte) {
	c := p.tail(1 + binary.MaxVarintLen64 + len(key))
	n := len(*c)
	*c = append(*c, op)
	*c = binary.AppendUvarint(*c, uint64(len(key)))
	*c = append(*c, key...)
	p.size += len(*c) - n
}

// appendRaw appends op with ns+key and, for opPut, value.
func (p *pendingLog) appendRaw(op byte, ns string, key, value []byte) {
	c := p.tail(1 + 2*binary.MaxVarintLen64 + len(ns) + len(key) + len(value))
	n := len(*c)
	*c = append(*c, op)
	*c = binary.AppendUvarint(*c, uint64(len(ns)+len(key)))
	*c = append(*c, ns...)
	*c = append(*c, key...)
	if op == opPut {
		*c = binary.AppendUvarint(*c, uint64(len(value)))
		*c = append(*c, value...)
	}
	p.size += len(*c) - n
}

func (p *pendingLog) appendFlush() {
	c := p.tail(1)
	*c = append(*c, opFlush)
	p.size++
}

// take hands over the chunks, leaving the log empty; dst's storage is
// reused for the log's next chunk list.
func (p *pendingLog) take(dst [][]byte) [][]byte {
	out := p.chunks
	p.chunks, p.size = dst[:0], 0
	return out
}

// recycle keeps drained chunks for reuse and clears the list.
func (p *pendingLog) recycle(chunks [][]byte) {
	for i, c := range chunks {
		if cap(c) == chunkSize && len(p.free) < maxFreeChunks {
			p.free = append(p.free, c[:0])
		}
		chunks[i] = nil
	}
}

// ops calls fn for every operation encoded in chunks, in order, stopping at
// the first error. key and value alias the chunk; tat is 0 unless op is
// opSet or opCreate, value nil unless op is opPut.
func ops(chunks [][]byte, fn func(op byte, key []byte, tat int64, value []byte) error) error {
	for _, c := range chunks {
		for p := 0; p < len(c); {
			op := c[p]
			p++
			var key, value []byte
			var tat int64
			if op != opFlush {
				n, w := binary.Uvarint(c[p:])
				p += w
				key = c[p : p+int(n)]
				p += int(n)
				switch op {
				case opSet, opCreate:
					tat = int64(binary.BigEndian.Uint64(c[p:]))
					p += 8
				case opPut:
					n, w := binary.Uvarint(c[p:])
					p += w
					value = c[p : p+int(n)]
					p += int(n)
				}
			}
			if err := fn(op, key, tat, value); err != nil {
				return err
			}
		}
	}
	return nil
}
