// Command sluice runs the Sluice rate-limiting server: THROTTLE and
// CL.THROTTLE over the Redis protocol, on a sharded in-memory table.
//
// Usage: sluice [config-file] [flags]. Every flag can also be set from a
// SLUICE_* environment variable (the flag name upper-cased with dashes as
// underscores, e.g. SLUICE_PORT) or from a config file, given first as
// redis-server's is or by --config (one "name value" line per setting, as
// in redis.conf). Flags beat the environment, which beats the file. The
// server's settings and their defaults are package server's (config.go
// maps them onto flags); this command adds logging, signals and the
// process's own settings.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/peterbourgon/ff/v4"
	"github.com/sluicehq/sluice/commands"
	"github.com/sluicehq/sluice/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run parses args, serves until ctx is done, then shuts down gracefully,
// and returns the exit code: 0, or 1 after an error it reported on stderr
// (as a log line in the configured format once the format is known).
// SIGHUP reloads the policy file and the TLS certificate.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := parseConfig(args, getenv, stdout)
	if errors.Is(err, ff.ErrHelp) {
		return 0
	}
	if err == nil {
		err = serve(ctx, cfg, stdout, stderr)
	}
	if err == nil {
		return 0
	}
	if log := fatalLogger(cfg, args, getenv, stderr); log != nil {
		log.Error("fatal error", slog.String("err", err.Error()))
	} else {
		fmt.Fprintln(stderr, "sluice:", err)
	}
	return 1
}

// serve runs what cfg asks for: an action (--version, --healthcheck) or the
// server, until ctx is done.
func serve(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	if cfg.Version {
		fmt.Fprintf(stdout, "sluice %s (%s)\n", commands.Version, runtime.Version())
		return nil
	}
	if cfg.HealthCheck {
		return healthCheck(cfg, stdout)
	}
	log, err := newLogger(cfg.logConfig, stderr)
	if err != nil {
		return err
	}
	if cfg.GOMAXPROCS > 0 {
		runtime.GOMAXPROCS(cfg.GOMAXPROCS)
	}
	if cfg.File != "" {
		log.Info("config file read", slog.String("file", cfg.File))
	}
	srv, err := server.New(cfg.Config, log)
	if err != nil {
		return err
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer func() { signal.Stop(hup); close(hup) }()
	go func() {
		for range hup {
			srv.Reload()
		}
	}()

	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	select {
	case <-ctx.Done():
		log.Info("shutting down: no new connections; finishing in-flight replies", slog.Duration("timeout", cfg.ShutdownTimeout))
	case err := <-served: // a listener or recovery failed
		_ = srv.Shutdown(context.Background())
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	defer hurryOnSignal(log, cancel)()
	return srv.Shutdown(sctx)
}

// hurryOnSignal makes a second SIGINT or SIGTERM during shutdown cut the wait
// for connections short by calling cancel; the shutdown still closes the
// data directory cleanly, and the signal never kills the process mid-close.
// Call the returned function when shutdown is over.
func hurryOnSignal(log *slog.Logger, cancel context.CancelFunc) func() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-ch:
			log.Warn("second signal: closing the remaining connections now; persistence still flushes and closes",
				slog.String("signal", sig.String()))
			cancel()
		case <-done:
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}
