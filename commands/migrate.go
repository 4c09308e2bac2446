package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sluicehq/sluice/cluster"
	"github.com/sluicehq/sluice/keyspace"
	"github.com/sluicehq/sluice/replication"
	"github.com/sluicehq/sluice/resp"
)

// Slot migration, as Apache Kvrocks does it (CLUSTERX MIGRATE on the node
// that serves the slot): that node copies the slot's keys to the
// destination master while it keeps serving the slot, then refuses the
// slot's writes with -TRYAGAIN while the changes made meanwhile drain,
// then tells the destination to serve the slot and redirects it there
// (-MOVED) until a controller gives the slot to the destination in a new
// topology (CLUSTERX SETSLOT or SETNODES). See docs/cluster.md.

// Tuning of a migration.
const (
	// migrateBatch is the most record bytes one CLUSTERX APPLY carries.
	migrateBatch = 256 << 10
	// migrateTailRounds bounds the passes that ship the changes made
	// while the previous pass shipped, before writes are refused.
	migrateTailRounds = 8
	// migrateTailSmall is a tail short enough to ship with writes refused.
	migrateTailSmall = 64 << 10
	// migrateTailLimit fails a migration whose slot changes faster than it
	// ships them, rather than buffer without bound.
	migrateTailLimit = 64 << 20
	// migrateTimeout bounds each exchange with the destination.
	migrateTimeout = 30 * time.Second
	// migrateFinalTimeout bounds the step that refuses the slot's writes:
	// a destination that stops answering then fails the migration and the
	// slot's writes are served here again.
	migrateFinalTimeout = 5 * time.Second
)

// errTryAgain is Kvrocks's reply to a write of a slot whose last changes
// drain to the node it moves to; Redis Cluster clients retry it.
const errTryAgain = "TRYAGAIN Can't write to slot being migrated which is in write forbidden phase"

// SlotTail is a keyspace Journal that hands every change to the
// replication backlog and, while a slot migration runs, keeps the changes
// to the keys of the slot being migrated, in the replication stream's
// encoding: what changed after the copy began. Otherwise it costs one
// atomic load per change. It wraps the backlog rather than sitting beside
// it in a keyspace.Tee: a Tee's loop over two journals cost cluster mode
// ~1.5% of a pipelined THROTTLE (BenchmarkClusterModeOverhead), this one
// direct call. Give one to the keyspace in place of the backlog, and to
// Config.SlotTail, in cluster mode.
type SlotTail struct {
	next *replication.Backlog
	cur  atomic.Pointer[tailBuf]
}

// NewSlotTail returns an idle SlotTail in front of next.
func NewSlotTail(next *replication.Backlog) *SlotTail { return &SlotTail{next: next} }

// Record implements keyspace.Journal; it runs under the changed key's
// shard lock.
func (t *SlotTail) Record(c keyspace.Change) {
	t.next.Record(c)
	if b := t.cur.Load(); b != nil {
		b.record(c)
	}
}

// tailBuf is one migration's captured changes.
type tailBuf struct {
	slots  cluster.Range
	slotOf func([]byte) int
	mu     sync.Mutex
	recs   chunks
	err    error
}

// chunks are records in batches of about migrateBatch bytes, one CLUSTERX
// APPLY each.
type chunks [][]byte

func (cs *chunks) add(c keyspace.Change) {
	if n := len(*cs); n == 0 || len((*cs)[n-1]) >= migrateBatch {
		*cs = append(*cs, make([]byte, 0, migrateBatch+1024))
	}
	last := &(*cs)[len(*cs)-1]
	*last = replication.AppendRecord(*last, c)
}

func (cs chunks) size() int {
	n := 0
	for _, c := range cs {
		n += len(c)
	}
	return n
}

func (b *tailBuf) record(c keyspace.Change) {
	if c.Op != keyspace.Flush && !inRange(b.slots, b.slotOf(c.Key)) {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.err != nil:
	case c.Op == keyspace.Flush:
		b.err = errors.New("the keyspace was flushed (FLUSHALL) during the migration")
	case len(b.recs)*migrateBatch > migrateTailLimit:
		b.err = fmt.Errorf("the slot changed faster than it was shipped (more than %d bytes pending)", migrateTailLimit)
	default:
		b.recs.add(c)
	}
}

