package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sluicehq/sluice/persistence"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// journalOf runs a durable server that admits n keys, one journal record
// each, and returns the path of its journal segment.
func journalOf(t *testing.T, cfg Config, n int) string {
	t.Helper()
	var logs bytes.Buffer
	s, err := New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	require.NoError(t, recovered(t, s, served))
	c := redis.NewClient(&redis.Options{Addr: s.Addr().String()})
	defer c.Close()
	ctx := context.Background()
	for i := range n {
		require.NoError(t, c.Do(ctx, "THROTTLE", fmt.Sprintf("k%d", i), 4, 1, 3600).Err())
	}
	require.NoError(t, s.Shutdown(ctx))
	require.NoError(t, <-served)
	segs, err := filepath.Glob(filepath.Join(cfg.DataDir, "journal", "*.log"))
	require.NoError(t, err)
	require.Len(t, segs, 1)
	return segs[0]
}

// recovered waits until the recovery s.Serve (running, reporting to served)
// began has ended, and returns its error: then Serve has returned it.
func recovered(t *testing.T, s *Server, served chan error) error {
	t.Helper()
	var rec *recovery
	require.Eventually(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		rec = s.rec
		return rec != nil
	}, 10*time.Second, time.Millisecond, "Serve starts the recovery at once")
	<-rec.done
	if rec.err != nil {
		return <-served
	}
	return nil
}

// startRecovered starts a server on cfg and returns the error its recovery
// ended with (nil: it serves, and is shut down at the end of the test).
func startRecovered(t *testing.T, cfg Config, logs io.Writer) (*Server, error) {
	t.Helper()
	s, err := New(cfg, slog.New(slog.NewTextHandler(logs, nil)))
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	t.Cleanup(func() { assert.NoError(t, s.Shutdown(context.Background())) })
	return s, recovered(t, s, served)
}

// damageAt flips the byte at the given fraction of a file's written part.
func damageAt(t *testing.T, path string, fraction float64) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	n := len(bytes.TrimRight(b, "\x00"))
	b[int(float64(n)*fraction)] ^= 0x10
	require.NoError(t, os.WriteFile(path, b, 0o600))
}

// TestJournalDamageFlags: --journal-accept-corruption and
// --journal-load-truncated reach the store. A journal damaged in its middle
// stops the start with an error naming the file and the flag, and starts
// with the flag; a torn last record starts by default and stops the start
// with --journal-load-truncated no.
func TestJournalDamageFlags(t *testing.T) {
	cfg := testConfig()
	cfg.DataDir = t.TempDir()
	cfg.Fsync = "always"
	seg := journalOf(t, cfg, 30)

	damageAt(t, seg, 0.5)
	logs := &syncBuffer{}
	_, err := startRecovered(t, cfg, logs)
	require.ErrorIs(t, err, persistence.ErrDamaged)
	assert.ErrorContains(t, err, "--data-dir")
	assert.ErrorContains(t, err, seg)
	assert.ErrorContains(t, err, "--journal-accept-corruption yes")

	cfg.JournalAcceptCorruption = true
	s, err := startRecovered(t, cfg, logs)
	require.NoError(t, err)
	assert.Equal(t, 29, s.state.keyCount(), "every key but the damaged record's")
	assert.Contains(t, logs.String(), "level=ERROR")
	assert.FileExists(t, seg+".corrupt")

	cfg = testConfig()
	cfg.DataDir = t.TempDir()
	cfg.Fsync = "always"
	seg = journalOf(t, cfg, 30)
	damageAt(t, seg, 0.99) // the last record
	cfg.JournalLoadTruncated = false
	_, err = startRecovered(t, cfg, logs)
	require.ErrorIs(t, err, persistence.ErrDamaged)
	assert.ErrorContains(t, err, "--journal-load-truncated")
	cfg.JournalLoadTruncated = true
	logs = &syncBuffer{}
	s, err = startRecovered(t, cfg, logs)
	require.NoError(t, err)
	assert.Equal(t, 29, s.state.keyCount())
	assert.Contains(t, logs.String(), "torn record")
}
