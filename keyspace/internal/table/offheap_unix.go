//go:build unix

package table

import "syscall"

// mapBytes returns n zeroed bytes of anonymous memory outside the Go heap.
func mapBytes(n int) ([]byte, bool) {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]byte, n), false // out of address space: the heap may still do
	}
	return b, true
}

// unmapBytes returns memory from mapBytes to the operating system at once.
func unmapBytes(b []byte) { _ = syscall.Munmap(b) }
