package persistence

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"strconv"
)

// Journal segments, Pebble's write-ahead logs and its MANIFEST share
// Pebble's record format (package github.com/cockroachdb/pebble/record):
// 32 KiB blocks packed with chunks, each a header — a masked CRC-32C of the
// chunk's type and payload, the payload's length and its type (a whole
// record, or the first, a middle or the last piece of one) — and the
// payload. Pebble's write-ahead logs use the recyclable variant, whose
// header adds the low 32 bits of the log's number (its checksum covers them
// too), so that a log written over a recycled file ends at the first chunk
// of the file's previous life. A block ends in zero padding where its rest
// cannot hold a header (fewer than 7 bytes, or 11 in a recyclable log).
//
// Pebble's record.Reader treats the first bad chunk as the end: its
// recovery (skipping to the next 32 KiB block) is unexported in v1.1.5, and
// would drop every good record of that block anyway. scanLog reads the
// same format but carries on past damage: after a chunk that fails its
// checksum (or whose header cannot be right) it resumes at the next offset
// where a whole chunk passes its checksum, since a damaged length cannot be
// trusted to say where that is. It can thus tell a torn tail (nothing
// readable after the damage: a crash interrupted the last write) from
// corruption (records readable after it), and hand on every record it
// could read.

// Chunk layout (see package record).
const (
	logBlockSize     = 32 << 10
	legacyHeaderSize = 7
	recyclableHeader = 11

	chunkFull       = 1
	chunkFirst      = 2
	chunkMiddle     = 3
	chunkLast       = 4
	chunkRecyclable = 4 // recyclable types are the legacy ones plus 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// chunkChecksum is the masked CRC-32C Pebble stores in a chunk header.
func chunkChecksum(b []byte) uint32 {
	c := crc32.Checksum(b, castagnoli)
	return (c>>15 | c<<17) + 0xa282ead8
}

// logScan is what scanLog found in a file.
type logScan struct {
	records int // records read whole
	// damageAt is the offset of the first record or byte that could not
	// be read, -1 when there was none.
	damageAt int64
	// lost counts the records that could not be read; it is a lower bound
	// when uncounted is set (damage hid where records began).
	lost      int
	uncounted bool
	after     int  // records read whole after damageAt
	cut       bool // the file ends inside a record: cut short, not torn in place
}

// damaged reports whether anything in the file could not be read.
func (l logScan) damaged() bool { return l.damageAt >= 0 }

// tornTail reports damage at the end only: nothing readable follows it,
// as when a crash interrupts the last write.
func (l logScan) tornTail() bool { return l.damaged() && l.after == 0 }

// lostText spells lost for a log line: "3", or "at least 3".
func (l logScan) lostText() string {
	if l.uncounted {
		return "at least " + strconv.Itoa(max(l.lost, 1))
	}
	return strconv.Itoa(l.lost)
}

// scanLog reads the records of r in Pebble's record format and calls each
// with every record it can read whole, in order (rec is only valid during
// the call). A recyclable chunk of another log than logNum ends the log, as
// it does for Pebble; in a file that is not one of Pebble's logs
// (recyclable false) such a chunk is damage, and a block ends in fewer
// zeros. Damage — a chunk that fails its checksum, a header that cannot be
// right, bytes after the end of the written data, a record whose pieces do
// not join up, zeros where records were followed by others — is skipped
// and counted. scanLog returns an error only when r fails or each does.
func scanLog(r io.Reader, logNum uint32, recyclable bool, each func(rec []byte) error) (logScan, error) {
	sc := logScan{damageAt: -1}
	block := make([]byte, logBlockSize)
	// A writer pads a block with zeros when its rest cannot hold a chunk
	// header: Pebble's log writer when it cannot hold a recyclable one.
	padding := legacyHeaderSize
	if recyclable {
		padding = recyclableHeader
	}
	var (
		rec   []byte
		inRec bool  // rec holds the first pieces of a record
		recAt int64 // where that record began
		hole  int64 = -1
		base  int64 // the block's offset
	)
	// damage notes that nothing could be read from at on; zeros before
	// it were part of the damage.
	damage := func(at int64) {
		if hole >= 0 {
			at, hole = min(at, hole), -1
		}
		if sc.damageAt < 0 || at < sc.damageAt {
			sc.damageAt = at
		}
	}
	// dropRecord gives up the record being joined, if any.
	dropRecord := func() {
		if inRec {
			damage(recAt)
			sc.lost++
			inRec = false
		}
	}
	// readable notes that a chunk begins here: zeros before it were a
	// hole where records were lost, not the end of the log.
	readable := func() {
		if hole >= 0 {
			damage(hole)
			sc.uncounted = true
		}
	}
	deliver := func(at int64, b []byte) error {
		sc.records++
		if sc.damaged() && at > sc.damageAt {
			sc.after++
		}
		return each(b)
	}
scan:
	for {
		n, err := io.ReadFull(r, block)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return sc, err
		}
		b := block[:n]
		for i := 0; i < n; {
			at := base + int64(i)
			if n-i < legacyHeaderSize || isZero(b[i:i+legacyHeaderSize]) {
				// Padding, or the end of what was written: zeros to the
				// end of the block. Anything else there is damage.
				if isZero(b[i:]) {
					if hole < 0 && n-i >= padding {
						hole = at
					}
					break
				}
				dropRecord()
				damage(at)
				sc.uncounted = true
				sc.cut = n < logBlockSize && n-i < legacyHeaderSize
				if i = resync(b, i+1, recyclable); i < 0 {
					break
				}
				continue
			}
			sum := binary.LittleEndian.Uint32(b[i:])
			length := int(binary.LittleEndian.Uint16(b[i+4:]))
			typ := b[i+6]
			header := legacyHeaderSize
			if typ > chunkRecyclable && typ <= chunkLast+chunkRecyclable {
				header = recyclableHeader
			}
			end := i + header + length
			plausible := typ >= chunkFull && typ <= chunkLast+chunkRecyclable && end <= n &&
				(recyclable || header == legacyHeaderSize)
			if plausible && header == recyclableHeader && binary.LittleEndian.Uint32(b[i+7:]) != logNum &&
				(sum == 0 && length == 0 || chunkChecksum(b[i+6:end]) == sum) {
				// The writer's end-of-log trailer, or a chunk of the
				// file's previous life: the log ends here. (A chunk whose
				// log number was damaged fails its checksum instead.)
				dropRecord()
				break scan
			}
			if !plausible || chunkChecksum(b[i+6:end]) != sum {
				// Damage: go on at the next chunk that passes its
				// checksum (a damaged length cannot be trusted to say
				// where that is), or the next block.
				readable()
				dropRecord()
				damage(at)
				next := resync(b, i+1, recyclable)
				switch {
				case !plausible:
					sc.uncounted = true
					sc.cut = sc.cut || end > n && n < logBlockSize
				case next != end && !(next < 0 && isZero(b[end:])):
					sc.uncounted = true // more than the chunk was skipped
				case typ == chunkFull || typ == chunkFirst || typ == chunkFull+chunkRecyclable || typ == chunkFirst+chunkRecyclable:
					sc.lost++
				}
				if i = next; i < 0 {
					break
				}
				continue
			}
			if header == recyclableHeader {
				typ -= chunkRecyclable
			}
			readable()
			payload := b[i+header : end]
			switch typ {
			case chunkFull:
				dropRecord()
				if err := deliver(at, payload); err != nil {
					return sc, err
				}
			case chunkFirst:
				dropRecord()
				rec, inRec, recAt = append(rec[:0], payload...), true, at
			case chunkMiddle, chunkLast:
				if !inRec {
					// The rest of a record whose start was lost (and
					// counted) or skipped with a block.
					damage(at)
					sc.uncounted = true
					break
				}
				rec = append(rec, payload...)
				if typ == chunkLast {
					inRec = false
					if err := deliver(recAt, rec); err != nil {
						return sc, err
					}
				}
			}
			i = end
		}
		if n < logBlockSize {
			break
		}
		base += logBlockSize
	}
	if inRec { // the file ends inside a record
		dropRecord()
		sc.cut = true
	}
	return sc, nil
}

// zeroBlock is a block of zeros to compare with.
var zeroBlock [logBlockSize]byte

// isZero reports whether b (at most a block) holds only zeros.
func isZero(b []byte) bool { return bytes.Equal(b, zeroBlock[:len(b)]) }

// resync finds the first offset from from on where b holds a whole chunk
// that passes its checksum (a chance of 2^-32 per offset for damage to
// pass), or -1.
func resync(b []byte, from int, recyclable bool) int {
	for i := from; i+legacyHeaderSize <= len(b); i++ {
		header := legacyHeaderSize
		switch typ := b[i+6]; {
		case typ >= chunkFull && typ <= chunkLast:
		case recyclable && typ > chunkRecyclable && typ <= chunkLast+chunkRecyclable:
			header = recyclableHeader
		default:
			continue
		}
		end := i + header + int(binary.LittleEndian.Uint16(b[i+4:]))
		if end <= len(b) && chunkChecksum(b[i+6:end]) == binary.LittleEndian.Uint32(b[i:]) {
			return i
		}
	}
	return -1
}
