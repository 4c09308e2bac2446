package cluster

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// crc16Bitwise is CRC-16/XMODEM computed bit by bit, the reference the
// table-driven CRC16 is checked against.
func crc16Bitwise(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc ^= uint16(c) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

func TestCRC16(t *testing.T) {
	require.Equal(t, uint16(0x31C3), CRC16([]byte("123456789")), "XMODEM's check value")
	require.Equal(t, uint16(0), CRC16(nil))
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := make([]byte, r.IntN(64))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		require.Equal(t, crc16Bitwise(b), CRC16(b), "%q", b)
	}
}

func TestSlot(t *testing.T) {
	// Values from redis-server 7's CLUSTER KEYSLOT (TestKeySlotMatchesRedis
	// in package commands compares 10,000 random keys end to end).
	for key, want := range map[string]int{"foo": 12182, "bar": 5061, "123456789": 12739, "": 0, "{}x": 10595} {
		require.Equal(t, want, Slot([]byte(key)), "%q", key)
	}
	same := func(a, b string) {
		t.Helper()
		require.Equal(t, Slot([]byte(b)), Slot([]byte(a)), "%q hashes as %q", a, b)
	}
	same("{user1000}.following", "user1000")
	same("{user1000}.followers", "user1000")
	same("foo{bar}{zap}", "bar")       // the first {...}
	same("foo{{bar}}zap", "{bar")      // from the first '{' to the first '}' after it
	same("foo{}{bar}", "foo{}{bar}")   // an empty tag: the whole key
	same("{}", "{}")                   //
	same("{", "{")                     // no '}'
	same("}{", "}{")                   // '}' only before '{'
	same("a}b{c}", "c")                // a '}' before the '{' does not count
	same("{a}{b}", "a")                //
	same("x{\x00}", "\x00")            // binary tags
	same("{\xff\xfe}tail", "\xff\xfe") //
	same("{{}}", "{")                  //
	same("{}}", "{}}")                 // the first '}' ends an empty tag
}

func TestBitmap(t *testing.T) {
	var a, b Bitmap
	for _, s := range []int{0, 63, 64, 5000, Slots - 1} {
		a.add(s)
	}
	b.add(63)
	b.add(Slots - 1)
	require.Equal(t, 5, a.Count())
	require.True(t, a.Has(64))
	require.False(t, a.Has(65))
	d := a.Without(&b)
	require.Equal(t, 3, d.Count())
	require.True(t, d.Has(0) && d.Has(64) && d.Has(5000))
}

func BenchmarkSlot(b *testing.B) {
	key := []byte("user:1234567890:api")
	b.ReportAllocs()
	for b.Loop() {
		_ = Slot(key)
	}
}
