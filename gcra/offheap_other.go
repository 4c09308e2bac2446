//go:build !unix

package gcra

func mapBytes(n int) ([]byte, bool) { return make([]byte, n), false }

func unmapBytes([]byte) {}
