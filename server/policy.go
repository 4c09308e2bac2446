package server

import (
	"fmt"
	"log/slog"

	"github.com/sluicehq/sluice/commands"
	"github.com/sluicehq/sluice/policy"
)

// policyFile loads the named policies (--policy-file) into the command
// server at start and again on SIGHUP.
type policyFile struct {
	path      string
	maxLimits int // --max-multi-limits: the most limits of one policy
	srv       *commands.Server
	log       *slog.Logger
}

// loadPolicyFile loads path into srv; an empty path loads nothing. A file
// that does not load, or has a policy of more than maxLimits limits, stops
// the start-up.
func loadPolicyFile(path string, maxLimits int, srv *commands.Server, log *slog.Logger) (*policyFile, error) {
	pf := &policyFile{path: path, maxLimits: maxLimits, srv: srv, log: log}
	if path == "" {
		return pf, nil
	}
	set, err := pf.read()
	if err != nil {
		return nil, err
	}
	srv.SetPolicies(set)
	log.Info("policies loaded", slog.String("file", path), slog.Int("policies", set.Len()))
	return pf, nil
}

// reload reads the file again and swaps the new policies in. A file that
// does not load is rejected with a log line and the old policies stay.
// It reports whether there was a file to reload.
func (pf *policyFile) reload() bool {
	if pf.path == "" {
		return false
	}
	set, err := pf.read()
	if err != nil {
		pf.log.Error("SIGHUP: policy file rejected; keeping the old policies", slog.String("file", pf.path), slog.Any("err", err))
		return true
	}
	pf.srv.SetPolicies(set)
	pf.log.Info("SIGHUP: policies reloaded", slog.String("file", pf.path), slog.Int("policies", set.Len()))
	return true
}

// read loads the file and checks every policy against the limit bound.
func (pf *policyFile) read() (*policy.Set, error) {
	set, err := policy.Load(pf.path)
	if err != nil {
		return nil, err
	}
	if err := set.CheckLimits(pf.maxLimits); err != nil {
		return nil, fmt.Errorf("%s: %w (--max-multi-limits)", pf.path, err)
	}
	return set, nil
}
