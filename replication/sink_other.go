//go:build !linux

package replication

import "syscall"

// haveRawWritev says whether rawWritev is implemented here: not on this
// platform, where every replica is written with net.Conn.
const haveRawWritev = false

func rawWritev(uintptr, []syscall.Iovec) (int, syscall.Errno) { return 0, syscall.ENOSYS }
