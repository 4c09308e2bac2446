package persistence

import (
	"fmt"
	"log/slog"
)

// pebbleLogger routes Pebble's messages to slog. Pebble's informational
// chatter goes to debug level. Fatalf — Pebble's way of reporting a failed
// commit or a broken invariant — logs at error level and panics with a
// fatalError instead of exiting the process: the writer recovers it as that
// commit's error; elsewhere (a Pebble background goroutine) it ends the
// process as Pebble's own logger would.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug("pebble: "+fmt.Sprintf(format, args...), slog.String("component", "pebble"))
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error("pebble: fatal error", slog.String("err", msg))
	panic(fatalError(msg))
}
