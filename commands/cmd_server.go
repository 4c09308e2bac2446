package commands

import (
	"fmt"
	"math"
	"os"
	"path"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/resp"
)

// serverCommands declares the commands about the server: its command
// table, statistics, configuration, clock and test controls.
func serverCommands() []*Command {
	introspect := FlagLoading | FlagStale
	introspectCats := []string{"@slow", "@connection"}
	adminFlags := FlagAdmin | FlagNoScript | FlagLoading | FlagStale
	adminCats := []string{"@admin", "@slow", "@dangerous"}
	return []*Command{
		{Name: "command", Arity: -1, Flags: introspect, Categories: introspectCats, Group: "server", Since: "0.1.0",
			Summary: "Returns detailed information about all commands.", Complexity: "O(N) where N is the total number of commands", Handler: commandAll, Subs: []*Command{
				{Name: "count", Arity: 2, Flags: introspect, Categories: introspectCats, Group: "server", Since: "0.1.0",
					Summary: "Returns a count of commands.", Complexity: "O(1)", Handler: commandCount},
				{Name: "list", Arity: 2, Flags: introspect, Categories: introspectCats, Group: "server", Since: "0.1.0",
					Summary: "Returns a list of command names.", Complexity: "O(N) where N is the total number of commands", Handler: commandList},
				{Name: "info", Arity: -2, Flags: introspect, Categories: introspectCats, Group: "server", Since: "0.1.0",
					Summary: "Returns information about one, multiple or all commands.", Complexity: "O(N) where N is the number of commands to look up",
					Args: []Arg{{Name: "command-name", Type: "string", Optional: true, Multiple: true}}, Handler: commandInfo},
				{Name: "docs", Arity: -2, Flags: introspect, Categories: introspectCats, Group: "server", Since: "0.1.0",
					Summary: "Returns documentary information about one, multiple or all commands.", Complexity: "O(N) where N is the number of commands to look up",
					Args: []Arg{{Name: "command-name", Type: "string", Optional: true, Multiple: true}}, Handler: commandDocs},
				{Name: "getkeys", Arity: -3, Flags: introspect, Categories: introspectCats, Group: "server", Since: "0.1.0",
					Summary: "Extracts the key names from an arbitrary command.", Complexity: "O(N) where N is the number of arguments to the command",
					Args: []Arg{{Name: "command", Type: "string"}, {Name: "arg", Type: "string", Optional: true, Multiple: true}}, Handler: commandGetKeys},
				{Name: "help", Arity: 2, Flags: introspect, Categories: introspectCats, Group: "server", Since: "0.1.0",
					Summary: "Returns helpful text about the different subcommands.", Complexity: "O(1)", Handler: commandHelp},
			}},
		{Name: "info", Arity: -1, Flags: FlagLoading | FlagStale, Categories: []string{"@slow", "@dangerous"}, Group: "server", Since: "0.1.0",
			Summary: "Returns information and statistics about the server.", Complexity: "O(1)", Args: []Arg{{Name: "section", Type: "string", Optional: true, Multiple: true}}, Handler: info},
		{Name: "time", Arity: 1, Flags: FlagLoading | FlagStale | FlagFast, Categories: []string{"@fast"}, Group: "server", Since: "0.1.0",
			Summary: "Returns the server clock (the one THROTTLE uses) as seconds and microseconds.", Complexity: "O(1)", Handler: timeCmd},
		{Name: "config", Arity: -2, Group: "server", Since: "0.1.0", Summary: "A container for server configuration commands.", Complexity: "Depends on subcommand.",
			Categories: []string{"@slow"}, Subs: []*Command{
				{Name: "get", Arity: -3, Flags: adminFlags, Categories: adminCats, Group: "server", Since: "0.1.0",
					Summary: "Returns the effective values of configuration parameters.", Complexity: "O(N) when N is the number of configuration parameters provided",
					Args: []Arg{{Name: "parameter", Type: "string", Multiple: true}}, Handler: configGet},
				{Name: "resetstat", Arity: 2, Flags: adminFlags, Categories: adminCats, Group: "server", Since: "0.1.0",
					Summary: "Resets the server's statistics (INFO stats and commandstats; not the slow log, not the metrics).", Complexity: "O(1)", Handler: configResetStat},
				{Name: "help", Arity: 2, Flags: FlagLoading | FlagStale, Categories: []string{"@slow"}, Group: "server", Since: "0.1.0",
					Summary: "Returns helpful text about the different subcommands.", Complexity: "O(1)", Handler: configHelp},
			}},
		{Name: "slowlog", Arity: -2, Group: "server", Since: "0.1.0", Summary: "A container for slow log commands.", Complexity: "Depends on subcommand.",
			Categories: []string{"@slow"}, Subs: []*Command{
				{Name: "get", Arity: -2, Flags: adminFlags, Categories: adminCats, Group: "server", Since: "0.1.0",
					Summary: "Returns the slow log's entries.", Complexity: "O(N) where N is the number of entries returned",
					Args: []Arg{{Name: "count", Type: "integer", Optional: true}}, Handler: slowlogGet},
				{Name: "len", Arity: 2, Flags: adminFlags, Categories: adminCats, Group: "server", Since: "0.1.0",
					Summary: "Returns the number of entries in the slow log.", Complexity: "O(1)", Handler: slowlogLen},
				{Name: "reset", Arity: 2, Flags: adminFlags, Categories: adminCats, Group: "server", Since: "0.1.0",
					Summary: "Clears all entries from the slow log.", Complexity: "O(N) where N is the number of entries in the slowlog", Handler: slowlogReset},
				{Name: "help", Arity: 2, Flags: FlagLoading | FlagStale, Categories: []string{"@slow"}, Group: "server", Since: "0.1.0",
					Summary: "Returns helpful text about the different subcommands.", Complexity: "O(1)", Handler: slowlogHelp},
			}},
		{Name: "debug", Arity: -2, Flags: adminFlags, Categories: adminCats, Group: "server", Since: "0.1.0",
			Summary:    "Test controls, refused unless the server runs with --enable-debug-command: CLOCK SET <unix-ns> | CLOCK REAL | CLOCK GET | SWEEP | DIGEST | HOLD-WRITES ON|OFF|COUNT.",
			Complexity: "Depends on subcommand.",
			Args:       []Arg{{Name: "subcommand", Type: "string"}, {Name: "arg", Type: "string", Optional: true, Multiple: true}}, Handler: debug},
	}
}

