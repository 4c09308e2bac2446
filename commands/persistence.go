package commands

import (
	"errors"
	"strings"

	"github.com/sluicehq/sluice/gcra"
	"github.com/sluicehq/sluice/resp"
)

// Persistence is the durable copy of the table as the handlers see it;
// cmd/sluice adapts package persistence's Store to it. The table journals
// every change to it by itself (it is the table's gcra.Journal); handlers
// only wait, before replying, when the durability mode promises replies
// that a crash cannot contradict.
type Persistence interface {
	gcra.Journal
	// Wait returns once every change recorded before the call is as durable
	// as the mode promises replies can rely on (fsync-always: synced; other
	// modes return at once), or the error that makes that impossible.
	Wait() error
	// Info lists the fields of INFO's persistence section.
	Info() []Setting
}

// durable makes the reply being written wait, with persistence on, until
// the changes made so far are as durable as the mode promises: it sets a
// barrier on the connection, so a pipeline's replies share one wait. If the
// changes cannot be made durable, the replies are replaced by an error and
// the connection closes. Without persistence it does nothing (inlined: the
// in-memory hot path pays one nil check).
func (s *Server) durable(c *resp.Conn) {
	if s.cfg.Persistence != nil {
		c.Barrier(s.waitDurable)
	}
}

// waitDurableFn is the barrier durable sets, bound once at NewServer.
func (s *Server) waitDurableFn() error {
	if err := s.cfg.Persistence.Wait(); err != nil {
		return errors.New("ERR decision not durable: " + strings.NewReplacer("\r", " ", "\n", " ").Replace(err.Error()))
	}
	return nil
}

// persistenceInfo fills INFO's persistence section.
func (s *Server) persistenceInfo(kv func(string, any)) {
	kv("loading", 0)
	if s.cfg.Persistence == nil {
		kv("persistence_enabled", 0)
		return
	}
	kv("persistence_enabled", 1)
	for _, f := range s.cfg.Persistence.Info() {
		kv(f.Name, f.Value)
	}
}
