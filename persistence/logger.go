package persistence

import (
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble"
)

// pebbleLogger routes Pebble's messages to slog. Pebble's informational
// chatter goes to debug level. Fatalf — Pebble's way of reporting a failed
// commit or a broken invariant — logs at error level and panics with a
// fatalError instead of exiting the process: guard recovers it as the
// error of the call that failed; elsewhere (a Pebble background goroutine)
// it ends the process as Pebble's own logger would.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug("pebble: "+fmt.Sprintf(format, args...), slog.String("component", "pebble"))
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error("pebble: fatal error", slog.String("err", msg))
	panic(fatalError(msg))
}

// fatalError is what pebbleLogger.Fatalf panics with.
type fatalError string

func (e fatalError) Error() string { return string(e) }

// guard runs fn, turning a Pebble fatal error panic into an error.
func guard(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			fe, ok := r.(fatalError)
			if !ok {
				panic(r)
			}
			err = fe
		}
	}()
	return fn()
}

// eventListener logs Pebble's background errors, slow disks and write
// stalls, and counts the errors as write errors.
func (s *Store) eventListener() *pebble.EventListener {
	return &pebble.EventListener{
		BackgroundError: func(err error) {
			s.writeErrors.Add(1)
			s.log.Error("persistence: pebble background error", slog.Any("err", err))
		},
		DiskSlow: func(info pebble.DiskSlowInfo) {
			s.log.Warn("persistence: disk slow", slog.String("op", info.String()))
		},
		WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
			s.log.Warn("persistence: pebble write stall", slog.String("reason", info.Reason))
		},
		WriteStallEnd: func() { s.log.Info("persistence: pebble write stall ended") },
	}
}
