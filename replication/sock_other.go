//go:build !linux

package replication

import "errors"

// haveRawIO says whether writeRaw and readRaw are implemented here: not on
// this platform, where a replica's connection is used through net.Conn
// (sock.rc is always nil).
const haveRawIO = false

type iovecs struct{}

func (s *sock) writeRaw([][]byte) error     { return errors.ErrUnsupported }
func (s *sock) readRaw([]byte) (int, error) { return 0, errors.ErrUnsupported }
