// Command sluice runs the Sluice rate-limiting server: THROTTLE and
// CL.THROTTLE over the Redis protocol, on a sharded in-memory table.
//
// Every flag can also be set from a SLUICE_* environment variable (the flag
// name upper-cased with dashes as underscores, e.g. SLUICE_PORT) or from a
// config file named by --config (one "name value" per line). Flags beat the
// environment, which beats the file.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/peterbourgon/ff/v4"
	"github.com/peterbourgon/ff/v4/ffhelp"
	"github.com/sluicehq/sluice/acl"
	"github.com/sluicehq/sluice/commands"
	"github.com/sluicehq/sluice/gcra"
	"github.com/sluicehq/sluice/persistence"
	"github.com/sluicehq/sluice/resp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil); err != nil {
		if errors.Is(err, ff.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "sluice:", err)
		os.Exit(1)
	}
}

// run parses args, serves until ctx is done, then shuts down gracefully.
// ready, when not nil, receives the listening addresses once serving.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready chan<- []net.Addr) error {
	cfg, err := parseConfig(args, stdout)
	if err != nil {
		return err
	}
	if cfg.HealthCheck {
		return healthCheck(cfg, stdout)
	}
	if cfg.Version {
		fmt.Fprintf(stdout, "sluice %s (%s)\n", commands.Version, runtime.Version())
		return nil
	}
	log, err := newLogger(cfg, stderr)
	if err != nil {
		return err
	}
	if cfg.GOMAXPROCS > 0 {
		runtime.GOMAXPROCS(cfg.GOMAXPROCS)
	}

	users, err := cfg.users()
	if err != nil {
		return err
	}

	dur, err := openDurability(cfg, log)
	if err != nil {
		return err
	}
	defer func() { _ = dur.close() }() // early returns; a no-op after the shutdown's
	table := gcra.NewTable(cfg.Shards, dur.journal())
	clock := gcra.NewSettableClock(gcra.NewSystemClock())
	if err := dur.load(table, clock.Now()); err != nil {
		return err
	}
	rs := &resp.Server{
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
	}
	cmds := commands.NewServer(commands.Config{
		Table:       table,
		Clock:       clock,
		Logger:      log,
		EnableDebug: cfg.EnableDebug,
		NetStats:    rs.Stats,
		Settings:    cfg.settings(),
		Users:       users,
		Protected:   cfg.ProtectedMode && !users.AuthRequired(),
		Persistence: dur.commands(),
	})
	if windows, leases, err := cmds.RecoverWindowsAndLeases(clock.Now()); err != nil {
		return fmt.Errorf("recover window and lease state: %w", err)
	} else if dur != nil {
		log.Info("recovered window and lease state", slog.Int("windows", windows), slog.Int("lease_keys", leases))
	}
	rs.Handler = cmds
	rs.OnOpen = cmds.OpenConn
	rs.OnClose = cmds.CloseConn
	policies, err := loadPolicyFile(cfg.PolicyFile, cmds, log)
	if err != nil {
		return fmt.Errorf("--policy-file: %w", err)
	}

	var metrics *metricsServer
	if cfg.MetricsAddr != "" {
		if metrics, err = startMetrics(cfg.MetricsAddr, newRegistry(cmds, rs, dur), log, cfg.Pprof); err != nil {
			return fmt.Errorf("--metrics-addr: %w", err)
		}
		defer metrics.shutdown(context.Background())
	}

	var certs *certStore
	lns, err := listen(cfg.bindAddrs(), cfg.Port, nil)
	if err != nil {
		return err
	}
	if cfg.TLSPort != 0 {
		tc, store, err := newTLSConfig(cfg)
		if err == nil {
			var tlns []net.Listener
			tlns, err = listen(cfg.bindAddrs(), cfg.TLSPort, tc)
			lns = append(lns, tlns...)
		}
		if err != nil {
			closeAll(lns)
			return err
		}
		certs = store
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			reloaded := policies.reload()
			if certs == nil {
				if !reloaded {
					log.Info("SIGHUP: nothing to reload")
				}
				continue
			}
			if err := certs.reload(); err != nil {
				log.Error("SIGHUP: TLS certificate reload failed; keeping the old one", slog.Any("err", err))
				continue
			}
			log.Info("SIGHUP: TLS certificate reloaded", slog.String("cert", cfg.TLSCertFile))
		}
	}()

	sweepCtx, stopSweep := context.WithCancel(context.Background())
	sweepDone := make(chan struct{})
	stopSweeper := func() { stopSweep(); <-sweepDone } // before closing persistence: the sweep journals
	defer stopSweeper()
	go func() {
		defer close(sweepDone)
		every(sweepCtx, cfg.SweepInterval, func() {
			table.SweepStep(clock.Now())
			cmds.SweepWindowsAndLeases(windowLeaseSweepBudget)
		})
	}()

	errc := make(chan error, len(lns))
	var addrs, tlsAddrs []net.Addr
	for _, ln := range lns {
		if isTLS(ln) {
			tlsAddrs = append(tlsAddrs, ln.Addr())
		} else {
			addrs = append(addrs, ln.Addr())
		}
		go func() { errc <- rs.Serve(ln) }()
	}
	log.Info("sluice ready",
		slog.String("addr", joinAddrs(addrs)),
		slog.String("tls_addr", joinAddrs(tlsAddrs)),
		slog.String("metrics_addr", cfg.MetricsAddr),
		slog.String("version", commands.Version),
		slog.Int("shards", table.Shards()),
		slog.Int("gomaxprocs", runtime.GOMAXPROCS(0)),
		slog.String("persistence", dur.mode()),
		slog.Bool("debug_command", cfg.EnableDebug),
		slog.Bool("auth_required", users.AuthRequired()),
		slog.Bool("protected_mode", cfg.ProtectedMode && !users.AuthRequired()))
	metrics.setReady(true)
	if ready != nil {
		ready <- addrs
	}

	select {
	case <-ctx.Done():
		log.Info("shutting down: no new connections; finishing in-flight replies", slog.Duration("timeout", cfg.ShutdownTimeout))
	case err := <-errc:
		log.Error("listener failed", slog.Any("err", err))
		_ = rs.Close()
		return err
	}
	metrics.setReady(false)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	defer hurryOnSignal(log, cancel)()
	if err := rs.Shutdown(sctx); err != nil {
		log.Warn("shutdown timed out; closing the remaining connections", slog.Any("err", err))
		_ = rs.Close()
	}
	stopSweeper()
	err = dur.close()
	log.Info("sluice stopped", slog.Int("keys", table.Len()))
	return err
}

