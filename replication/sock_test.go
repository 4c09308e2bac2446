package replication

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tcpPair returns both ends of a loopback TCP connection, with socket
// buffers small enough that a megabyte fills them (the receiving one
// still above the loopback's segment size: below it, the receiver would
// announce room only on its delayed-ACK timer).
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	dialed, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	srv := <-accepted
	require.NotNil(t, srv)
	w, r := srv.(*net.TCPConn), dialed.(*net.TCPConn)
	require.NoError(t, w.SetWriteBuffer(4096))
	require.NoError(t, r.SetReadBuffer(256<<10))
	t.Cleanup(func() { w.Close(); r.Close() })
	return w, r
}

// TestSockWritesEveryByteInOrder writes more buffers than one writev
// takes and more bytes than the socket holds, to a reader reading in small
// pieces, so that writes are partial and wait for room: every byte
// arrives, in order, on a TCP socket (written by the raw writev on Linux)
// and on a connection without a raw socket (written by net.Buffers).
func TestSockWritesEveryByteInOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var parts [][]byte
	var want []byte
	for i := range 3*1024 + 17 { // IOV_MAX is 1024 on Linux
		p := make([]byte, rng.IntN(1000)) // some empty; 1.5 MB in all
		for j := range p {
			p[j] = byte(i + j)
		}
		parts = append(parts, p)
		want = append(want, p...)
	}
	want = append(want, bytes.Join(parts[:5], nil)...) // written again, below
	w, r := tcpPair(t)
	pw, pr := net.Pipe()
	t.Cleanup(func() { pw.Close(); pr.Close() })
	for _, tc := range []struct {
		name string
		w, r net.Conn
		raw  bool
	}{
		{"tcp", w, r, haveRawIO},
		{"pipe", pw, pr, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSock(tc.w)
			require.Equal(t, tc.raw, s.rc != nil, "raw writev used")
			got := make(chan []byte, 1)
			go func() {
				b, _ := io.ReadAll(tc.r)
				got <- b
			}()
			require.NoError(t, tc.w.SetWriteDeadline(time.Now().Add(30*time.Second)))
			// Copies: net.Buffers empties the slices it wrote.
			require.NoError(t, s.write(slices.Clone(parts)))
			require.NoError(t, s.write(slices.Clone(parts[:5]))) // the sock is reused
			require.NoError(t, tc.w.Close())
			b := <-got
			require.Equal(t, len(want), len(b))
			assert.True(t, bytes.Equal(want, b), "bytes differ")
			assertNoPointersKept(t, s)
		})
	}
}

// TestSockWriteDeadline: a replica that reads nothing makes the write
// fail once its deadline passes, instead of blocking the link for ever.
func TestSockWriteDeadline(t *testing.T) {
	w, _ := tcpPair(t)
	s := newSock(w)
	big := make([]byte, 16<<20) // far more than both sockets' buffers
	require.NoError(t, w.SetWriteDeadline(time.Now().Add(50*time.Millisecond)))
	err := s.write([][]byte{big[:1], big})
	require.Error(t, err)
	assert.True(t, errors.Is(err, os.ErrDeadlineExceeded), "err: %v", err)
}

// TestSockWriteClosed: writing to a connection the replica closed fails.
func TestSockWriteClosed(t *testing.T) {
	w, r := tcpPair(t)
	require.NoError(t, r.Close())
	s := newSock(w)
	big := make([]byte, 1<<20)
	var err error
	for range 100 { // the first writes may land before the reset is seen
		if err = s.write([][]byte{big}); err != nil {
			break
		}
	}
	require.Error(t, err)
	assert.False(t, errors.Is(err, io.EOF))
}

// TestSockReads reads a replica's acknowledgements as the link does
// (through bufio and readCommand), then io.EOF once the replica closes;
// on a TCP socket (raw read on Linux) and a connection without one.
func TestSockReads(t *testing.T) {
	w, r := tcpPair(t)
	pw, pr := net.Pipe()
	t.Cleanup(func() { pw.Close(); pr.Close() })
	for _, tc := range []struct {
		name    string
		primary net.Conn
		replica net.Conn
		raw     bool
	}{
		{"tcp", w, r, haveRawIO},
		{"pipe", pw, pr, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSock(tc.primary)
			require.Equal(t, tc.raw, s.rc != nil, "raw read used")
			go func() {
				for i := range 1000 {
					if _, err := tc.replica.Write(appendCommand(nil, "REPLCONF", "ACK", strconv.Itoa(i))); err != nil {
						return
					}
				}
				tc.replica.Close()
			}()
			br := bufio.NewReaderSize(s, 16) // many short reads
			for i := range 1000 {
				args, err := readCommand(br)
				require.NoError(t, err)
				require.Equal(t, []string{"REPLCONF", "ACK", strconv.Itoa(i)}, args)
			}
			_, err := readCommand(br)
			assert.ErrorIs(t, err, io.EOF)
		})
	}
}

// TestSockReadDeadline: a read deadline set while the link waits for the
// replica (the server shutting down) ends the read with
// os.ErrDeadlineExceeded, which makes the link drain.
func TestSockReadDeadline(t *testing.T) {
	w, _ := tcpPair(t)
	s := newSock(w)
	done := make(chan error, 1)
	go func() {
		_, err := s.Read(make([]byte, 64))
		done <- err
	}()
	require.NoError(t, w.SetReadDeadline(time.Now()))
	select {
	case err := <-done:
		assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	case <-time.After(10 * time.Second):
		t.Fatal("Read still waiting 10 s after its deadline passed")
	}
}
