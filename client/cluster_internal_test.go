package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
)

// replyErr is a server's error reply, as go-redis's redis.Error.
type replyErr string

func (e replyErr) Error() string { return string(e) }
func (replyErr) RedisError()     {}

var _ redis.Error = replyErr("")

// TestNodeFailed: which errors make NewClusterClient's client reload its
// map: a dead, hung or slot-less node's, not a caller's context or a reply.
func TestNodeFailed(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, true},
		{fmt.Errorf("redis: connection pool: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), true},
		{&net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, true},
		{&net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, true}, // i/o timeout
		{io.EOF, true},
		{io.ErrUnexpectedEOF, true},
		{replyErr("CLUSTERDOWN Hash slot not served"), true},
		{context.Canceled, false},
		{context.DeadlineExceeded, false},
		{replyErr("ERR wrong number of arguments for 'throttle' command"), false},
		{replyErr("MOVED 12182 127.0.0.1:7001"), false}, // go-redis reloads by itself
		{redis.Nil, false},
		{errors.New("redis: client is closed"), false},
	} {
		assert.Equal(t, c.want, nodeFailed(c.err), "%v", c.err)
	}
}

// TestReloadHookGap: however many commands fail at once, the hook starts
// one reload per gap (an hour here, so no second one can be due).
func TestReloadHookGap(t *testing.T) {
	var n atomic.Int64
	h := &reloadHook{reload: func() { n.Add(1) }, gap: time.Hour}
	fail := h.ProcessHook(func(context.Context, redis.Cmder) error { return io.EOF })
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				_ = fail(context.Background(), redis.NewCmd(context.Background(), "THROTTLE", "k", 1, 1, 1))
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, int64(1), n.Load())

	// A reload's own map query failing, a successful command, a pipeline
	// whose commands all succeeded: none starts a reload.
	var m atomic.Int64
	h = &reloadHook{reload: func() { m.Add(1) }, gap: time.Hour}
	_ = h.ProcessHook(func(context.Context, redis.Cmder) error { return io.EOF })(context.Background(),
		redis.NewClusterSlotsCmd(context.Background(), "cluster", "slots"))
	_ = h.ProcessHook(func(context.Context, redis.Cmder) error { return nil })(context.Background(),
		redis.NewCmd(context.Background(), "THROTTLE", "k", 1, 1, 1))
	_ = h.ProcessPipelineHook(func(context.Context, []redis.Cmder) error { return nil })(context.Background(),
		[]redis.Cmder{redis.NewCmd(context.Background(), "THROTTLE", "k", 1, 1, 1)})
	assert.Equal(t, int64(0), m.Load())
	// A pipeline with one command cut off by a reset connection does.
	cmd := redis.NewCmd(context.Background(), "THROTTLE", "k", 1, 1, 1)
	cmd.SetErr(&net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET})
	_ = h.ProcessPipelineHook(func(context.Context, []redis.Cmder) error { return nil })(context.Background(), []redis.Cmder{cmd})
	assert.Equal(t, int64(1), m.Load())
}