// listen opens one listener per host on port, wrapped in TLS when tc is set.
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

// users builds the accounts from --requirepass (or its file) and --aclfile.
func (c config) users() (*acl.Users, error) {
	pass := c.RequirePass
	if c.RequirePassFile != "" {
		b, err := os.ReadFile(c.RequirePassFile)
		if err != nil {
			return nil, fmt.Errorf("--requirepass-file: %w", err)
		}
		pass = strings.TrimRight(string(b), "\r\n")
	}
	users := acl.NewUsers(pass)
	if c.ACLFile != "" {
		f, err := os.Open(c.ACLFile)
		if err != nil {
			return nil, fmt.Errorf("--aclfile: %w", err)
		}
		defer f.Close()
		if err := users.Load(f); err != nil {
			return nil, fmt.Errorf("--aclfile %s: %w", c.ACLFile, err)
		}
	}
	return users, nil
}

func joinAddrs(addrs []net.Addr) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

// config is every setting, each a flag, a SLUICE_* variable and a config
// file line. Its groups are embedded, so a setting reads as cfg.Port, and
// each group is one section of --help.
type config struct {
	serverConfig
	limitConfig
	securityConfig
	persistenceConfig
	featureConfig
	observeConfig
	actionConfig
}

// serverConfig: listening, state and the process.
type serverConfig struct {
	Bind            string        `ff:"long: bind, default: 127.0.0.1, usage: 'addresses to listen on (space or comma separated)'"`
	Port            int           `ff:"long: port, default: 6379, usage: 'TCP port (0 picks a free one)'"`
	Shards          int           `ff:"long: shards, default: 256, usage: 'state table shards (rounded up to a power of two)'"`
	SweepInterval   time.Duration `ff:"long: sweep-interval, default: 100ms, usage: 'how often expired keys are reclaimed (a tenth of each shard per pass)'"`
	GOMAXPROCS      int           `ff:"long: gomaxprocs, default: 0, usage: 'Go scheduler threads (0: the number of CPUs)'"`
	ShutdownTimeout time.Duration `ff:"long: shutdown-timeout, default: 10s, usage: 'how long a graceful shutdown waits for connections'"`
	EnableDebug     bool          `ff:"long: enable-debug-command, nodefault, usage: 'allow DEBUG (freezing the clock: for tests only)'"`
}

