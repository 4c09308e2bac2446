package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/peterbourgon/ff/v4"
	"github.com/peterbourgon/ff/v4/ffhelp"
	"github.com/peterbourgon/ff/v4/ffval"
	"github.com/sluicehq/sluice/server"
)

// config is every setting of the command: the server's, whose names, usage
// and defaults come from package server, and the process's own below, each
// a flag, a SLUICE_* variable and a config file line.
type config struct {
	server.Config
	processConfig
	logConfig
	actionConfig
}

// processConfig: the process around the server.
type processConfig struct {
	GOMAXPROCS      int           `ff:"long: gomaxprocs, default: 0, usage: 'Go scheduler threads (0: the number of CPUs)'"`
	ShutdownTimeout time.Duration `ff:"long: shutdown-timeout, default: 10s, usage: 'how long a graceful shutdown waits for connections'"`
}

// logConfig: the log.
type logConfig struct {
	LogLevel  string `ff:"long: log-level, default: info, usage: 'debug | info | warn | error'"`
	LogFormat string `ff:"long: log-format, default: text, usage: 'text | json'"`
}

// actionConfig: run something else instead of the server.
type actionConfig struct {
	Version     bool `ff:"long: version, nodefault, usage: 'print the version and exit'"`
	HealthCheck bool `ff:"long: healthcheck, nodefault, usage: 'probe the server at --port on loopback with PING and exit 0 if it answers (for container HEALTHCHECKs)'"`
}

// parseConfig reads flags, then SLUICE_* variables, then the --config file
// (each beats the next) over server.Default, and validates the result.
func parseConfig(args []string, stdout io.Writer) (config, error) {
	cfg := config{Config: server.Default()}
	fs, err := newFlagSet(&cfg)
	if err != nil {
		return cfg, err
	}
	err = ff.Parse(fs, args,
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

// newFlagSet makes a flag for every setting of cfg, whose values become the
// flags' defaults. There is one flag set per section of --help, chained so
// that --help lists them in this order: the set returned is the last, named
// sluice; its parents follow.
func newFlagSet(cfg *config) (*ff.FlagSet, error) {
	sections := []struct {
		name string
		own  any // the process's own flags of the section, if any
	}{
		{"actions", &cfg.actionConfig}, {"observability", &cfg.logConfig}, {"policies", nil},
		{"persistence", nil}, {"security", nil}, {"limits", nil},
		{"cluster", nil},
		{"sluice", &cfg.processConfig},
	}
	settings := cfg.Config.Settings()
	added := 0
	var fs *ff.FlagSet
	for _, sec := range sections {
		child := ff.NewFlagSet(sec.name)
		if fs != nil {
			child.SetParent(fs)
		} else {
			child.StringLong("config", "", "config file: one 'flag-name value' per line")
		}
		for _, s := range settings {
			if s.Section != sec.name {
				continue
			}
			if err := addSetting(child, s); err != nil {
				return nil, err
			}
			added++
		}
		if sec.own != nil {
			if err := child.AddStruct(sec.own); err != nil {
				return nil, err
			}
		}
		fs = child
	}
	if added != len(settings) {
		return nil, fmt.Errorf("%d server settings are in no --help section", len(settings)-added)
	}
	return fs, nil
}

// addSetting adds the flag of one server setting; its default is the
// field's value, server.Default's.
func addSetting(fs *ff.FlagSet, s server.Setting) error {
	v, ok := s.Value.(flag.Value) // a field that parses itself (server.Bytes)
	if !ok {
		var err error
		if v, err = ffval.NewValueReflect(s.Value, ""); err != nil {
			return fmt.Errorf("--%s: %w", s.Name, err)
		}
	}
	_, err := fs.AddFlag(ff.FlagConfig{LongName: s.Name, Usage: s.Usage, Value: v})
	return err
}

// validate reports every problem at once, the server's and the process's.
func (c config) validate() error {
	errs := []error{c.Config.Validate()}
	if c.GOMAXPROCS < 0 {
		errs = append(errs, fmt.Errorf("--gomaxprocs %d: must not be negative", c.GOMAXPROCS))
	}
	if c.ShutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("--shutdown-timeout %s: must not be negative", c.ShutdownTimeout))
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("--log-format %q: must be text or json", c.LogFormat))
	}
	return errors.Join(errs...)
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("--log-level %q: must be debug, info, warn or error", s)
	}
	return l, nil
}

func newLogger(c logConfig, w io.Writer) (*slog.Logger, error) {
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
