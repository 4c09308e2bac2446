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
	"time"

	"github.com/sluicehq/sluice/commands"
	"github.com/sluicehq/sluice/persistence"
	"github.com/sluicehq/sluice/resp"
)

// Server is a Sluice assembled from a Config by [New]: its listeners are
// open; [Server.Serve] recovers the data directory and serves,
// [Server.Shutdown] stops.
type Server struct {
	cfg      Config
	log      *slog.Logger
	state    *state
	net      *resp.Server
	lns      []net.Listener // the plaintext ones first, then the TLS ones
	certs    *certStore     // nil without TLS
	policies *policyFile
	metrics  *metricsServer // nil without MetricsAddr

	// recoveryHook, set by tests before Serve, is called with every
	// progress report of recovery, in its goroutine: blocking it holds
	// recovery there.
	recoveryHook func(persistence.Progress)
	// fenceClock, set by tests before Serve, replaces the etcd agent's
	// fence clock.
	fenceClock func() time.Time
	// recoveryLogEvery is how often recovery logs its progress.
	recoveryLogEvery time.Duration

	mu       sync.Mutex
	serving  bool      // Serve has begun
	stopping bool      // Shutdown has begun
	sweep    *sweeper  // started once the state is ready
	rec      *recovery // started by Serve with a data directory

	shutdown    sync.Once
	shutdownErr error
}

// New validates cfg and assembles a server from it, in this order: the
// users (reading RequirePassFile and ACLFile), the keyspace and the command
// server, the policy file, the metrics listener (serving /healthz at once,
// /readyz not ready), and the RESP listeners on every Bind address at Port
// (none with Port 0, or the one ListenAddr), and at TLSPort with TLS.
// Nothing is served until Serve, and the data directory is not opened
// before Serve either: its recovery may take a while, and clients should
// see it happen. On error everything already opened is closed again. A nil
// log means slog.Default().
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
	replTLS, err := replicationTLS(cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, recoveryLogEvery: recoveryLogEvery}
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
		Slowlog:         &commands.SlowlogConfig{SlowerThan: cfg.SlowlogLogSlowerThan, MaxLen: cfg.SlowlogMaxLen},
	}, replTLS)
	if err != nil {
		closeAll(s.lns)
		s.metrics.shutdown(context.Background())
		return nil, err
	}
	cmds := s.state.cmds
	s.net.Handler, s.net.OnOpen, s.net.OnClose = cmds, cmds.OpenConn, cmds.CloseConn
	if err := s.open(); err != nil {
		closeAll(s.lns)
		s.metrics.shutdown(context.Background())
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
		reg := newRegistry(s.state, s.net)
		reg.MustRegister(newReplicationCollector(s.state.repl), newClusterCollector(s.state.cmds, s.state.etcdLink))
		if s.metrics, err = startMetrics(s.cfg.MetricsAddr, reg, s.log, s.cfg.Pprof, s.statusPage(), s.state.servesAs); err != nil {
			return fmt.Errorf("--metrics-addr: %w", err)
		}
	}
	switch {
	case s.cfg.ListenAddr != "":
		s.lns, err = listenAt([]string{s.cfg.ListenAddr}, nil)
	case s.cfg.Port != 0: // port 0: no plaintext listener, as in Redis
		s.lns, err = listen(s.cfg.bindAddrs(), s.cfg.Port, nil)
	}
	if err != nil {
		return err
	}
	if s.cfg.TLSPort != 0 {
		tc, certs, err := newTLSConfig(s.cfg)
		if err != nil {
			return err
		}
		tlns, err := listen(s.cfg.bindAddrs(), s.cfg.TLSPort, tc)
		if err != nil {
			return err
		}
		s.lns, s.certs = append(s.lns, tlns...), certs
	}
	// A cluster node announces its first listener: the plaintext one, or
	// with Port 0 (TLS only) the TLS one, as Redis announces its TLS port
	// with tls-cluster.
	if c := s.state.cluster; c != nil && s.cfg.ClusterAnnouncePort == 0 {
		a := c.Announced()
		a.Port = s.lns[0].Addr().(*net.TCPAddr).Port
		c.SetAnnounce(a)
	}
	return nil
}

// protected reports whether protected mode applies: it is on and no
// password is set.
func (s *Server) protected() bool { return s.cfg.ProtectedMode && !s.net.AuthRequired }

// Addr is the address of the first listener, a plaintext one unless
// Port is 0 (TLS only); with a ListenAddr whose port is 0, the free port it
// found.
func (s *Server) Addr() net.Addr { return s.lns[0].Addr() }

// Serve serves clients on every listener. Without a data directory it
// starts the expiry sweep, logs "sluice ready" and /readyz answers ready at
// once. With one, it first recovers it while serving: commands that touch
// keys answer -LOADING and the progress is logged every second (see
// recovery.go); once recovered the sweep starts, "sluice ready" is logged
// and /readyz answers ready. It blocks until Shutdown, then returns nil, or
// until a listener or the recovery fails: it then closes every connection
// and returns that error, and the caller still calls Shutdown to stop the
// rest. Call it once.
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
	var recovered <-chan struct{} // stays nil without a data directory
	if s.cfg.DataDir != "" {
		s.rec = s.startRecovery(s.recoveryLogEvery)
		s.state.cmds.SetLoading(s.rec.info)
		recovered = s.rec.done
	}
	errc := make(chan error, len(s.lns))
	for _, ln := range s.lns {
		go func() { errc <- s.net.Serve(ln) }()
	}
	if recovered == nil {
		s.ready()
	} else {
		s.logListening()
	}
	s.mu.Unlock()

	for open := len(s.lns); open > 0; {
		select {
		case err := <-errc:
			open--
			if !errors.Is(err, resp.ErrServerClosed) {
				s.log.Error("listener failed", slog.Any("err", err))
				_ = s.net.Close()
				return err
			}
		case <-recovered:
			recovered = nil
			if err := s.rec.err; err != nil {
				s.log.Error("recovery of the data directory failed", slog.Any("err", err))
				_ = s.net.Close()
				return err
			}
			s.mu.Lock()
			if !s.stopping {
				s.ready()
			}
			s.mu.Unlock()
		}
	}
	return nil
}