// limitConfig: what one client can make the server hold.
type limitConfig struct {
	MaxClients      int           `ff:"long: maxclients, default: 10000, usage: 'maximum simultaneous client connections'"`
	MaxClientsPerIP int           `ff:"long: maxclients-per-ip, default: 0, usage: 'maximum connections from one IP address (0: no cap)'"`
	MaxBulkLen      int64         `ff:"long: proto-max-bulk-len, default: 1048576, usage: 'largest bulk string accepted in a request, bytes'"`
	MaxArgs         int           `ff:"long: proto-max-args, default: 65536, usage: 'most arguments in one command'"`
	MaxInlineLen    int           `ff:"long: proto-max-inline-len, default: 65536, usage: 'longest inline command, bytes'"`
	MaxQueryBuffer  int           `ff:"long: client-query-buffer-limit, default: 33554432, usage: 'most unparsed request bytes buffered per connection'"`
	MaxPendingReply int           `ff:"long: client-reply-buffer, default: 1048576, usage: 'reply bytes buffered before a mid-pipeline flush'"`
	WriteTimeout    time.Duration `ff:"long: write-timeout, default: 10s, usage: 'longest one flush of replies may block on a client that does not read'"`
	IdleTimeout     time.Duration `ff:"long: timeout, default: 0s, usage: 'close connections idle this long (0: never)'"`
	PreAuthMaxArgs  int           `ff:"long: preauth-max-args, default: 10, usage: 'most arguments in one command before AUTH'"`
	PreAuthMaxBulk  int64         `ff:"long: preauth-max-bulk-len, default: 16384, usage: 'largest bulk string before AUTH, bytes'"`
	AuthTimeout     time.Duration `ff:"long: auth-timeout, default: 10s, usage: 'close connections not authenticated this long after connecting (when a password is set)'"`
}

// securityConfig: passwords, users and TLS.
type securityConfig struct {
	ProtectedMode   bool   `ff:"long: protected-mode, default: true, usage: 'without a password, serve only loopback clients'"`
	RequirePass     string `ff:"long: requirepass, nodefault, usage: 'password of the default user (prefer SLUICE_REQUIREPASS or --requirepass-file: flags show in ps)'"`
	RequirePassFile string `ff:"long: requirepass-file, nodefault, usage: 'file holding the default user password'"`
	ACLFile         string `ff:"long: aclfile, nodefault, usage: 'users file: one \"user <name> <rules...>\" per line, Redis ACL syntax'"`
	TLSPort         int    `ff:"long: tls-port, default: 0, usage: 'TLS port (0: no TLS listener)'"`
	TLSCertFile     string `ff:"long: tls-cert-file, nodefault, usage: 'server certificate (PEM); reloaded on SIGHUP'"`
	TLSKeyFile      string `ff:"long: tls-key-file, nodefault, usage: 'server private key (PEM); reloaded on SIGHUP'"`
	TLSCACertFile   string `ff:"long: tls-ca-cert-file, nodefault, usage: 'CA certificates that sign client certificates (PEM)'"`
	TLSAuthClients  string `ff:"long: tls-auth-clients, default: yes, usage: 'client certificates: no | optional | yes'"`
}

// persistenceConfig: the durable copy on Pebble.
type persistenceConfig struct {
	DataDir   string `ff:"long: data-dir, nodefault, usage: 'keep a durable copy of the state here (Pebble) and reload it at start (empty: in memory only)'"`
	Fsync     string `ff:"long: fsync, default: everysec, usage: 'with --data-dir, when changes reach the disk: always (before the reply) | everysec | no (the OS decides)'"`
	FoldBytes int    `ff:"long: fold-bytes, default: 16777216, usage: 'with --data-dir, journalled bytes folded into the key space at once: larger writes a busy key fewer times but replays longer at start and takes more memory while folding'"`
}

// featureConfig: named policies.
type featureConfig struct {
	PolicyFile string `ff:"long: policy-file, nodefault, usage: 'named policies (TOML) for POLICY.THROTTLE; reloaded on SIGHUP'"`
}

// observeConfig: logs, metrics and profiles.
type observeConfig struct {
	LogLevel    string `ff:"long: log-level, default: info, usage: 'debug | info | warn | error'"`
	LogFormat   string `ff:"long: log-format, default: text, usage: 'text | json'"`
	MetricsAddr string `ff:"long: metrics-addr, nodefault, usage: 'serve Prometheus /metrics, /healthz and /readyz over HTTP here (e.g. 127.0.0.1:9121; empty: off)'"`
	Pprof       bool   `ff:"long: pprof, nodefault, usage: 'also serve Go profiles on the metrics listener at /debug/pprof/ (needs --metrics-addr)'"`
}

// actionConfig: run something else instead of the server.
type actionConfig struct {
	Version     bool `ff:"long: version, nodefault, usage: 'print the version and exit'"`
	HealthCheck bool `ff:"long: healthcheck, nodefault, usage: 'probe the server at --port on loopback with PING and exit 0 if it answers (for container HEALTHCHECKs)'"`
}