func commandAll(s *Server, c *resp.Conn, args [][]byte) {
	if len(args) > 1 { // COMMAND with an unknown subcommand
		c.WriteError(errUnknownSubcommand(args[1], "command"))
		return
	}
	c.WriteArray(len(s.cmds.sorted))
	for _, cmd := range s.cmds.sorted {
		writeInfo(c, cmd)
	}
}

func commandCount(s *Server, c *resp.Conn, _ [][]byte) { c.WriteInt(int64(len(s.cmds.sorted))) }

func commandList(s *Server, c *resp.Conn, _ [][]byte) {
	c.WriteArray(len(s.cmds.sorted))
	for _, cmd := range s.cmds.sorted {
		c.WriteBulkString(cmd.Name)
	}
}

func commandInfo(s *Server, c *resp.Conn, args [][]byte) {
	if len(args) == 2 {
		commandAll(s, c, args[:1])
		return
	}
	c.WriteArray(len(args) - 2)
	var scratch [maxNameLen]byte
	for _, name := range args[2:] {
		if cmd := s.cmds.lookup(name, &scratch); cmd != nil {
			writeInfo(c, cmd)
		} else {
			c.WriteNullArray()
		}
	}
}

func commandDocs(s *Server, c *resp.Conn, args [][]byte) {
	var cmds []*Command
	if len(args) == 2 {
		cmds = s.cmds.sorted
	} else {
		var scratch [maxNameLen]byte
		for _, name := range args[2:] {
			if cmd := s.cmds.lookup(name, &scratch); cmd != nil {
				cmds = append(cmds, cmd)
			}
		}
	}
	c.WriteMap(len(cmds))
	for _, cmd := range cmds {
		c.WriteBulkString(cmd.Name)
		writeDocs(c, cmd)
	}
}