// take returns the records captured since the last take.
func (b *tailBuf) take() (chunks, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.recs
	b.recs = nil
	return r, b.err
}

// inRange reports whether slot is one of r's.
func inRange(r cluster.Range, slot int) bool { return r.First <= slot && slot <= r.Last }

// migration is one CLUSTERX MIGRATE, shown by CLUSTER INFO.
type migration struct {
	slots cluster.Range
	dst   *cluster.Node
	state atomic.Pointer[string] // "start", "success", "fail" (Kvrocks's words)
	done  chan struct{}
	err   error // after done
}

// migrations are this node's slot moves: the last migration from it and
// the last import into it, as CLUSTER INFO shows them.
type migrations struct {
	mu       sync.Mutex
	out      *migration
	inSlots  cluster.Range // the last slots imported
	inState  string        // "start", "success", "error" (Kvrocks's words); "" before any
	inTotals struct{ keys, bytes int }
	// migrations from this node by outcome, and the time the last
	// successful one refused the slot's writes
	migrated, failed uint64
	lastRefused      time.Duration
}

func (m *migration) setState(s string) { m.state.Store(&s) }

// clusterxMigrate serves CLUSTERX MIGRATE slot|first-last node-id
// [SYNC|ASYNC].
func clusterxMigrate(s *Server, c *resp.Conn, args [][]byte) {
	v := clusterView(s, c)
	if v == nil {
		return
	}
	slots, ok := parseSlotRange(string(args[2]))
	if !ok {
		c.WriteError(errInvalidSlot)
		return
	}
	wait := false
	if len(args) == 5 {
		switch strings.ToLower(string(args[4])) {
		case "sync":
			wait = true
		case "async":
		default:
			c.WriteError(errSyntax)
			return
		}
	} else if len(args) > 5 {
		c.WriteError(errSyntax)
		return
	}
	if s.tail == nil {
		c.WriteError("ERR slot migration is not available on this node")
		return
	}
	dst, err := v.CanMigrate(slots, string(args[3]))
	if err != nil {
		c.WriteError(errKvrocks(err))
		return
	}
	m := &migration{slots: slots, dst: dst, done: make(chan struct{})}
	m.setState("start")
	s.migrations.mu.Lock()
	if cur := s.migrations.out; cur != nil && *cur.state.Load() == "start" {
		s.migrations.mu.Unlock()
		c.WriteError(fmt.Sprintf("ERR There is already a migrating slot (%s)", cur.slots))
		return
	}
	s.migrations.out = m
	s.migrations.mu.Unlock()
	go s.migrate(m)
	if !wait {
		c.WriteSimple("OK")
		return
	}
	<-m.done
	if m.err != nil {
		c.WriteError(errCluster(fmt.Errorf("migrating slot %s failed: %w", slots, m.err)))
		return
	}
	c.WriteSimple("OK")
}

// parseSlot reads a slot number, 0..16383.
func parseSlot(b []byte) (int, bool) {
	n, err := parseInt(b)
	if err != nil || n < 0 || n >= cluster.Slots {
		return 0, false
	}
	return int(n), true
}

// errKvrocks words an error of package cluster as Kvrocks does: "ERR
// Can't migrate slot to myself".
func errKvrocks(err error) string {
	msg := err.Error()
	return "ERR " + strings.ToUpper(msg[:1]) + msg[1:]
}

// migrate runs m: copy, drain the tail, refuse writes while the last of it
// drains, hand the slot over. It logs the outcome and the time writes were
// refused.
func (s *Server) migrate(m *migration) {
	log := s.log.With("slots", m.slots.String(), "destination", m.dst.ID, "destination_addr", m.dst.Addr)
	log.Info("migrating slot")
	start := time.Now()
	keys, bytes, refused, err := s.migrateSlot(m)
	m.err = err
	s.migrations.mu.Lock()
	if err != nil {
		s.migrations.failed++
	} else {
		s.migrations.migrated++
		s.migrations.lastRefused = refused
	}
	s.migrations.mu.Unlock()
	if err != nil {
		m.setState("fail")
		log.Warn("migrating slot failed; the slot stays here", "err", err)
	} else {
		m.setState("success")
		log.Info("slot migrated: this node redirects it to the destination until the topology gives it there",
			"records", keys, "bytes", bytes, "writes_refused_for", refused, "took", time.Since(start))
	}
	close(m.done)
}

