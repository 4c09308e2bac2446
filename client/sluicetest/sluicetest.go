// Package sluicetest runs a real Sluice server inside the test process, the
// way net/http/httptest runs an HTTP server: code that rate-limits through
// Sluice can be tested end to end without an external process.
//
// The server is the one cmd/sluice runs, assembled by package server from its
// default configuration, on a free loopback port with DEBUG enabled and in
// memory only, so a test can freeze the server clock with
// [Server.FreezeClock] (DEBUG CLOCK SET over the wire) and get exact,
// repeatable THROTTLE replies instead of sleeping.
package sluicetest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/server"
)

// Epoch is 2030-01-01T00:00:00Z in Unix nanoseconds: the instant the
// project's reference vectors and README examples freeze the clock at.
const Epoch int64 = 1893456000000000000

// Server is a running in-process Sluice.
type Server struct {
	// Addr is the host:port the server listens on (always 127.0.0.1).
	Addr  string
	srv   *server.Server
	done  chan struct{}
	close sync.Once
}

// Start starts a Sluice on 127.0.0.1 with a free port and DEBUG enabled.
// It is shut down when the test and its subtests finish.
func Start(tb testing.TB) *Server {
	tb.Helper()
	cfg := server.Default()
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.Shards = 8
	cfg.EnableDebug = true
	srv, err := server.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		tb.Fatalf("sluicetest: %v", err)
	}
	s := &Server{Addr: srv.Addr().String(), srv: srv, done: make(chan struct{})}
	go func() { defer close(s.done); _ = srv.Serve() }()
	tb.Cleanup(s.Close)
	return s
}

// Close shuts the server down gracefully (forcibly after 5 s) and waits for
// it to stop. Calling it more than once is harmless.
func (s *Server) Close() {
	s.close.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.srv.Shutdown(ctx) // closes what is left when ctx ends
		<-s.done
	})
}

// FreezeClock stops the server clock at unixNanos with DEBUG CLOCK SET, sent
// on a connection of its own.
func (s *Server) FreezeClock(tb testing.TB, unixNanos int64) {
	tb.Helper()
	if err := s.command("DEBUG", "CLOCK", "SET", strconv.FormatInt(unixNanos, 10)); err != nil {
		tb.Fatalf("sluicetest: DEBUG CLOCK SET: %v", err)
	}
}

// ReleaseClock makes the server follow the real clock again (DEBUG CLOCK REAL).
func (s *Server) ReleaseClock(tb testing.TB) {
	tb.Helper()
	if err := s.command("DEBUG", "CLOCK", "REAL"); err != nil {
		tb.Fatalf("sluicetest: DEBUG CLOCK REAL: %v", err)
	}
}

// command sends one command that must answer +OK.
func (s *Server) command(args ...string) error {
	conn, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(conn, b.String()); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+OK\r\n" {
		return fmt.Errorf("reply %q", strings.TrimSpace(line))
	}
	return nil
}
