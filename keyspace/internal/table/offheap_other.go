//go:build !unix

package table

func mapBytes(n int) ([]byte, bool) { return make([]byte, n), false }

func unmapBytes([]byte) {}