func parseConfig(args []string, stdout io.Writer) (config, error) {
	var cfg config
	// One flag set per group, chained so that --help lists them in this
	// order: the last set is parsed and named sluice, its parents follow.
	groups := []struct {
		name string
		val  any
	}{
		{"actions", &cfg.actionConfig}, {"observability", &cfg.observeConfig}, {"policies", &cfg.featureConfig},
		{"persistence", &cfg.persistenceConfig}, {"security", &cfg.securityConfig}, {"limits", &cfg.limitConfig},
		{"sluice", &cfg.serverConfig},
	}
	var fs *ff.FlagSet
	for _, g := range groups {
		child := ff.NewFlagSet(g.name)
		if fs != nil {
			child.SetParent(fs)
		} else {
			child.StringLong("config", "", "config file: one 'flag-name value' per line")
		}
		if err := child.AddStruct(g.val); err != nil {
			return cfg, err
		}
		fs = child
	}
	err := ff.Parse(fs, args,
		ff.WithEnvVarPrefix("SLUICE"),
		ff.WithConfigFileFlag("config"),
		ff.WithConfigFileParser(ff.PlainParser))
	if errors.Is(err, ff.ErrHelp) {
		fmt.Fprintln(stdout, ffhelp.Flags(fs, "sluice [flags]"))
		return cfg, err
	}
	if err != nil {
		return cfg, err
	}
	return cfg, cfg.validate()
}

// validate reports every problem at once.
func (c config) validate() error {
	var errs []error
	if c.Port < 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("--port %d: must be 0..65535", c.Port))
	}
	if len(c.bindAddrs()) == 0 {
		errs = append(errs, errors.New("--bind: no address"))
	}
	if c.Shards < 1 || c.Shards > 1<<16 {
		errs = append(errs, fmt.Errorf("--shards %d: must be 1..65536", c.Shards))
	}
	if c.SweepInterval <= 0 {
		errs = append(errs, fmt.Errorf("--sweep-interval %s: must be positive", c.SweepInterval))
	}
	if c.MaxClients < 1 {
		errs = append(errs, fmt.Errorf("--maxclients %d: must be at least 1", c.MaxClients))
	}
	if c.MaxClientsPerIP < 0 {
		errs = append(errs, fmt.Errorf("--maxclients-per-ip %d: must not be negative", c.MaxClientsPerIP))
	}
	if c.PreAuthMaxArgs < 1 || c.PreAuthMaxBulk < 1 {
		errs = append(errs, errors.New("--preauth-max-args and --preauth-max-bulk-len must be positive"))
	}
	if c.AuthTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--auth-timeout %s: must be positive", c.AuthTimeout))
	}
	if c.MaxBulkLen < 1 {
		errs = append(errs, fmt.Errorf("--proto-max-bulk-len %d: must be positive", c.MaxBulkLen))
	}
	if c.MaxArgs < 1 {
		errs = append(errs, fmt.Errorf("--proto-max-args %d: must be positive", c.MaxArgs))
	}
	if c.MaxInlineLen < 1 {
		errs = append(errs, fmt.Errorf("--proto-max-inline-len %d: must be positive", c.MaxInlineLen))
	}
	if int64(c.MaxQueryBuffer) <= c.MaxBulkLen {
		errs = append(errs, fmt.Errorf("--client-query-buffer-limit %d: must exceed --proto-max-bulk-len %d", c.MaxQueryBuffer, c.MaxBulkLen))
	}
	if c.MaxPendingReply < 1 {
		errs = append(errs, fmt.Errorf("--client-reply-buffer %d: must be positive", c.MaxPendingReply))
	}
	if c.WriteTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--write-timeout %s: must be positive", c.WriteTimeout))
	}
	if c.IdleTimeout < 0 || c.ShutdownTimeout < 0 {
		errs = append(errs, errors.New("--timeout and --shutdown-timeout must not be negative"))
	}
	if c.RequirePass != "" && c.RequirePassFile != "" {
		errs = append(errs, errors.New("--requirepass and --requirepass-file: set one"))
	}
	if c.TLSPort < 0 || c.TLSPort > 65535 {
		errs = append(errs, fmt.Errorf("--tls-port %d: must be 0..65535", c.TLSPort))
	}
	if c.TLSPort != 0 && (c.TLSCertFile == "" || c.TLSKeyFile == "") {
		errs = append(errs, errors.New("--tls-port needs --tls-cert-file and --tls-key-file"))
	}
	if c.TLSAuthClients != "no" && c.TLSAuthClients != "optional" && c.TLSAuthClients != "yes" {
		errs = append(errs, fmt.Errorf("--tls-auth-clients %q: must be no, optional or yes", c.TLSAuthClients))
	}
	if c.TLSPort != 0 && c.TLSAuthClients != "no" && c.TLSCACertFile == "" {
		errs = append(errs, errors.New("--tls-auth-clients optional or yes needs --tls-ca-cert-file"))
	}
	if c.Pprof && c.MetricsAddr == "" {
		errs = append(errs, errors.New("--pprof needs --metrics-addr"))
	}
	if c.FoldBytes < 1<<16 {
		errs = append(errs, fmt.Errorf("--fold-bytes %d: must be at least 65536", c.FoldBytes))
	}
	if c.GOMAXPROCS < 0 {
		errs = append(errs, fmt.Errorf("--gomaxprocs %d: must not be negative", c.GOMAXPROCS))
	}
	if _, err := persistence.ParseMode(c.Fsync); err != nil {
		errs = append(errs, fmt.Errorf("--fsync: %w", err))
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("--log-format %q: must be text or json", c.LogFormat))
	}
	return errors.Join(errs...)
}

