package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/sluicehq/sluice/commands"
	"github.com/sluicehq/sluice/resp"
)

// Server is a Sluice assembled from a Config by [New]: its listeners are
// open and its state recovered; [Server.Serve] serves, [Server.Shutdown]
// stops.
type Server struct {
	cfg      Config
	log      *slog.Logger
	state    *state
	net      *resp.Server
	lns      []net.Listener // the plaintext ones first, then the TLS ones
	certs    *certStore     // nil without TLS
	policies *policyFile
	metrics  *metricsServer // nil without MetricsAddr

	mu       sync.Mutex
	serving  bool     // Serve has begun
	stopping bool     // Shutdown has begun
	sweep    *sweeper // started by Serve

	shutdown    sync.Once
	shutdownErr error
}

// New validates cfg and assembles a server from it, in this order: the
// users (reading RequirePassFile and ACLFile), the data directory with
// recovery when DataDir is set, the command server, the policy file, the
// metrics listener (serving /healthz at once, /readyz not ready), and the
// RESP listeners on every Bind address at Port, and at TLSPort with TLS.
// Nothing is served until Serve. On error everything already opened is
// closed again. A nil log means slog.Default().
func New(cfg Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	users, err := cfg.users(log)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log}
	s.net = &resp.Server{
		Logger:            log,
		MaxClients:        cfg.MaxClients,
		MaxBulkLen:        cfg.MaxBulkLen,
		MaxArgs:           cfg.MaxArgs,
		MaxInlineLen:      cfg.MaxInlineLen,
		MaxQueryBuffer:    cfg.MaxQueryBuffer,
		MaxPendingReply:   cfg.MaxPendingReply,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		AuthRequired:      users.AuthRequired(),
		MaxClientsPerIP:   cfg.MaxClientsPerIP,
		PreAuthMaxArgs:    cfg.PreAuthMaxArgs,
		PreAuthMaxBulkLen: cfg.PreAuthMaxBulk,
		AuthTimeout:       cfg.AuthTimeout,

		MaxQueryBufferTotal: int64(cfg.MaxQueryBufferTotal),
	}
	s.state, err = newState(cfg, commands.Config{
		Logger:      log,
		EnableDebug: cfg.EnableDebug,
		NetStats:    s.net.Stats,
		Settings:    cfg.shown(),
		Users:       users,
		Protected:   s.protected(),

		MaxMemory:       int64(cfg.MaxMemory),
		MaxMultiLimits:  cfg.MaxMultiLimits,
		MaxLeasesPerKey: cfg.MaxLeasesPerKey,
		NoTopKeys:       !cfg.TopKeys,
	}, log)
	if err != nil {
		return nil, err
	}
	cmds := s.state.cmds
	s.net.Handler, s.net.OnOpen, s.net.OnClose = cmds, cmds.OpenConn, cmds.CloseConn
	if err := s.open(); err != nil {
		closeAll(s.lns)
		s.metrics.shutdown(context.Background())
		_ = s.state.close()
		return nil, err
	}
	return s, nil
}

// open loads the policy file and opens the metrics and RESP listeners.
func (s *Server) open() error {
	var err error
	if s.policies, err = loadPolicyFile(s.cfg.PolicyFile, s.cfg.MaxMultiLimits, s.state.cmds, s.log); err != nil {
		return fmt.Errorf("--policy-file: %w", err)
	}
	if s.cfg.MetricsAddr != "" {
		reg := newRegistry(s.state.cmds, s.net, s.state.dur)
		if s.metrics, err = startMetrics(s.cfg.MetricsAddr, reg, s.log, s.cfg.Pprof, s.statusPage()); err != nil {
			return fmt.Errorf("--metrics-addr: %w", err)
		}
	}
	if s.lns, err = listen(s.cfg.bindAddrs(), s.cfg.Port, nil); err != nil {
		return err
	}
	if s.cfg.TLSPort == 0 {
		return nil
	}
	tc, certs, err := newTLSConfig(s.cfg)
	if err != nil {
		return err
	}
	tlns, err := listen(s.cfg.bindAddrs(), s.cfg.TLSPort, tc)
	if err != nil {
		return err
	}
	s.lns, s.certs = append(s.lns, tlns...), certs
	return nil
}

// protected reports whether protected mode applies: it is on and no
// password is set.
func (s *Server) protected() bool { return s.cfg.ProtectedMode && !s.net.AuthRequired }

// Addr is the address of the first plaintext listener; with Port 0, the
// free port it found.
func (s *Server) Addr() net.Addr { return s.lns[0].Addr() }

