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
// value 0, no reflection), the one Redis Cluster hashes keys with.
func CRC16(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc = crc<<8 ^ crcTable[byte(crc>>8)^c]
	}
	return crc
}

// crcTable is CRC16's value for each leading byte, computed once.
var crcTable = func() (t [256]uint16) {
	for i := range t {
		crc := uint16(i) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
		t[i] = crc
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
