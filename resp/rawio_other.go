//go:build !unix

package resp

import "errors"

// readyReads says whether plain sockets are served by serveReady: not on
// this platform, where every connection reads with net.Conn.Read.
const readyReads = false

func readRaw(int, []byte) (int, error)  { return 0, errors.ErrUnsupported }
func writeRaw(int, []byte) (int, error) { return 0, errors.ErrUnsupported }
