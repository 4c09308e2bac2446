//go:build !linux

package replication

import "syscall"

// haveRawIO says whether rawWritev and rawRead are implemented here: not
// on this platform, where a replica's connection is used through net.Conn.
const haveRawIO = false

func rawWritev(uintptr, []syscall.Iovec) (int, syscall.Errno) { return 0, syscall.ENOSYS }
func rawRead(uintptr, []byte) (int, syscall.Errno)            { return 0, syscall.ENOSYS }
