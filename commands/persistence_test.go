package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sluicehq/sluice/keyspace"
	"github.com/sluicehq/sluice/resp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakePersistence journals into a list and counts waits.
type fakePersistence struct {
	mu       sync.Mutex
	recorded uint64 // changes ever journalled
	journal  []string
	waits    int
	err      error
}

// Record keeps each change as "k=<expires>" (a GCRA TAT), "window k=<n>B",
// "delete gcra k" or "FLUSH".
func (f *fakePersistence) Record(c keyspace.Change) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recorded++
	switch {
	case c.Op == keyspace.Flush:
		f.journal = append(f.journal, "FLUSH")
	case c.Op == keyspace.Delete:
		f.journal = append(f.journal, fmt.Sprintf("delete %v %s", c.Kind, c.Key))
	case c.Kind == keyspace.GCRA:
		f.journal = append(f.journal, fmt.Sprintf("%s=%d", c.Key, c.Expires))
	default:
		f.journal = append(f.journal, fmt.Sprintf("%v %s=%dB", c.Kind, c.Key, len(c.Value)))
	}
}

func (f *fakePersistence) Recorded() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.recorded
}

func (f *fakePersistence) Wait() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.waits++
	return f.err
}

func (f *fakePersistence) RepliesWait() bool { return true }

func (f *fakePersistence) Info() []Setting {
	return []Setting{{Name: "persistence_fsync", Value: "always"}}
}

// take returns and clears the journal and the wait count.
func (f *fakePersistence) take() ([]string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, w := f.journal, f.waits
	f.journal, f.waits = nil, 0
	return j, w
}

func (f *fakePersistence) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

// startPersistent runs a debug-enabled server whose keyspace journals to p.
func startPersistent(t *testing.T, p *fakePersistence) (*redis.Client, *keyspace.Keyspace) {
	t.Helper()
	tbl := keyspace.New(8, p)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rs := &resp.Server{Logger: log}
	s := NewServer(Config{Keys: tbl, Logger: log, EnableDebug: true, NetStats: rs.Stats, Persistence: p})
	rs.Handler, rs.OnOpen, rs.OnClose = s, s.OpenConn, s.CloseConn
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { defer close(done); _ = rs.Serve(ln) }()
	// A failed durability barrier closes the connection: retry on a new one.
	c := redis.NewClient(&redis.Options{Addr: ln.Addr().String(), MaxRetries: 2})
	t.Cleanup(func() {
		_ = c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = rs.Shutdown(ctx)
		<-done
	})
	setClock(t, c, epoch)
	return c, tbl
}

// TestHandlersWaitOnlyForChanges: replies that admit, refund, delete or
// flush wait for durability; refusals, peeks and misses do not.
func TestHandlersWaitOnlyForChanges(t *testing.T) {
	p := &fakePersistence{}
	c, _ := startPersistent(t, p)
	ctx := context.Background()

	assert.Equal(t, []int64{0, 2, 1, -1, 60}, call(t, c, "THROTTLE", "k", 1, 1, 60))
	j, w := p.take()
	assert.Equal(t, []string{fmt.Sprintf("k=%d", epoch+60e9)}, j)
	assert.Equal(t, 1, w, "an admission waits")

	call(t, c, "THROTTLE", "k", 1, 1, 60, 0)
	call(t, c, "CL.THROTTLE", "k", 1, 1, 60, 2)
	j, w = p.take()
	assert.Empty(t, j)
	assert.Zero(t, w, "a peek and a refusal change nothing and do not wait")

	call(t, c, "THROTTLE", "k", 1, 1, 60, -1)
	j, w = p.take()
	assert.Equal(t, []string{"delete gcra k"}, j, "a refund to full removes the key")
	assert.Equal(t, 1, w)

	v, err := do(c, "THROTTLE.MULTI", 1, "a", 1, 1, 60, "b", 1, 1, 60)
	require.NoError(t, err)
	assert.Len(t, v, 3)
	j, w = p.take()
	assert.Len(t, j, 2)
	assert.Equal(t, 1, w)

	assert.EqualValues(t, 0, c.Del(ctx, "missing").Val())
	_, w = p.take()
	assert.Zero(t, w)
	assert.EqualValues(t, 1, c.Del(ctx, "a").Val())
	j, w = p.take()
	assert.Equal(t, []string{"delete gcra a"}, j)
	assert.Equal(t, 1, w)

	require.NoError(t, c.FlushAll(ctx).Err())
	j, w = p.take()
	assert.Equal(t, []string{"FLUSH"}, j, "one change for every kind")
	assert.Equal(t, 1, w)
}

// TestNotDurableAnswersErrors: when persistence cannot make a change
// durable, the reply is an error instead of an acknowledgement.
func TestNotDurableAnswersErrors(t *testing.T) {
	p := &fakePersistence{}
	c, _ := startPersistent(t, p)
	ctx := context.Background()
	p.fail(errors.New("persistence failed: write 000004.log:\r\nno space left on device"))

	_, err := do(c, "THROTTLE", "k", 1, 1, 60)
	require.Error(t, err)
	assert.Equal(t, "ERR decision not durable: persistence failed: write 000004.log:  no space left on device", err.Error())
	_, err = do(c, "THROTTLE.MULTI", 1, "m", 1, 1, 60)
	assert.ErrorContains(t, err, "ERR decision not durable")
	assert.ErrorContains(t, c.Del(ctx, "k").Err(), "ERR decision not durable")
	assert.ErrorContains(t, c.FlushAll(ctx).Err(), "ERR decision not durable")

	// The admission was made in memory all the same; the refusal it causes
	// needs nothing durable and is answered.
	_, err = do(c, "THROTTLE", "r", 0, 1, 60)
	assert.ErrorContains(t, err, "ERR decision not durable")
	assert.Equal(t, []int64{1, 1, 0, 60, 60}, call(t, c, "THROTTLE", "r", 0, 1, 60))
}

func TestInfoPersistenceSection(t *testing.T) {
	p := &fakePersistence{}
	c, _ := startPersistent(t, p)
	s, err := c.Info(context.Background(), "persistence").Result()
	require.NoError(t, err)
	assert.Equal(t, "# Persistence\r\nloading:0\r\npersistence_enabled:1\r\npersistence_fsync:always\r\n", s)

	ts := startServer(t, false)
	s, err = ts.client(t, 2).Info(context.Background(), "persistence").Result()
	require.NoError(t, err)
	assert.Equal(t, "# Persistence\r\nloading:0\r\npersistence_enabled:0\r\n", s)
	all, err := ts.client(t, 2).Info(context.Background()).Result()
	require.NoError(t, err)
	assert.Less(t, strings.Index(all, "# Memory"), strings.Index(all, "# Persistence"))
	assert.Less(t, strings.Index(all, "# Persistence"), strings.Index(all, "# Stats"))
}
