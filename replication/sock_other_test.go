//go:build !linux

package replication

import "testing"

func assertNoPointersKept(*testing.T, *sock) {}
