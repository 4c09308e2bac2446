// Command sluice runs the Sluice rate-limiting server: THROTTLE and
// CL.THROTTLE over the Redis protocol, on a sharded in-memory table.
//
// Every flag can also be set from a SLUICE_* environment variable (the flag
// name upper-cased with dashes as underscores, e.g. SLUICE_PORT) or from a
// config file named by --config (one "name value" per line). Flags beat the
// environment, which beats the file. The server's settings and their
// defaults are package server's (config.go maps them onto flags); this
// command adds logging, signals and the process's own settings.
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
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, ff.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "sluice:", err)
		os.Exit(1)
	}
}

// run parses args, serves until ctx is done, then shuts down gracefully.
// SIGHUP reloads the policy file and the TLS certificate.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
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
	log, err := newLogger(cfg.logConfig, stderr)
	if err != nil {
		return err
	}
	if cfg.GOMAXPROCS > 0 {
		runtime.GOMAXPROCS(cfg.GOMAXPROCS)
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
	case err := <-served: // a listener failed
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