// commandGetKeys serves COMMAND GETKEYS command [arg ...] from the key
// positions of the command's declaration.
func commandGetKeys(s *Server, c *resp.Conn, args [][]byte) {
	var scratch [maxNameLen]byte
	cmd := s.cmds.lookup(args[2], &scratch)
	call := args[2:]
	if cmd == nil {
		c.WriteError(errGetKeysCommand)
		return
	}
	if !cmd.arityOK(len(call)) {
		c.WriteError(errGetKeysArity)
		return
	}
	pos := cmd.Keys(len(call))
	if len(pos) == 0 {
		c.WriteError(errGetKeysNone)
		return
	}
	c.WriteArray(len(pos))
	for _, p := range pos {
		c.WriteBulk(call[p])
	}
}

func commandHelp(_ *Server, c *resp.Conn, _ [][]byte) {
	writeHelp(c, "COMMAND", []string{
		"(no subcommand)", "    Return details about all commands.",
		"COUNT", "    Return the total number of commands in this server.",
		"LIST", "    Return a list of all commands in this server.",
		"INFO [<command-name> ...]", "    Return details about the given commands, or all of them.",
		"DOCS [<command-name> ...]", "    Return documentation details about the given commands, or all of them.",
		"GETKEYS <full-command>", "    Return the keys from a full command.",
	})
}

func timeCmd(s *Server, c *resp.Conn, _ [][]byte) {
	now := s.now(c)
	c.WriteArray(2)
	c.WriteBulkString(strconv.FormatInt(now/1e9, 10))
	c.WriteBulkString(strconv.FormatInt(now%1e9/1e3, 10))
}

