package resp

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDetach: a handler that detaches gets the connection after its reply
// is flushed, with the bytes read past its command; no further command is
// served; Shutdown wakes it and waits for it; OnClose runs once.
func TestDetach(t *testing.T) {
	var closed atomic.Int32
	srv := &Server{OnClose: func(*Conn) { closed.Add(1) }}
	addr := startServer(t, srv)
	c := dial(t, addr)
	c.send(cmd("DETACH") + "PING")
	c.expect("+DETACHED")
	c.expect("buffered:PING")
	c.send("ECHO x")
	c.expect("raw:ECHO x") // the handler reads raw bytes: no command is served
	assert.Equal(t, int64(1), srv.Stats().Connected)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, srv.Shutdown(ctx), "Shutdown wakes the detached reader")
	c.expectClosed()
	assert.Equal(t, int32(1), closed.Load())
}
