package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/server"
)

// setting is one setting as the value of a flag: it reads what flags,
// SLUICE_* variables and config file lines say, in Redis's spellings
// (yes/no booleans, the timeout in seconds), and says what it expected
// when it cannot.
type setting struct{ server.Setting }

// valueError is a value a setting cannot take; the caller says where the
// value came from (a flag, a variable, a line of a file).
type valueError struct {
	name, value, reason, example string
}

func (e *valueError) Error() string { return fmt.Sprintf("%q: %s", e.value, e.reason) }

// Set parses v into the setting's field.
func (s *setting) Set(v string) error {
	fail := func(reason string) error {
		return &valueError{name: s.Name, value: v, reason: reason, example: s.example()}
	}
	switch p := s.Value.(type) {
	case *string:
		*p = v
	case *int:
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fail(intReason(err))
		}
		*p = n
	case *int64:
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return fail(intReason(err))
		}
		*p = n
	case *bool:
		b, err := parseBool(v)
		if err != nil {
			return fail("must be yes or no (or true/false, 1/0)")
		}
		*p = b
	case *time.Duration:
		d, err := parseDuration(strings.TrimSpace(v), s.Unit)
		if err != nil {
			return fail(err.Error())
		}
		*p = d
	case flag.Value: // a field that parses itself (server.Bytes)
		if err := p.Set(strings.TrimSpace(v)); err != nil {
			return fail(err.Error())
		}
	default:
		return fmt.Errorf("setting %s of unknown type %T", s.Name, s.Value)
	}
	return nil
}

func intReason(err error) string {
	if errors.Is(err, strconv.ErrRange) {
		return "out of range"
	}
	return "not an integer"
}

// String is the value as --help shows the default.
func (s *setting) String() string {
	switch p := s.Value.(type) {
	case *string:
		return *p
	case *int:
		return strconv.Itoa(*p)
	case *int64:
		return strconv.FormatInt(*p, 10)
	case *bool:
		if *p {
			return "yes"
		}
		return "no"
	case *time.Duration:
		if s.Unit == time.Second && *p%time.Second == 0 {
			return strconv.FormatInt(int64(*p/time.Second), 10)
		}
		return p.String()
	case flag.Value:
		return p.String()
	}
	return ""
}

// IsBoolFlag makes a bare boolean flag mean yes.
func (s *setting) IsBoolFlag() bool { return s.isBool() }

func (s *setting) isBool() bool { _, ok := s.Value.(*bool); return ok }

// placeholder names the kind of value in --help.
func (s *setting) placeholder() string {
	switch s.Value.(type) {
	case *int, *int64:
		return "N"
	case *time.Duration:
		if s.Unit == time.Second {
			return "SECONDS"
		}
		return "DURATION"
	case *server.Bytes:
		return "BYTES"
	}
	return "STRING"
}

// example is a valid value, for error messages.
func (s *setting) example() string {
	if s.Example != "" {
		return s.Example
	}
	if p, ok := s.Value.(*bool); ok {
		if *p {
			return "no"
		}
		return "yes"
	}
	if v := s.String(); v != "" {
		return v
	}
	return "VALUE"
}

// parseBool reads Redis's yes/no, and true/false, 1/0, on/off, in any case.
func parseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "yes", "true", "1", "on":
		return true, nil
	case "no", "false", "0", "off":
		return false, nil
	}
	return false, errors.New("not a boolean")
}

// parseDuration reads a Go duration (300ms, 5m, 1h30m); a bare number
// counts in unit, and needs one when unit is 0 (except 0 itself).
func parseDuration(v string, unit time.Duration) (time.Duration, error) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		switch {
		case n == 0:
			return 0, nil
		case unit == 0:
			return 0, errors.New("needs a unit: ms, s, m or h")
		case n > int64(time.Duration(1<<63-1)/unit) || n < -int64(time.Duration(1<<63-1)/unit):
			return 0, errors.New("out of range")
		}
		return time.Duration(n) * unit, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		if unit == time.Second {
			return 0, errors.New("must be seconds or a duration with a unit (300, 5m)")
		}
		return 0, errors.New("must be a duration with a unit: ms, s, m or h")
	}
	return d, nil
}

// readConfigFile applies the config file at path: one setting per line,
// its name then its value, as in redis.conf (a value with spaces or a
// leading # in double or single quotes; # starts a comment). Settings
// given by a flag or a variable keep their value; a setting the file names
// twice takes the last. Errors name the file and the line.
func readConfigFile(path string, settings map[string]*setting, given map[string]bool) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	fromFile := map[string]bool{}
	for i, line := range strings.Split(string(b), "\n") {
		at := fmt.Sprintf("%s:%d", path, i+1)
		words, err := splitArgs(line)
		if err != nil {
			return fmt.Errorf("%s: %w", at, err)
		}
		if len(words) == 0 {
			continue
		}
		name := strings.ToLower(strings.TrimLeft(words[0], "-"))
		value := strings.Join(words[1:], " ")
		s, ok := settings[name]
		switch {
		case !ok:
			return fmt.Errorf("%s: unknown setting %q (sluice --help lists the settings)", at, words[0])
		case name == "config":
			return fmt.Errorf("%s: a config file cannot name another", at)
		case len(words) == 1 && s.isBool():
			value = "yes"
		case len(words) == 1:
			return fmt.Errorf("%s: %s needs a value (e.g. %s %s)", at, name, name, s.example())
		}
		if given[name] {
			continue // a flag or a variable beats the file
		}
		if err := s.Set(value); err != nil {
			var ve *valueError
			if errors.As(err, &ve) {
				return fmt.Errorf("%s: %s %q: %s (e.g. %s %s)", at, name, value, ve.reason, name, ve.example)
			}
			return fmt.Errorf("%s: %w", at, err)
		}
		fromFile[name] = true
	}
	for name := range fromFile {
		given[name] = true
	}
	return nil
}

// splitArgs splits a config file line into words as redis.conf does:
// separated by spaces or tabs, a word in double quotes (with Go's
// backslash escapes, \n, \", \x41...) or single quotes (taken as is) may
// hold spaces; an unquoted word starting with # begins a comment.
func splitArgs(line string) ([]string, error) {
	var words []string
	s := strings.TrimRight(line, "\r")
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" || s[0] == '#' {
			return words, nil
		}
		var word string
		switch s[0] {
		case '"':
			end := 1
			for end < len(s) && s[end] != '"' {
				if s[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(s) {
				return nil, errors.New("unbalanced double quotes")
			}
			w, err := strconv.Unquote(s[:end+1])
			if err != nil {
				return nil, fmt.Errorf("bad escape in %s", s[:end+1])
			}
			word, s = w, s[end+1:]
		case '\'':
			end := strings.IndexByte(s[1:], '\'')
			if end < 0 {
				return nil, errors.New("unbalanced single quotes")
			}
			word, s = s[1:end+1], s[end+2:]
		default:
			end := strings.IndexAny(s, " \t")
			if end < 0 {
				end = len(s)
			}
			word, s = s[:end], s[end:]
		}
		if s != "" && s[0] != ' ' && s[0] != '\t' {
			return nil, errors.New("a closing quote must be followed by a space")
		}
		words = append(words, word)
	}
}
