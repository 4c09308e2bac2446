package replication

import (
	"syscall"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
)

// assertNoPointersKept: after a write, the sock's reused buffer list
// points into none of the written buffers (the backlog's blocks).
func assertNoPointersKept(t *testing.T, s *sock) {
	t.Helper()
	for _, v := range s.iov[:cap(s.iov)] {
		assert.Nil(t, v.Base, "the sock keeps a pointer into the written buffers")
	}
}

func TestConsume(t *testing.T) {
	a, b, c := []byte("abc"), []byte("defgh"), []byte("ij")
	for _, tc := range []struct {
		n    int
		want string
	}{
		{0, "abcdefghij"}, {2, "cdefghij"}, {3, "defghij"}, {4, "efghij"},
		{8, "ij"}, {9, "j"}, {10, ""},
	} {
		var iov []syscall.Iovec
		for _, p := range [][]byte{a, b, c} {
			v := syscall.Iovec{Base: &p[0]}
			v.SetLen(len(p))
			iov = append(iov, v)
		}
		var got []byte
		for _, v := range consume(iov, tc.n) {
			got = append(got, unsafe.Slice(v.Base, v.Len)...)
		}
		assert.Equal(t, tc.want, string(got), "consume %d", tc.n)
	}
}