// migrateSlot does migrate's work: it returns the records and bytes
// shipped and how long the slot's writes were refused.
func (s *Server) migrateSlot(m *migration) (records, bytes int, refused time.Duration, err error) {
	opts := &redis.Options{
		Addr: m.dst.Addr, Username: s.cfg.MigrateUser, Password: s.cfg.MigratePassword, TLSConfig: s.cfg.MigrateTLS,
		Protocol: 2, MaxRetries: -1, PoolSize: 1, DisableIdentity: true, ContextTimeoutEnabled: true,
		DialTimeout: 5 * time.Second, ReadTimeout: migrateTimeout, WriteTimeout: migrateTimeout,
	}
	dst := redis.NewClient(opts)
	defer dst.Close()
	ctx := context.Background()
	slot := m.slots.String()
	send := func(ctx context.Context, recs chunks) error {
		for _, b := range recs {
			if err := dst.Do(ctx, "CLUSTERX", "APPLY", slot, b).Err(); err != nil {
				return fmt.Errorf("CLUSTERX APPLY on %s: %w", m.dst.Addr, err)
			}
			bytes += len(b)
		}
		return nil
	}
	if err := dst.Do(ctx, "CLUSTERX", "IMPORT", slot, 0).Err(); err != nil {
		return 0, 0, 0, fmt.Errorf("CLUSTERX IMPORT %s 0 on %s: %w", slot, m.dst.Addr, err)
	}
	imported := false
	defer func() {
		if !imported {
			_ = dst.Do(ctx, "CLUSTERX", "IMPORT", slot, 2).Err()
		}
	}()

	// The tail captures every change from here on; the copy may hold some
	// of them too: each carries its key's whole state, so applying it
	// again after the copy ends in the same state (as a replica's full
	// resync does).
	slotOf := s.storedKeySlot()
	tail := &tailBuf{slots: m.slots, slotOf: slotOf}
	if !s.tail.cur.CompareAndSwap(nil, tail) {
		return 0, 0, 0, errors.New("another migration is capturing changes")
	}
	defer s.tail.cur.Store(nil)
	var copied chunks
	s.keys.Range(func(c keyspace.Change) {
		if inRange(m.slots, slotOf(c.Key)) {
			copied.add(c)
			records++
		}
	})
	if err := send(ctx, copied); err != nil {
		return records, bytes, 0, err
	}
	for range migrateTailRounds {
		recs, err := tail.take()
		if err != nil {
			return records, bytes, 0, err
		}
		if err := send(ctx, recs); err != nil {
			return records, bytes, 0, err
		}
		if recs.size() < migrateTailSmall {
			break
		}
	}

	// The last of the tail, with the slot's writes refused: once no
	// command that routed before the refusal is still running, nothing
	// changes the slot here any more.
	forbidden := time.Now()
	if _, err := s.cluster.ForbidWrites(m.slots); err != nil {
		return records, bytes, 0, err
	}
	handed := false
	defer func() {
		if !handed {
			s.cluster.AllowWrites(m.slots)
		}
	}()
	s.AwaitWrites(0)
	final, cancel := context.WithTimeout(ctx, migrateFinalTimeout)
	defer cancel()
	recs, err := tail.take()
	if err == nil {
		err = send(final, recs)
	}
	if err == nil {
		err = dst.Do(final, "CLUSTERX", "IMPORT", slot, 1).Err()
		if err != nil {
			err = fmt.Errorf("CLUSTERX IMPORT %s 1 on %s: %w", slot, m.dst.Addr, err)
		}
	}
	if err != nil {
		return records, bytes, time.Since(forbidden), err
	}
	imported = true
	if _, err := s.cluster.Migrated(m.slots, m.dst); err != nil {
		return records, bytes, time.Since(forbidden), err
	}
	handed = true
	return records, bytes, time.Since(forbidden), nil
}