// info serves INFO [section ...]; sections are server, clients, memory,
// persistence, replication, stats, decisionstats, commandstats, config,
// cluster, keyspace. No section, or "default", shows all but
// commandstats; "all" and "everything" show them all, as in Redis.
func info(s *Server, c *resp.Conn, args [][]byte) {
	want := map[string]bool{}
	for _, a := range args[1:] {
		want[strings.ToLower(string(a))] = true
	}
	all := want["all"] || want["everything"]
	def := all || len(want) == 0 || want["default"]
	var b strings.Builder
	section := func(name string, fill func(kv func(k string, v any))) {
		if !def && !want[name] || name == "commandstats" && !all && !want[name] {
			return
		}
		if b.Len() > 0 {
			b.WriteString("\r\n")
		}
		fmt.Fprintf(&b, "# %s\r\n", strings.ToUpper(name[:1])+name[1:])
		fill(func(k string, v any) { fmt.Fprintf(&b, "%s:%v\r\n", k, v) })
	}
	net := s.cfg.NetStats()
	st := s.keys.Stats()
	decided, policies := s.decisions.stats()
	var allowed, limited uint64 // every decision, whatever the command
	for _, d := range decided {
		allowed, limited = allowed+d.Allowed, limited+d.Limited
	}
	base := s.base() // the counters at the last CONFIG RESETSTAT
	section("server", func(kv func(string, any)) {
		kv("redis_version", redisVersion)
		kv("sluice_version", Version)
		kv("redis_mode", s.mode())
		kv("os", runtime.GOOS+" "+runtime.GOARCH)
		kv("arch_bits", strconv.IntSize)
		kv("go_version", runtime.Version())
		kv("process_id", os.Getpid())
		kv("gomaxprocs", runtime.GOMAXPROCS(0))
		kv("uptime_in_seconds", int64(time.Since(s.started)/time.Second))
		kv("uptime_in_days", int64(time.Since(s.started)/(24*time.Hour)))
		kv("clock_frozen", boolInt(s.clock.Frozen()))
		kv("clock_unix_ns", s.clock.Now())
	})
	section("clients", func(kv func(string, any)) {
		kv("connected_clients", net.Connected)
		kv("rejected_connections", minus(net.Rejected, base.net.Rejected))
		kv("query_buffer_bytes", net.QueryBufferBytes)
	})
	section("memory", func(kv func(string, any)) {
		m := s.Memory()
		kv("used_memory", m.Used)
		kv("used_memory_human", human(uint64(m.Used)))
		kv("used_memory_heap", m.Heap)
		kv("used_memory_offheap", m.OffHeap)
		kv("used_memory_go_total", m.GoTotal)
		kv("maxmemory", m.Max)
		kv("maxmemory_human", human(uint64(m.Max)))
		kv("maxmemory_policy", "noeviction")
		kv("table_slots", st.Slots)
		kv("table_key_bytes", st.ArenaBytes)
	})
	section("persistence", s.persistenceInfo)
	section("replication", s.replicationInfo)
	section("stats", func(kv func(string, any)) {
		kv("total_connections_received", minus(net.TotalConnections, base.net.TotalConnections))
		kv("total_commands_processed", minus(s.commandsProcessed(), base.commandsProcessed))
		kv("rejected_calls", minus(s.rejected.Load(), base.rejected))
		kv("rejected_calls_oom", minus(s.oomRejected.Load(), base.oomRejected))
		kv("total_net_input_bytes", minus(net.BytesIn, base.net.BytesIn))
		kv("total_net_output_bytes", minus(net.BytesOut, base.net.BytesOut))
		kv("protocol_errors", minus(net.ProtocolErrors, base.net.ProtocolErrors))
		kv("evicted_clients", minus(net.EvictedClients, base.net.EvictedClients))
		kv("panics_recovered", minus(net.PanicsRecovered, base.net.PanicsRecovered))
		kv("acl_access_denied_auth", minus(s.authFailures.Load(), base.authFailures))
		kv("acl_access_denied_cmd", minus(s.deniedCmd.Load(), base.deniedCmd))
		kv("acl_access_denied_key", minus(s.deniedKey.Load(), base.deniedKey))
		kv("throttle_allowed", minus(allowed, base.allowed))
		kv("throttle_limited", minus(limited, base.limited))
		kv("expired_keys", minus(st.Reclaimed, base.expired))
	})
	section("decisionstats", func(kv func(string, any)) {
		for _, d := range decided {
			kv("decisions_"+d.Command+"_"+d.Algorithm, fmt.Sprintf("allowed=%d,limited=%d", d.Allowed, d.Limited))
		}
		for _, d := range policies {
			kv("policy_"+d.Policy, fmt.Sprintf("algorithm=%s,allowed=%d,limited=%d", d.Algorithm, d.Allowed, d.Limited))
		}
	})
	section("commandstats", s.commandStatsInfo)
	if len(s.cfg.Settings) > 0 {
		section("config", func(kv func(string, any)) {
			for _, set := range s.cfg.Settings {
				kv(set.Name, set.Value)
			}
		})
	}
	section("cluster", s.clusterInfoSection)
	section("keyspace", func(kv func(string, any)) {
		if st.Keys > 0 {
			kv("db0", fmt.Sprintf("keys=%d,expires=%d,avg_ttl=0", st.Keys, st.Keys))
		}
	})
	c.WriteVerbatim("txt", b.String())
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func human(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2fG", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2fM", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.2fK", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}

// configGet serves CONFIG GET pattern [pattern ...] over the effective
// settings (read-only: Sluice is configured at start-up).
func configGet(s *Server, c *resp.Conn, args [][]byte) {
	var out []Setting
	for _, set := range s.cfg.Settings {
		for _, p := range args[2:] {
			if ok, _ := path.Match(strings.ToLower(string(p)), set.Name); ok {
				out = append(out, set)
				break
			}
		}
	}
	c.WriteMap(len(out))
	for _, set := range out {
		c.WriteBulkString(set.Name)
		c.WriteBulkString(set.Value)
	}
}

func configHelp(_ *Server, c *resp.Conn, _ [][]byte) {
	writeHelp(c, "CONFIG", []string{
		"GET <pattern>", "    Return parameters matching the glob-like <pattern> and their values.",
		"RESETSTAT", "    Reset statistics reported by the INFO command.",
	})
}

// configResetStat serves CONFIG RESETSTAT: INFO's stats section and
// commandstats count from zero again. The slow log is kept, as in Redis,
// and the metrics never go backwards (see cmdstats.go).
func configResetStat(s *Server, c *resp.Conn, _ [][]byte) {
	s.resetStats()
	s.log.Info("statistics reset by CONFIG RESETSTAT", "client", sessionOf(c).addr)
	c.WriteSimple("OK")
}

// debug serves DEBUG, refused unless the server was started with
// --enable-debug-command.
func debug(s *Server, c *resp.Conn, args [][]byte) {
	if !s.cfg.EnableDebug {
		c.WriteError(errDebugDisabled)
		return
	}
	sub := strings.ToUpper(string(args[1]))
	switch {
	case sub == "CLOCK" && len(args) == 4 && strings.EqualFold(string(args[2]), "SET"):
		ns, err := parseInt(args[3])
		if err != nil || ns < 0 {
			c.WriteError(errNotInteger)
			return
		}
		s.clock.Set(ns)
		s.log.Warn("server clock frozen by DEBUG CLOCK SET", "unix_ns", ns, "client", sessionOf(c).addr)
		c.WriteSimple("OK")
	case sub == "CLOCK" && len(args) == 3 && strings.EqualFold(string(args[2]), "REAL"):
		s.clock.Release()
		s.log.Warn("server clock released by DEBUG CLOCK REAL", "client", sessionOf(c).addr)
		c.WriteSimple("OK")
	case sub == "CLOCK" && len(args) == 3 && strings.EqualFold(string(args[2]), "GET"):
		c.WriteInt(s.clock.Now())
	case sub == "DIGEST" && len(args) == 2:
		c.WriteBulkString(s.digest())
	case sub == "SWEEP" && len(args) == 2:
		// One full pass: the keyspace's sweep examines each shard's
		// slots at most once over, whatever the budget. In cluster
		// mode the keys of slots this node lost go first.
		s.finishDrops()
		c.WriteInt(int64(s.keys.Sweep(s.clock.Now(), math.MaxInt)))
	case sub == "HOLD-WRITES" && len(args) == 3:
		switch strings.ToUpper(string(args[2])) {
		case "ON":
			s.heldWrites.on()
			s.log.Warn("DEBUG HOLD-WRITES ON: state-changing commands wait after their gate", "client", sessionOf(c).addr)
			c.WriteSimple("OK")
		case "OFF":
			s.heldWrites.off()
			c.WriteSimple("OK")
		case "COUNT":
			c.WriteInt(s.heldWrites.count())
		default:
			c.WriteError(errSyntax)
		}
	case sub == "HELP" && len(args) == 2:
		writeHelp(c, "DEBUG", []string{
			"CLOCK SET <unix-nanoseconds>", "    Freeze the server clock at that instant.",
			"CLOCK REAL", "    Follow the real clock again.",
			"CLOCK GET", "    Return the server clock in Unix nanoseconds.",
			"SWEEP", "    Reclaim every expired key now; return how many. In cluster mode, first finish dropping the keys of lost slots.",
			"DIGEST", "    Return a digest of the state that still matters now (equal on a primary and an up-to-date replica).",
			"HOLD-WRITES ON|OFF|COUNT", "    ON: every state-changing command that passed the write gate waits there, in flight, until OFF; COUNT: how many wait now.",
		})
	default:
		c.WriteError(errDebugSubcommand(args[1]))
	}
}

// writeHold is DEBUG HOLD-WRITES: while on, every state-changing command
// that passed its gate waits there, marked as writing, until it is off; a
// test holds a write in flight that way (the moment a scheduler could
// preempt it) and sees what a role change does meanwhile.
type writeHold struct {
	release atomic.Pointer[chan struct{}] // nil: off
	held    atomic.Int64
}

// hold waits while the hold is on: one atomic load when it is off.
func (h *writeHold) hold() {
	ch := h.release.Load()
	if ch == nil {
		return
	}
	h.held.Add(1)
	<-*ch
	h.held.Add(-1)
}

func (h *writeHold) on() {
	ch := make(chan struct{})
	h.release.CompareAndSwap(nil, &ch)
}

func (h *writeHold) off() {
	if ch := h.release.Swap(nil); ch != nil {
		close(*ch)
	}
}

func (h *writeHold) count() int64 { return h.held.Load() }