// Serve serves clients on every listener and starts the expiry sweep; once
// serving it logs "sluice ready" and /readyz answers ready. It blocks
// until Shutdown, then returns nil, or until a listener fails: it then
// closes every connection and returns that error, and the caller still
// calls Shutdown to stop the rest. Call it once.
func (s *Server) Serve() error {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		return nil
	}
	if s.serving {
		s.mu.Unlock()
		return errors.New("server: Serve called twice")
	}
	s.serving = true
	s.sweep = startSweeper(s.cfg.SweepInterval, s.state.sweepStep)
	errc := make(chan error, len(s.lns))
	for _, ln := range s.lns {
		go func() { errc <- s.net.Serve(ln) }()
	}
	s.logReady()
	s.metrics.setReady(true)
	s.mu.Unlock()

	for range s.lns {
		if err := <-errc; !errors.Is(err, resp.ErrServerClosed) {
			s.log.Error("listener failed", slog.Any("err", err))
			_ = s.net.Close()
			return err
		}
	}
	return nil
}

func (s *Server) logReady() {
	var addrs, tlsAddrs []string
	for _, ln := range s.lns {
		if isTLS(ln) {
			tlsAddrs = append(tlsAddrs, ln.Addr().String())
		} else {
			addrs = append(addrs, ln.Addr().String())
		}
	}
	s.log.Info("sluice ready",
		slog.String("addr", strings.Join(addrs, ",")),
		slog.String("tls_addr", strings.Join(tlsAddrs, ",")),
		slog.String("metrics_addr", s.cfg.MetricsAddr),
		slog.String("version", commands.Version),
		slog.Int("shards", s.state.shards()),
		slog.Int("gomaxprocs", runtime.GOMAXPROCS(0)),
		slog.String("persistence", s.state.dur.mode()),
		slog.Bool("debug_command", s.cfg.EnableDebug),
		slog.Bool("auth_required", s.net.AuthRequired),
		slog.Bool("protected_mode", s.protected()))
}

// Reload reads the policy file and the TLS key pair again: what SIGHUP
// does. A file that does not load is logged and the old policies or
// certificate stay; open connections are not touched.
func (s *Server) Reload() {
	reloaded := s.policies.reload()
	if s.certs == nil {
		if !reloaded {
			s.log.Info("SIGHUP: nothing to reload")
		}
		return
	}
	if err := s.certs.reload(); err != nil {
		s.log.Error("SIGHUP: TLS certificate reload failed; keeping the old one", slog.Any("err", err))
		return
	}
	s.log.Info("SIGHUP: TLS certificate reloaded", slog.String("cert", s.cfg.TLSCertFile))
}

// Shutdown stops the server and returns once all of it has stopped, in this
// order:
//
//  1. /readyz answers not ready and the listeners close: no new clients;
//  2. it waits until every connection has flushed the replies to the
//     commands it had read and closed, or until ctx is done, and then
//     closes the connections left at once;
//  3. it stops the expiry sweep, waiting for a pass in progress;
//  4. it commits, syncs and closes the data directory, waiting for that up
//     to 30 seconds whatever ctx says (past them the directory recovers as
//     after a crash);
//  5. it logs "sluice stopped" and stops the metrics listener, waiting for
//     the scrapes in progress.
//
// It returns why persistence failed, during the run or while closing, or
// nil. It may be called before Serve, and more than once: later calls wait
// for the first and return its result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdown.Do(func() {
		s.mu.Lock()
		s.stopping = true
		served, sweep := s.serving, s.sweep
		s.metrics.setReady(false)
		s.mu.Unlock()
		if !served {
			closeAll(s.lns) // Serve never took them over
		}
		if err := s.net.Shutdown(ctx); err != nil {
			s.log.Warn("shutdown timed out; closing the remaining connections", slog.Any("err", err))
			_ = s.net.Close()
		}
		sweep.stop()
		s.shutdownErr = s.state.close()
		s.log.Info("sluice stopped", slog.Int("keys", s.state.keyCount()))
		s.metrics.shutdown(context.Background())
	})
	return s.shutdownErr
}

// listen opens one listener per host on port, wrapped in TLS when tc is
// set. On error it closes the ones it opened.
func listen(hosts []string, port int, tc *tls.Config) ([]net.Listener, error) {
	var lns []net.Listener
	for _, host := range hosts {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			closeAll(lns)
			return nil, fmt.Errorf("listen: %w", err)
		}
		if tc != nil {
			ln = tls.NewListener(ln, tc)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// isTLS reports whether ln came from listen with a TLS config.
func isTLS(ln net.Listener) bool {
	_, plain := ln.(*net.TCPListener)
	return !plain
}

func closeAll(lns []net.Listener) {
	for _, l := range lns {
		l.Close()
	}
}