// ready ends loading: commands run, the sweep starts, "sluice ready" is
// logged and /readyz answers ready. Called with s.mu held.
func (s *Server) ready() {
	// Replication first: a replica's gate is closed, and the stream
	// position of a restart is read, before any command can change state.
	s.state.startReplication(s.Addr().(*net.TCPAddr).Port)
	s.state.cmds.SetLoading(nil)
	s.sweep = startSweeper(s.cfg.SweepInterval, s.state.sweepStep)
	if err := s.state.startControlPlane(s.cfg, s.log, s.fenceClock); err != nil {
		s.log.Error("cluster: the etcd control plane did not start; the node serves its kept topology", slog.Any("err", err))
	}
	s.logReady()
	s.metrics.setReady(true)
}

// addrs lists the addresses of the plaintext and the TLS listeners.
func (s *Server) addrs() (plain, tls []string) {
	for _, ln := range s.lns {
		if isTLS(ln) {
			tls = append(tls, ln.Addr().String())
		} else {
			plain = append(plain, ln.Addr().String())
		}
	}
	return plain, tls
}

// logListening says the port is open while recovery runs.
func (s *Server) logListening() {
	addrs, tlsAddrs := s.addrs()
	s.log.Info("sluice listening; recovering the data directory before serving commands (they answer -LOADING meanwhile)",
		slog.String("addr", strings.Join(addrs, ",")),
		slog.String("tls_addr", strings.Join(tlsAddrs, ",")),
		slog.String("metrics_addr", s.cfg.MetricsAddr),
		slog.String("dir", s.cfg.DataDir))
}

func (s *Server) logReady() {
	addrs, tlsAddrs := s.addrs()
	s.log.Info("sluice ready",
		slog.String("addr", strings.Join(addrs, ",")),
		slog.String("tls_addr", strings.Join(tlsAddrs, ",")),
		slog.String("metrics_addr", s.cfg.MetricsAddr),
		slog.String("version", commands.Version),
		slog.Int("shards", s.state.shards()),
		slog.Int("gomaxprocs", runtime.GOMAXPROCS(0)),
		slog.String("persistence", s.state.dur.Load().mode()),
		slog.String("replicaof", s.cfg.ReplicaOf),
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
//  3. if recovery of the data directory is still running, it waits for it
//     to end, or for ctx: then it returns an error without closing the data
//     directory (it recovers again at the next start, as after a crash);
//  4. it stops the expiry sweep, waiting for a pass in progress;
//  5. it stops replication: a replica applies nothing more (its replicas
//     were streamed what was written before their links closed in step 2);
//  6. it commits, syncs and closes the data directory, waiting for that up
//     to 30 seconds whatever ctx says (past them the directory recovers as
//     after a crash);
//  7. it logs "sluice stopped" and stops the metrics listener, waiting for
//     the scrapes in progress.
//
// It returns why persistence failed, during the run or while closing, or
// nil. It may be called before Serve, and more than once: later calls wait
// for the first and return its result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdown.Do(func() {
		s.mu.Lock()
		s.stopping = true
		served, rec := s.serving, s.rec
		s.metrics.setReady(false)
		s.mu.Unlock()
		if !served {
			closeAll(s.lns) // Serve never took them over
		}
		if err := s.net.Shutdown(ctx); err != nil {
			s.log.Warn("shutdown timed out; closing the remaining connections", slog.Any("err", err))
			_ = s.net.Close()
		}
		if err := s.awaitRecovery(ctx, rec); err != nil {
			s.shutdownErr = err
			s.metrics.shutdown(context.Background())
			return
		}
		s.mu.Lock()
		sweep := s.sweep
		s.mu.Unlock()
		sweep.stop()
		s.shutdownErr = s.state.close()
		s.log.Info("sluice stopped", slog.Int("keys", s.state.keyCount()))
		s.metrics.shutdown(context.Background())
	})
	return s.shutdownErr
}

// awaitRecovery waits for a recovery in progress (rec may be nil) to end,
// or for ctx.
func (s *Server) awaitRecovery(ctx context.Context, rec *recovery) error {
	if rec == nil {
		return nil
	}
	select {
	case <-rec.done:
		return nil
	default:
	}
	s.log.Info("shutdown: waiting for the recovery of the data directory to end")
	select {
	case <-rec.done:
		return nil
	case <-ctx.Done():
		s.log.Error("shutdown: recovery still running; stopping without closing the data directory (it recovers again at the next start, as after a crash)")
		return errors.New("shutdown during recovery: the data directory was not closed")
	}
}

// listen opens one listener per host on port, wrapped in TLS when tc is
// set. On error it closes the ones it opened.
func listen(hosts []string, port int, tc *tls.Config) ([]net.Listener, error) {
	addrs := make([]string, len(hosts))
	for i, host := range hosts {
		addrs[i] = net.JoinHostPort(host, strconv.Itoa(port))
	}
	return listenAt(addrs, tc)
}

// listenAt opens one listener per address, wrapped in TLS when tc is set.
// On error it closes the ones it opened.
func listenAt(addrs []string, tc *tls.Config) ([]net.Listener, error) {
	var lns []net.Listener
	for _, addr := range addrs {
		ln, err := net.Listen("tcp", addr)
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