// clusterxImport serves CLUSTERX IMPORT slot|first-last 0|1|2 (Kvrocks's
// CLUSTER IMPORT: start, success, failure), which the migrating node sends
// here. Start keeps the keys of the slots from then on (after removing
// any it held); success serves them; failure forgets the import and its
// keys.
func clusterxImport(s *Server, c *resp.Conn, args [][]byte) {
	v := clusterView(s, c)
	if v == nil {
		return
	}
	slots, ok := parseSlotRange(string(args[2]))
	if !ok {
		c.WriteError(errInvalidSlot)
		return
	}
	state, err := parseInt(args[3])
	if err != nil || state < 0 || state > 2 {
		c.WriteError("ERR Invalid import state: want 0 (start), 1 (success) or 2 (failed)")
		return
	}
	log := s.log.With("slots", slots.String(), "client", sessionOf(c).addr)
	mg := &s.migrations
	switch state {
	case 0:
		if _, err := s.cluster.Importing(slots); err != nil {
			c.WriteError(errKvrocks(err))
			return
		}
		s.deleteSlotKeys(slots, nil)
		mg.mu.Lock()
		mg.inSlots, mg.inState, mg.inTotals = slots, "start", struct{ keys, bytes int }{}
		mg.mu.Unlock()
		log.Info("importing slot")
	default:
		_, cur, err := s.cluster.Imported(slots, state == 1)
		if err != nil {
			c.WriteError("ERR " + err.Error())
			return
		}
		mg.mu.Lock()
		mg.inState = map[int64]string{1: "success", 2: "error"}[state]
		totals := mg.inTotals
		mg.mu.Unlock()
		if state == 1 {
			log.Info("slot imported: this node serves it until a topology says otherwise",
				"records", totals.keys, "bytes", totals.bytes)
		} else {
			log.Warn("importing slot failed; dropping what was copied", "records", totals.keys)
			s.deleteSlotKeys(slots, cur.Holds) // not a slot a topology gave here meanwhile
		}
	}
	c.WriteSimple("OK")
}

// deleteSlotKeys removes every key of the slots of r now, but those of
// the slots keep reports (nil: none).
func (s *Server) deleteSlotKeys(r cluster.Range, keep func(slot int) bool) {
	slotOf, now := s.storedKeySlot(), s.clock.Now()
	drop := func(key []byte) bool {
		slot := slotOf(key)
		return inRange(r, slot) && (keep == nil || !keep(slot))
	}
	for i := range s.keys.Shards() {
		s.keys.DeleteIf(i, drop, now)
	}
}

// clusterxApply serves CLUSTERX APPLY slot records: the keys of the slot
// being imported, in the replication stream's record encoding. Every
// record is checked (its key in slot) before any is applied; applying
// journals them, so this node's disk and replicas receive them.
func clusterxApply(s *Server, c *resp.Conn, args [][]byte) {
	v := clusterView(s, c)
	if v == nil {
		return
	}
	slots, ok := parseSlotRange(string(args[2]))
	if !ok {
		c.WriteError(errInvalidSlot)
		return
	}
	for sl := slots.First; sl <= slots.Last; sl++ {
		if !v.Importing(sl) {
			c.WriteError(fmt.Sprintf("ERR slot %d is not being imported (CLUSTERX IMPORT %s 0 first)", sl, slots))
			return
		}
	}
	slotOf := s.storedKeySlot()
	n := 0
	err := replication.DecodeRecords(args[3], func(ch keyspace.Change) error {
		if !inRange(slots, slotOf(ch.Key)) {
			return fmt.Errorf("key %q is not in slot %s", truncate(ch.Key, 64), slots)
		}
		n++
		return nil
	})
	if err != nil {
		c.WriteError("ERR Invalid records: " + clean([]byte(err.Error())))
		return
	}
	now := s.clock.Now()
	err = replication.DecodeRecords(args[3], func(ch keyspace.Change) error { return s.keys.Apply(ch, now) })
	if err != nil {
		c.WriteError("ERR Invalid records: " + clean([]byte(err.Error())))
		return
	}
	s.migrations.mu.Lock()
	s.migrations.inTotals.keys += n
	s.migrations.inTotals.bytes += len(args[3])
	s.migrations.mu.Unlock()
	c.WriteInt(int64(n))
}

