package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v4"
	"github.com/peterbourgon/ff/v4/ffhelp"
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
	// File is the config file: the first argument when it is not a flag,
	// or --config.
	File string
	// given names the settings set by a flag, a variable or the file (not
	// left at their default).
	given map[string]bool
}

// processConfig: the process around the server.
type processConfig struct {
	GOMAXPROCS      int
	ShutdownTimeout time.Duration
}

// logConfig: the log.
type logConfig struct {
	LogLevel  string
	LogFormat string
}

// actionConfig: run something else instead of the server.
type actionConfig struct {
	Version     bool
	HealthCheck bool
}

// ownSettings are the process's settings, described as the server's are.
func (c *config) ownSettings() []server.Setting {
	return []server.Setting{
		{Name: "version", Section: "actions", Value: &c.Version, Usage: "print the version and exit"},
		{Name: "healthcheck", Section: "actions", Value: &c.HealthCheck,
			Usage: "probe the server at --port on loopback with PING and exit 0 if it answers (for container HEALTHCHECKs)"},
		{Name: "log-level", Section: "observability", Value: &c.LogLevel, Usage: "debug | info | warn | error"},
		{Name: "log-format", Section: "observability", Value: &c.LogFormat, Usage: "text | json"},
		{Name: "gomaxprocs", Section: "sluice", Value: &c.GOMAXPROCS, Usage: "Go scheduler threads (0: the number of CPUs)", Example: "4"},
		{Name: "shutdown-timeout", Section: "sluice", Value: &c.ShutdownTimeout, Usage: "how long a graceful shutdown waits for connections"},
	}
}

// defaultConfig is the configuration before any flag, variable or file.
func defaultConfig() config {
	return config{
		Config:        server.Default(),
		processConfig: processConfig{ShutdownTimeout: 10 * time.Second},
		logConfig:     logConfig{LogLevel: "info", LogFormat: "text"},
		given:         map[string]bool{},
	}
}

// usageLine and helpText frame --help's list of flags.
const (
	usageLine = "sluice [config-file] [flags]"
	helpText  = `Every flag is also an environment variable, SLUICE_ and its name in capitals with
underscores (--protected-mode: SLUICE_PROTECTED_MODE), and a line of a config file, its name
and its value (protected-mode no), as in redis.conf. Flags beat variables, which beat the file.
Booleans take yes/no, true/false or 1/0; a bare boolean flag means yes.

Examples:
  sluice --port 6380 --protected-mode no --requirepass-file /run/secrets/sluice
  SLUICE_DATA_DIR=/var/lib/sluice sluice /etc/sluice/sluice.conf --log-format json`
)

// parseConfig reads args (an optional config file path first, then flags),
// then the SLUICE_* variables getenv finds, then the config file, each
// beating the next, over the defaults, and validates the result. --help
// writes the help to stdout and returns ff.ErrHelp.
func parseConfig(args []string, getenv func(string) string, stdout io.Writer) (config, error) {
	cfg := defaultConfig()
	fs, settings, err := newFlagSet(&cfg)
	if err != nil {
		return cfg, err
	}
	if len(args) > 0 && args[0] != "" && !strings.HasPrefix(args[0], "-") {
		cfg.File, args = args[0], args[1:] // redis-server's way: sluice sluice.conf --port 6380
	}
	positional := cfg.File
	args, err = joinBoolValues(fs, settings, args)
	if err != nil {
		return cfg, err
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, ff.ErrHelp) {
			fmt.Fprintf(stdout, "%s\n%s\n", ffhelp.Flags(fs, usageLine), helpText)
			return cfg, err
		}
		return cfg, flagError(err)
	}
	if rest := fs.GetArgs(); len(rest) > 0 {
		return cfg, fmt.Errorf("unexpected argument %q: only a config file path may come first, "+
			"and a flag's value follows it (--protected-mode no, --port 6380)", rest[0])
	}
	if positional != "" && cfg.File != positional {
		return cfg, fmt.Errorf("config file given twice: %q first and --config %q", positional, cfg.File)
	}
	if cfg.Version {
		return cfg, nil // nothing else matters
	}
	markGiven(fs, cfg.given)
	if positional != "" {
		cfg.given["config"] = true
	}
	if err := readEnv(settings, cfg.given, getenv); err != nil {
		return cfg, err
	}
	if cfg.File != "" {
		if err := readConfigFile(cfg.File, settings, cfg.given); err != nil {
			return cfg, err
		}
	}
	return cfg, cfg.validate()
}