func (c config) bindAddrs() []string {
	return strings.FieldsFunc(c.Bind, func(r rune) bool { return r == ' ' || r == ',' })
}

// settings lists the effective configuration for CONFIG GET and INFO.
func (c config) settings() []commands.Setting {
	return []commands.Setting{
		{Name: "bind", Value: strings.Join(c.bindAddrs(), " ")},
		{Name: "port", Value: strconv.Itoa(c.Port)},
		{Name: "maxclients", Value: strconv.Itoa(c.MaxClients)},
		{Name: "maxclients-per-ip", Value: strconv.Itoa(c.MaxClientsPerIP)},
		{Name: "preauth-max-args", Value: strconv.Itoa(c.PreAuthMaxArgs)},
		{Name: "preauth-max-bulk-len", Value: strconv.FormatInt(c.PreAuthMaxBulk, 10)},
		{Name: "auth-timeout", Value: c.AuthTimeout.String()},
		{Name: "proto-max-bulk-len", Value: strconv.FormatInt(c.MaxBulkLen, 10)},
		{Name: "proto-max-args", Value: strconv.Itoa(c.MaxArgs)},
		{Name: "proto-max-inline-len", Value: strconv.Itoa(c.MaxInlineLen)},
		{Name: "client-query-buffer-limit", Value: strconv.Itoa(c.MaxQueryBuffer)},
		{Name: "client-reply-buffer", Value: strconv.Itoa(c.MaxPendingReply)},
		{Name: "write-timeout", Value: c.WriteTimeout.String()},
		{Name: "timeout", Value: strconv.FormatInt(int64(c.IdleTimeout/time.Second), 10)},
		{Name: "shards", Value: strconv.Itoa(c.Shards)},
		{Name: "sweep-interval", Value: c.SweepInterval.String()},
		{Name: "save", Value: ""},
		{Name: "appendonly", Value: "no"},
		{Name: "databases", Value: "1"},
		{Name: "protected-mode", Value: map[bool]string{true: "yes", false: "no"}[c.ProtectedMode]},
		{Name: "requirepass", Value: redacted(c.RequirePass != "" || c.RequirePassFile != "")},
		{Name: "aclfile", Value: c.ACLFile},
		{Name: "tls-port", Value: strconv.Itoa(c.TLSPort)},
		{Name: "tls-cert-file", Value: c.TLSCertFile},
		{Name: "tls-auth-clients", Value: c.TLSAuthClients},
		{Name: "metrics-addr", Value: c.MetricsAddr},
		{Name: "data-dir", Value: c.DataDir},
		{Name: "fsync", Value: c.Fsync},
		{Name: "fold-bytes", Value: strconv.Itoa(c.FoldBytes)},
		{Name: "enable-debug-command", Value: map[bool]string{true: "yes", false: "no"}[c.EnableDebug]},
	}
}

func redacted(set bool) string {
	if set {
		return "<redacted>"
	}
	return ""
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("--log-level %q: must be debug, info, warn or error", s)
	}
	return l, nil
}

func newLogger(c config, w io.Writer) (*slog.Logger, error) {
	level, err := parseLevel(c.LogLevel)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

// windowLeaseSweepBudget is how many window and lease keys per shard one sweep
// pass examines (writes also reclaim as they go, so the sweep only bounds
// what idle keys keep).
const windowLeaseSweepBudget = 256

// every calls fn every interval until ctx ends.
func every(ctx context.Context, interval time.Duration, fn func()) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			fn()
		}
	}
}