// clusterxSetSlot serves CLUSTERX SETSLOT slot NODE node-id version
// (Kvrocks's): the slot, or "first-last", goes to the master node-id in
// the topology at version, which must be the current version + 1.
func clusterxSetSlot(s *Server, c *resp.Conn, args [][]byte) {
	if clusterView(s, c) == nil {
		return
	}
	r, ok := parseSlotRange(string(args[2]))
	if !ok {
		c.WriteError(errInvalidSlot)
		return
	}
	if !strings.EqualFold(string(args[3]), "node") {
		c.WriteError("ERR Invalid setslot options: only NODE is supported")
		return
	}
	version, err := parseInt(args[5])
	if err != nil {
		c.WriteError(errNotInteger)
		return
	}
	old, cur, err := s.cluster.SetSlot(r, string(args[4]), version)
	switch {
	case errors.Is(err, cluster.ErrSlotVersion):
		c.WriteError(fmt.Sprintf("ERR Invalid cluster version: %d must be the current version %d + 1", version, s.cluster.View().Version()))
		return
	case errors.Is(err, cluster.ErrNoNode):
		c.WriteError("ERR Invalid node id: not in the topology")
		return
	case err != nil:
		c.WriteError(errCluster(err))
		return
	}
	s.topologyChanged(c, old, cur)
	c.WriteSimple("OK")
}

// parseSlotRange reads "n" or "first-last" within 0..16383.
func parseSlotRange(s string) (cluster.Range, bool) {
	a, b, isRange := strings.Cut(s, "-")
	first, ok := parseSlot([]byte(a))
	last := first
	if isRange {
		var ok2 bool
		last, ok2 = parseSlot([]byte(b))
		ok = ok && ok2 && first <= last
	}
	return cluster.Range{First: first, Last: last}, ok
}

// migrationInfo is CLUSTER INFO's part on slot moves, in Kvrocks's words
// (kvrocks-controller polls migrating_state).
func (s *Server) migrationInfo(b *strings.Builder) {
	mg := &s.migrations
	mg.mu.Lock()
	defer mg.mu.Unlock()
	if m := mg.out; m != nil {
		fmt.Fprintf(b, "migrating_slot: %s\r\ndestination_node: %s\r\nmigrating_state: %s\r\n", m.slots, m.dst.ID, *m.state.Load())
	}
	if mg.inState != "" {
		fmt.Fprintf(b, "importing_slot: %s\r\nimport_state: %s\r\n", mg.inSlots, mg.inState)
	}
}

// ClusterStats are the cluster counters metrics export.
type ClusterStats struct {
	Enabled bool
	// Version is the topology's version, -1 before the first; Served the
	// slots this node serves now.
	Version int64
	Served  int
	// Redirects by kind: -MOVED, -TRYAGAIN, -CROSSSLOT, -CLUSTERDOWN.
	Moved, TryAgain, CrossSlot, ClusterDown uint64
	KeysDropped                             uint64
	// Migrations from this node that succeeded and failed, and how long
	// the last successful one refused the slot's writes.
	Migrated, MigrateFailed uint64
	LastWritesRefused       time.Duration
}

// ClusterStats reads the cluster counters; with cluster mode off only
// Enabled (false) is set.
func (s *Server) ClusterStats() ClusterStats {
	if s.cluster == nil {
		return ClusterStats{Version: -1}
	}
	v := s.cluster.View()
	mg := &s.migrations
	mg.mu.Lock()
	defer mg.mu.Unlock()
	return ClusterStats{
		Enabled: true, Version: v.Version(), Served: v.ServedCount(),
		Moved: s.redirects.Load(), TryAgain: s.redirectsTryAgain.Load(), CrossSlot: s.redirectsCrossSlot.Load(),
		ClusterDown: s.redirectsDown.Load(), KeysDropped: s.slotDrop.dropped.Load(),
		Migrated: mg.migrated, MigrateFailed: mg.failed, LastWritesRefused: mg.lastRefused,
	}
}
