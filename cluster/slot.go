package cluster

import (
	"bytes"
	"math/bits"
)

// Slots is the number of hash slots of a Redis Cluster.
const Slots = 16384

// Slot is the hash slot of key, as Redis's keyHashSlot computes it: CRC16
// (XMODEM) of the key modulo 16384, or of its hashtag when it has one. The
// hashtag is what lies between the first '{' and the first '}' after it,
// when that is not empty; "{}x", "x{" and "x}{" hash whole. Keys with the
// same hashtag share a slot, which is what lets a multi-key command
// (THROTTLE.MULTI, DEL) run in a cluster.
func Slot(key []byte) int {
	if s := bytes.IndexByte(key, '{'); s >= 0 {
		if e := bytes.IndexByte(key[s+1:], '}'); e > 0 {
			key = key[s+1 : s+1+e]
		}
	}
	return int(CRC16(key) & (Slots - 1))
}

// CRC16 is the CRC-16/XMODEM checksum of b (polynomial 0x1021, initial
// value 0, no reflection), the one Redis Cluster hashes keys with. It
// takes eight bytes a step (slicing-by-8: one table lookup per byte, the
// eight independent), then one byte a step.
func CRC16(b []byte) uint16 {
	var crc uint16
	t := &crcTables
	for len(b) >= 8 {
		crc = t[7][byte(crc>>8)^b[0]] ^ t[6][byte(crc)^b[1]] ^ t[5][b[2]] ^ t[4][b[3]] ^
			t[3][b[4]] ^ t[2][b[5]] ^ t[1][b[6]] ^ t[0][b[7]]
		b = b[8:]
	}
	for _, c := range b {
		crc = crc<<8 ^ t[0][byte(crc>>8)^c]
	}
	return crc
}

// crcTables[k][x] is the CRC16 of byte x followed by k zero bytes: what x
// contributes k bytes before the end of a step. Computed once.
var crcTables = func() (t [8][256]uint16) {
	for i := range t[0] {
		crc := uint16(i) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
		t[0][i] = crc
	}
	for k := 1; k < len(t); k++ {
		for i := range t[k] {
			prev := t[k-1][i]
			t[k][i] = prev<<8 ^ t[0][prev>>8]
		}
	}
	return t
}()

// Bitmap is a set of slots, one bit each.
type Bitmap [Slots / 64]uint64

// Has reports whether slot is in b.
func (b *Bitmap) Has(slot int) bool { return b[slot>>6]&(1<<(slot&63)) != 0 }

// add puts slot in b.
func (b *Bitmap) add(slot int) { b[slot>>6] |= 1 << (slot & 63) }

// Count is how many slots b holds.
func (b *Bitmap) Count() int {
	n := 0
	for _, w := range b {
		n += bits.OnesCount64(w)
	}
	return n
}

// Without is the slots of b that are not in other.
func (b *Bitmap) Without(other *Bitmap) Bitmap {
	var out Bitmap
	for i := range b {
		out[i] = b[i] &^ other[i]
	}
	return out
}
