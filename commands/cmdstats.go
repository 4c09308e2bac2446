package commands

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sluicehq/sluice/resp"
)

// Per-command statistics (INFO commandstats) and CONFIG RESETSTAT.
//
// Each Command counts its own calls, time, failures and refusals (run and
// ServeRESP, dispatch.go). The counters only grow: the metrics read them
// as Prometheus counters, which must never go backwards. CONFIG RESETSTAT
// therefore zeroes nothing; it records what the counters were (a
// baseline), and INFO shows each counter minus its baseline.

// cmdCounts are one command's counters at one moment.
type cmdCounts struct {
	calls, nanos, failed, rejected uint64
}

func (cmd *Command) counts() cmdCounts {
	return cmdCounts{calls: cmd.calls.Load(), nanos: cmd.nanos.Load(), failed: cmd.failed.Load(), rejected: cmd.rejected.Load()}
}

// since is c minus the baseline b, never below zero.
func (c cmdCounts) since(b cmdCounts) cmdCounts {
	return cmdCounts{calls: minus(c.calls, b.calls), nanos: minus(c.nanos, b.nanos), failed: minus(c.failed, b.failed), rejected: minus(c.rejected, b.rejected)}
}

// minus is a-b, or 0 when b is larger.
func minus(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

// statsBase is what the counters INFO shows were at the last CONFIG
// RESETSTAT: the counters Redis's RESETSTAT resets, those of INFO's stats
// section and of commandstats.
type statsBase struct {
	cmds              map[*Command]cmdCounts
	commandsProcessed uint64
	rejected          uint64
	oomRejected       uint64
	authFailures      uint64
	deniedCmd         uint64
	deniedKey         uint64
	allowed, limited  uint64
	expired           uint64
	net               resp.Stats
}

// resetStats serves CONFIG RESETSTAT: INFO's counters count from now.
func (s *Server) resetStats() {
	b := &statsBase{
		cmds:              map[*Command]cmdCounts{},
		commandsProcessed: s.commandsProcessed(),
		rejected:          s.rejected.Load(),
		oomRejected:       s.oomRejected.Load(),
		authFailures:      s.authFailures.Load(),
		deniedCmd:         s.deniedCmd.Load(),
		deniedKey:         s.deniedKey.Load(),
		expired:           s.keys.Stats().Reclaimed,
		net:               s.cfg.NetStats(),
	}
	decided, _ := s.decisions.stats()
	for _, d := range decided {
		b.allowed, b.limited = b.allowed+d.Allowed, b.limited+d.Limited
	}
	for _, cmd := range s.cmds.sorted {
		b.cmds[cmd] = cmd.counts()
		for _, sc := range cmd.Subs {
			b.cmds[sc] = sc.counts()
		}
	}
	s.statsBase.Store(b)
}

// base is the last RESETSTAT's baseline: zeros before the first.
func (s *Server) base() *statsBase {
	if b := s.statsBase.Load(); b != nil {
		return b
	}
	return &statsBase{}
}

// commandStatsInfo fills INFO's commandstats section: a line for every
// command and subcommand that ran or was refused since the start or the
// last CONFIG RESETSTAT, by name ("config|get" for a subcommand), in
// Redis's format. usec is the time in whole microseconds; usec_per_call
// is computed from nanoseconds, so commands faster than a microsecond do
// not show 0.00.
func (s *Server) commandStatsInfo(kv func(string, any)) {
	base := s.base()
	line := func(cmd *Command) {
		c := cmd.counts().since(base.cmds[cmd])
		if c.calls == 0 && c.failed == 0 && c.rejected == 0 {
			return
		}
		perCall := 0.0
		if c.calls > 0 {
			perCall = float64(c.nanos) / 1e3 / float64(c.calls)
		}
		kv("cmdstat_"+cmd.FullName(), fmt.Sprintf("calls=%d,usec=%d,usec_per_call=%.2f,rejected_calls=%d,failed_calls=%d",
			c.calls, c.nanos/1e3, perCall, c.rejected, c.failed))
	}
	for _, cmd := range s.cmds.sorted {
		line(cmd)
		subs := slices.Clone(cmd.Subs)
		slices.SortFunc(subs, func(a, b *Command) int { return strings.Compare(a.Name, b.Name) })
		for _, sc := range subs {
			line(sc)
		}
	}
}