// newFlagSet makes a flag for every setting of cfg, whose values become the
// flags' defaults, and returns them by name too. There is one flag set per
// section of --help, chained so that --help lists them in this order: the
// set returned is the last, named sluice; its parents follow.
func newFlagSet(cfg *config) (*ff.FlagSet, map[string]*setting, error) {
	sections := []string{"actions", "observability", "policies", "replication", "cluster", "persistence", "security", "limits", "sluice"}
	all := append(cfg.Config.Settings(), cfg.ownSettings()...)
	all = append(all, server.Setting{Name: "config", Section: "actions", Value: &cfg.File,
		Usage: "config file: one 'name value' line per setting, as in redis.conf (or give its path first)", Example: "/etc/sluice/sluice.conf"})
	byName := make(map[string]*setting, len(all))
	var fs *ff.FlagSet
	for _, sec := range sections {
		child := ff.NewFlagSet(sec)
		if fs != nil {
			child.SetParent(fs)
		}
		for _, s := range all {
			if s.Section != sec {
				continue
			}
			v := &setting{Setting: s}
			fc := ff.FlagConfig{LongName: s.Name, Usage: s.Usage, Value: v, Placeholder: v.placeholder()}
			if v.isBool() {
				fc.NoPlaceholder, fc.NoDefault = true, !*s.Value.(*bool)
			}
			if s.Name == "version" {
				fc.ShortName = 'v'
			}
			if _, err := child.AddFlag(fc); err != nil {
				return nil, nil, err
			}
			byName[s.Name] = v
		}
		fs = child
	}
	if len(byName) != len(all) {
		return nil, nil, fmt.Errorf("%d settings are in no --help section", len(all)-len(byName))
	}
	return fs, byName, nil
}

// joinBoolValues turns "--flag yes" into "--flag=yes" for the boolean
// flags, so that Redis's spellings (--protected-mode no) work: the flag
// parser would take "no" for a positional argument. It also names the flag
// whose value is missing at the end of args.
func joinBoolValues(fs *ff.FlagSet, settings map[string]*setting, args []string) ([]string, error) {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		arg := args[i]
		out = append(out, arg)
		if arg == "--" || !strings.HasPrefix(arg, "--") {
			if !strings.HasPrefix(arg, "-") || arg == "--" {
				return append(out, args[i+1:]...), nil // the rest is positional
			}
			continue
		}
		name := strings.TrimPrefix(arg, "--")
		if strings.Contains(name, "=") {
			continue
		}
		s, ok := settings[name]
		if !ok {
			if name == "help" {
				continue
			}
			return nil, fmt.Errorf("unknown flag --%s (sluice --help lists the flags)", name)
		}
		switch {
		case s.isBool() && i+1 < len(args):
			if _, err := parseBool(args[i+1]); err == nil {
				out[len(out)-1] = arg + "=" + args[i+1]
				i++
			}
		case !s.isBool() && i+1 == len(args):
			return nil, fmt.Errorf("--%s needs a value (e.g. --%s %s)", name, name, s.example())
		case !s.isBool():
			out = append(out, args[i+1]) // the value, whatever it looks like
			i++
		}
	}
	return out, nil
}

// flagError rephrases the flag parser's errors: each names the flag and
// shows a valid value.
func flagError(err error) error {
	var ve *valueError
	if errors.As(err, &ve) {
		return fmt.Errorf("--%s %q: %s (e.g. --%s %s)", ve.name, ve.value, ve.reason, ve.name, ve.example)
	}
	if errors.Is(err, ff.ErrUnknownFlag) {
		return fmt.Errorf("%w (sluice --help lists the flags)", err)
	}
	return err
}

// markGiven records the flags set on the command line.
func markGiven(fs *ff.FlagSet, given map[string]bool) {
	_ = fs.WalkFlags(func(f ff.Flag) error {
		if name, ok := f.GetLongName(); ok && f.IsSet() {
			given[name] = true
		}
		return nil
	})
}

// envName is a setting's environment variable: SLUICE_PROTECTED_MODE.
func envName(name string) string {
	return "SLUICE_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// readEnv sets every setting not given on the command line whose SLUICE_*
// variable is set and not empty.
func readEnv(settings map[string]*setting, given map[string]bool, getenv func(string) string) error {
	for name, s := range settings {
		if given[name] {
			continue
		}
		key := envName(name)
		v := getenv(key)
		if v == "" {
			continue
		}
		if err := s.Set(v); err != nil {
			var ve *valueError
			if errors.As(err, &ve) {
				return fmt.Errorf("%s=%q: %s (e.g. %s=%s)", key, v, ve.reason, key, ve.example)
			}
			return fmt.Errorf("%s=%q: %w", key, v, err)
		}
		given[name] = true
	}
	return nil
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
	if c.DataDir == "" {
		for _, name := range []string{"fsync", "fold-bytes"} {
			if c.given[name] {
				errs = append(errs, fmt.Errorf("--%s needs --data-dir: without a data directory nothing is persisted", name))
			}
		}
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

// fatalLogger is the logger a start-up error is reported with: the one the
// configuration asks for if it got that far, else one following
// --log-format or SLUICE_LOG_FORMAT as far as they can be read from args
// and the environment.
func fatalLogger(cfg config, args []string, getenv func(string) string, w io.Writer) *slog.Logger {
	format := cfg.LogFormat
	if !cfg.given["log-format"] {
		if v := getenv(envName("log-format")); v != "" {
			format = v
		}
		for i, a := range args {
			switch {
			case a == "--log-format" && i+1 < len(args):
				format = args[i+1]
			case strings.HasPrefix(a, "--log-format="):
				format = strings.TrimPrefix(a, "--log-format=")
			}
		}
	}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return nil
}
