package commands

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/sluicehq/sluice/cluster"
	"github.com/sluicehq/sluice/resp"
)

// clusterCommands declares CLUSTER (what Redis Cluster clients read),
// CLUSTERX (Apache Kvrocks's commands that set the topology), READONLY,
// READWRITE and ASKING. With cluster mode off every one of them answers
// that cluster support is disabled, as Redis does.
func clusterCommands() []*Command {
	info := FlagLoading | FlagStale
	admin := FlagAdmin | FlagNoScript | FlagLoading | FlagStale
	adminCats := []string{"@admin", "@slow", "@dangerous"}
	sub := func(name string, arity int, flags Flag, cats []string, summary, complexity string, args []Arg, h Handler) *Command {
		return &Command{Name: name, Arity: arity, Flags: flags, Categories: cats, Group: "cluster", Since: "0.3.0",
			Summary: summary, Complexity: complexity, Args: args, Handler: h}
	}
	slow := []string{"@slow"}
	slotArg := []Arg{{Name: "slot", Type: "integer"}}
	return []*Command{
		{Name: "cluster", Arity: -2, Group: "cluster", Since: "0.3.0", Categories: slow,
			Summary: "A container for Redis Cluster commands.", Complexity: "Depends on subcommand.", Subs: []*Command{
				sub("info", 2, info, slow, "Returns information about the state of the cluster.", "O(1)", nil, clusterInfo),
				sub("nodes", 2, info, slow, "Returns the cluster configuration, one node a line (Redis 7's format).",
					"O(N) where N is the total number of Cluster nodes", nil, clusterNodes),
				sub("slots", 2, info, slow, "Returns the mapping of cluster slots to nodes.",
					"O(N) where N is the total number of Cluster nodes", nil, clusterSlots),
				sub("shards", 2, info, slow, "Returns the mapping of cluster slots to shards.",
					"O(N) where N is the total number of cluster nodes", nil, clusterShards),
				sub("myid", 2, info, slow, "Returns the ID of this node.", "O(1)", nil, clusterMyID),
				sub("myshardid", 2, info, slow, "Returns the shard ID of this node: the ID of its shard's master.", "O(1)", nil, clusterMyShardID),
				sub("keyslot", 3, 0, slow, "Returns the hash slot of a key.", "O(N) where N is the number of bytes in the key",
					[]Arg{{Name: "key", Type: "string"}}, clusterKeySlot),
				sub("countkeysinslot", 3, 0, slow, "Returns the number of keys in a hash slot (scans every key).",
					"O(N) where N is the number of keys this node holds", slotArg, clusterCountKeysInSlot),
				sub("getkeysinslot", 4, 0, slow, "Returns up to count key names in a hash slot (scans every key).",
					"O(N) where N is the number of keys this node holds", append(slotArg, Arg{Name: "count", Type: "integer"}), clusterGetKeysInSlot),
				sub("help", 2, info, slow, "Returns helpful text about the different subcommands.", "O(1)", nil, clusterHelp),
			}},
		{Name: "clusterx", Arity: -2, Group: "cluster", Since: "0.3.0", Categories: slow,
			Summary: "A container for Apache Kvrocks's cluster commands: set this node's id and the topology.", Complexity: "Depends on subcommand.",
			Subs: []*Command{
				sub("setnodes", -4, admin, adminCats, "Sets the topology: one node a line, `<id> <host> <port> master|slave <master-id>|- <slots...>`, at a version.",
					"O(N) where N is the number of lines", []Arg{{Name: "nodes", Type: "string"}, {Name: "version", Type: "integer"},
						{Name: "force", Type: "pure-token", Token: "FORCE", Optional: true}}, clusterxSetNodes),
				sub("setnodeid", 3, admin, adminCats, "Sets this node's ID (40 hex digits).", "O(1)",
					[]Arg{{Name: "node-id", Type: "string"}}, clusterxSetNodeID),
				sub("version", 2, admin, adminCats, "Returns the topology's version, -1 before one is set.", "O(1)", nil, clusterxVersion),
				sub("myid", 2, admin, adminCats, "Returns the ID of this node.", "O(1)", nil, clusterMyID),
				sub("migrate", -4, admin, adminCats, "Copies the keys of a slot (or first-last) to another master, then redirects the slots there (CLUSTER INFO shows migrating_state).",
					"O(N) where N is the number of keys this node holds", []Arg{{Name: "slot-or-range", Type: "string"}, {Name: "node-id", Type: "string"},
						{Name: "mode", Type: "oneof", Optional: true, Args: []Arg{{Name: "sync", Type: "pure-token", Token: "SYNC"}, {Name: "async", Type: "pure-token", Token: "ASYNC"}}}}, clusterxMigrate),
				sub("setslot", 6, admin, adminCats, "Gives a slot (or first-last) to a master in the topology at the next version.", "O(1)",
					[]Arg{{Name: "slot-or-range", Type: "string"}, {Name: "node", Type: "pure-token", Token: "NODE"}, {Name: "node-id", Type: "string"}, {Name: "version", Type: "integer"}}, clusterxSetSlot),
				sub("import", 4, admin, adminCats, "Starts (0), ends (1) or abandons (2) importing a slot (or first-last): sent by the migrating node.", "O(N) where N is the number of keys this node holds",
					[]Arg{{Name: "slot-or-range", Type: "string"}, {Name: "state", Type: "integer"}}, clusterxImport),
				sub("apply", 4, admin, adminCats, "Applies records of slots being imported: sent by the migrating node.", "O(N) where N is the number of records",
					[]Arg{{Name: "slot-or-range", Type: "string"}, {Name: "records", Type: "string"}}, clusterxApply),
				sub("help", 2, info, slow, "Returns helpful text about the different subcommands.", "O(1)", nil, clusterxHelp),
			}},
		{Name: "readonly", Arity: 1, Flags: FlagFast | FlagLoading | FlagStale, Categories: []string{"@fast", "@connection"}, Group: "cluster", Since: "0.3.0",
			Summary: "Lets the connection read from a replica the keys of its master's slots.", Complexity: "O(1)", Handler: clusterReadonly},
		{Name: "readwrite", Arity: 1, Flags: FlagFast | FlagLoading | FlagStale, Categories: []string{"@fast", "@connection"}, Group: "cluster", Since: "0.3.0",
			Summary: "Ends READONLY on the connection.", Complexity: "O(1)", Handler: clusterReadwrite},
		{Name: "asking", Arity: 1, Flags: FlagFast, Categories: []string{"@fast", "@connection"}, Group: "cluster", Since: "0.3.0",
			Summary: "Accepted for clients that follow -ASK; Sluice never sends -ASK.", Complexity: "O(1)", Handler: clusterAsking},
	}
}

// clusterView is the current view, or nil (after writing the reply) when
// cluster mode is off.
func clusterView(s *Server, c *resp.Conn) *cluster.View {
	if s.cluster == nil {
		c.WriteError(errClusterDisabled)
		return nil
	}
	return s.cluster.View()
}

// mode is the server's mode as INFO and HELLO name it.
func (s *Server) mode() string {
	if s.cluster != nil {
		return "cluster"
	}
	return "standalone"
}

func clusterInfo(s *Server, c *resp.Conn, _ [][]byte) {
	v := clusterView(s, c)
	if v == nil {
		return
	}
	state, assigned, known, size, myEpoch := "fail", 0, 1, 0, int64(0)
	if t := v.Topology; t != nil {
		state, assigned, known, size = "ok", cluster.Slots, len(t.Nodes), t.Size()
		if v.Self == nil {
			known++ // this node, which the map does not list
		} else {
			myEpoch = t.Version
		}
	}
	var b strings.Builder
	for _, kv := range []struct {
		k string
		v any
	}{
		{"cluster_state", state}, {"cluster_slots_assigned", assigned}, {"cluster_slots_ok", assigned},
		{"cluster_slots_pfail", 0}, {"cluster_slots_fail", 0}, {"cluster_known_nodes", known}, {"cluster_size", size},
		{"cluster_current_epoch", max(v.Version(), 0)}, {"cluster_my_epoch", myEpoch},
		{"cluster_stats_messages_sent", 0}, {"cluster_stats_messages_received", 0},
		{"total_cluster_links_buffer_limit_exceeded", 0},
	} {
		fmt.Fprintf(&b, "%s:%v\r\n", kv.k, kv.v)
	}
	s.migrationInfo(&b)
	c.WriteVerbatim("txt", b.String())
}

// clusterInfoSection is INFO's "# Cluster": cluster_enabled (which
// redis-py's RedisCluster requires) and what an operator of a node wants.
func (s *Server) clusterInfoSection(kv func(string, any)) {
	kv("cluster_enabled", boolInt(s.cluster != nil))
	if s.cluster == nil {
		return
	}
	v := s.cluster.View()
	kv("cluster_topology_version", v.Version())
	kv("cluster_redirects", s.redirects.Load())
	kv("cluster_tryagain", s.redirectsTryAgain.Load())
	kv("cluster_crossslot", s.redirectsCrossSlot.Load())
	kv("cluster_keys_dropped", s.slotDrop.dropped.Load())
	kv("cluster_fenced", boolInt(s.fenced.Load()))
	if s.clusterKV != nil {
		s.clusterKV(kv)
	}
}

// busPort is the cluster bus port CLUSTER NODES shows, Redis's default
// (the client port + 10000) as Kvrocks shows it; Sluice has no bus.
func busPort(port int) int { return port + 10000 }

// hostname is the host name a node is known by: its host when that is a
// name rather than an IP address, this node's announced one, or "".
func (s *Server) hostname(v *cluster.View, n *cluster.Node) string {
	if net.ParseIP(n.Host) == nil {
		return n.Host
	}
	if n == v.Self {
		return s.cluster.Announced().Hostname
	}
	return ""
}

func clusterNodes(s *Server, c *resp.Conn, _ [][]byte) {
	v := clusterView(s, c)
	if v == nil {
		return
	}
	var b strings.Builder
	line := func(id, host string, port int, hostname, flags, master string, epoch int64, ranges []cluster.Range) {
		fmt.Fprintf(&b, "%s %s:%d@%d", id, host, port, busPort(port))
		if hostname != "" {
			b.WriteString("," + hostname)
		}
		fmt.Fprintf(&b, " %s %s 0 0 %d connected", flags, master, epoch)
		for _, r := range ranges {
			b.WriteString(" " + r.String())
		}
		b.WriteByte('\n')
	}
	if v.Self == nil { // not in the map (or no map): this node, as it announces itself
		a := s.cluster.Announced()
		line(v.ID, a.IP, a.Port, a.Hostname, "myself,master", "-", 0, nil)
	}
	if t := v.Topology; t != nil {
		for _, n := range t.Nodes {
			flags, master := n.Role.String(), "-"
			if n == v.Self {
				flags = "myself," + flags
			}
			if n.Role == cluster.Replica {
				master = n.MasterID
			}
			line(n.ID, n.Host, n.Port, s.hostname(v, n), flags, master, t.Version, n.Ranges)
		}
	}
	c.WriteVerbatim("txt", b.String())
}

// writeSlotNode writes one node of a CLUSTER SLOTS range: host, port, id
// and Redis 7's metadata map (the host name when one is known).
func (s *Server) writeSlotNode(c *resp.Conn, v *cluster.View, n *cluster.Node) {
	c.WriteArray(4)
	c.WriteBulkString(n.Host)
	c.WriteInt(int64(n.Port))
	c.WriteBulkString(n.ID)
	if h := s.hostname(v, n); h != "" {
		c.WriteMap(1)
		c.WriteBulkString("hostname")
		c.WriteBulkString(h)
	} else {
		c.WriteMap(0)
	}
}

func clusterSlots(s *Server, c *resp.Conn, _ [][]byte) {
	v := clusterView(s, c)
	if v == nil {
		return
	}
	t := v.Topology
	if t == nil {
		c.WriteArray(0)
		return
	}
	type run struct {
		r cluster.Range
		m *cluster.Node
	}
	var runs []run
	for _, n := range t.Nodes {
		for _, r := range n.Ranges {
			runs = append(runs, run{r, n})
		}
	}
	slices.SortFunc(runs, func(a, b run) int { return a.r.First - b.r.First })
	c.WriteArray(len(runs))
	for _, x := range runs {
		replicas := t.Replicas(x.m.ID)
		c.WriteArray(3 + len(replicas))
		c.WriteInt(int64(x.r.First))
		c.WriteInt(int64(x.r.Last))
		s.writeSlotNode(c, v, x.m)
		for _, r := range replicas {
			s.writeSlotNode(c, v, r)
		}
	}
}

func clusterShards(s *Server, c *resp.Conn, _ [][]byte) {
	v := clusterView(s, c)
	if v == nil {
		return
	}
	t := v.Topology
	if t == nil {
		c.WriteArray(0)
		return
	}
	var masters []*cluster.Node
	for _, n := range t.Nodes {
		if n.Role == cluster.Master {
			masters = append(masters, n)
		}
	}
	c.WriteArray(len(masters))
	for _, m := range masters {
		c.WriteMap(2)
		c.WriteBulkString("slots")
		c.WriteArray(2 * len(m.Ranges))
		for _, r := range m.Ranges {
			c.WriteInt(int64(r.First))
			c.WriteInt(int64(r.Last))
		}
		c.WriteBulkString("nodes")
		replicas := t.Replicas(m.ID)
		c.WriteArray(1 + len(replicas))
		for _, n := range append([]*cluster.Node{m}, replicas...) {
			h := s.hostname(v, n)
			c.WriteMap(7 + boolInt(h != ""))
			c.WriteBulkString("id")
			c.WriteBulkString(n.ID)
			c.WriteBulkString("port")
			c.WriteInt(int64(n.Port))
			c.WriteBulkString("ip")
			c.WriteBulkString(n.Host)
			c.WriteBulkString("endpoint")
			c.WriteBulkString(n.Host)
			if h != "" {
				c.WriteBulkString("hostname")
				c.WriteBulkString(h)
			}
			c.WriteBulkString("role")
			if n.Role == cluster.Replica {
				c.WriteBulkString("replica")
			} else {
				c.WriteBulkString("master")
			}
			c.WriteBulkString("replication-offset")
			c.WriteInt(0)
			c.WriteBulkString("health")
			c.WriteBulkString("online")
		}
	}
}

func clusterMyID(s *Server, c *resp.Conn, _ [][]byte) {
	if v := clusterView(s, c); v != nil {
		c.WriteBulkString(v.ID)
	}
}

// clusterMyShardID serves CLUSTER MYSHARDID: Sluice names a shard by its
// master's id (this node's own when the map does not list it).
func clusterMyShardID(s *Server, c *resp.Conn, _ [][]byte) {
	v := clusterView(s, c)
	if v == nil {
		return
	}
	if v.Self != nil && v.Self.Role == cluster.Replica {
		c.WriteBulkString(v.Self.MasterID)
		return
	}
	c.WriteBulkString(v.ID)
}

func clusterKeySlot(s *Server, c *resp.Conn, args [][]byte) {
	if clusterView(s, c) != nil {
		c.WriteInt(int64(cluster.Slot(args[2])))
	}
}

func clusterCountKeysInSlot(s *Server, c *resp.Conn, args [][]byte) {
	if clusterView(s, c) == nil {
		return
	}
	slot, err := parseInt(args[2])
	if err != nil {
		c.WriteError(errNotInteger)
		return
	}
	if slot < 0 || slot >= cluster.Slots {
		c.WriteError(errInvalidSlot)
		return
	}
	n, slotOf := 0, s.storedKeySlot()
	s.keys.EachKey(func(key []byte) {
		if slotOf(key) == int(slot) {
			n++
		}
	})
	c.WriteInt(int64(n))
}

func clusterGetKeysInSlot(s *Server, c *resp.Conn, args [][]byte) {
	if clusterView(s, c) == nil {
		return
	}
	count, err := parseInt(args[3])
	if err != nil {
		c.WriteError(errNotInteger)
		return
	}
	slot, err := parseInt(args[2])
	if err != nil {
		c.WriteError(errNotInteger)
		return
	}
	if count < 0 || slot < 0 || slot >= cluster.Slots {
		c.WriteError(errInvalidSlotOrCount)
		return
	}
	var keys []string
	slotOf := s.storedKeySlot()
	s.keys.EachKey(func(key []byte) {
		if int64(len(keys)) < count && slotOf(key) == int(slot) {
			keys = append(keys, string(key))
		}
	})
	slices.Sort(keys) // a stable answer; the keyspace's order is its hash's
	c.WriteArray(len(keys))
	for _, k := range keys {
		c.WriteBulkString(k)
	}
}

func clusterHelp(_ *Server, c *resp.Conn, _ [][]byte) {
	writeHelp(c, "CLUSTER", []string{
		"INFO", "    Return information about the cluster.",
		"NODES", "    Return the cluster configuration, one node a line.",
		"SLOTS", "    Return the mapping of slots to nodes.",
		"SHARDS", "    Return the mapping of slots to shards.",
		"MYID", "    Return this node's id.",
		"MYSHARDID", "    Return this node's shard id (its master's id).",
		"KEYSLOT <key>", "    Return the hash slot of <key>.",
		"COUNTKEYSINSLOT <slot>", "    Return the number of keys in <slot> (scans every key).",
		"GETKEYSINSLOT <slot> <count>", "    Return up to <count> keys in <slot> (scans every key).",
	})
}

func clusterxHelp(_ *Server, c *resp.Conn, _ [][]byte) {
	writeHelp(c, "CLUSTERX", []string{
		"SETNODES <nodes> <version> [FORCE]", "    Set the topology (Kvrocks's text: one `<id> <host> <port> master|slave <master-id>|- <slots...>` a line).",
		"SETNODEID <id>", "    Set this node's id (40 hex digits).",
		"VERSION", "    Return the topology's version (-1 before one is set).",
		"MYID", "    Return this node's id.",
		"MIGRATE <slot|first-last> <node-id> [SYNC|ASYNC]", "    Copy the slots' keys to master <node-id>, then redirect the slots there (CLUSTER INFO: migrating_state).",
		"SETSLOT <slot> NODE <node-id> <version>", "    Give <slot> (or first-last) to master <node-id> at <version>, the current version + 1.",
		"IMPORT <slot|first-last> 0|1|2", "    Start, end or abandon importing the slots (sent by the migrating node).",
		"APPLY <slot|first-last> <records>", "    Apply records of the slots being imported (sent by the migrating node).",
	})
}

// clusterxSetNodes serves CLUSTERX SETNODES nodes version [FORCE].
func clusterxSetNodes(s *Server, c *resp.Conn, args [][]byte) {
	if clusterView(s, c) == nil {
		return
	}
	version, err := parseInt(args[3])
	if err != nil {
		c.WriteError(errNotInteger)
		return
	}
	force := false
	switch {
	case len(args) == 5 && strings.EqualFold(string(args[4]), "force"):
		force = true
	case len(args) > 4:
		c.WriteError(errSyntax)
		return
	}
	if s.manager != "" && !force {
		c.WriteError(errClusterManaged(s.manager))
		return
	}
	old, cur, err := s.cluster.SetNodes(string(args[2]), version, force)
	switch {
	case errors.Is(err, cluster.ErrVersion):
		c.WriteError(errClusterVersion(version, s.cluster.View().Version()))
		return
	case err != nil:
		c.WriteError(errCluster(err))
		return
	}
	if old != cur {
		s.topologyChanged(c, old, cur)
	}
	c.WriteSimple("OK")
}

// clusterxSetNodeID serves CLUSTERX SETNODEID id.
func clusterxSetNodeID(s *Server, c *resp.Conn, args [][]byte) {
	if clusterView(s, c) == nil {
		return
	}
	if s.manager != "" {
		c.WriteError(errClusterIDManaged(s.manager))
		return
	}
	old, cur, err := s.cluster.SetNodeID(string(args[2]))
	switch {
	case errors.Is(err, cluster.ErrNodeID):
		c.WriteError(errClusterNodeID)
		return
	case err != nil:
		c.WriteError(errCluster(err))
		return
	}
	s.topologyChanged(c, old, cur)
	c.WriteSimple("OK")
}

func clusterxVersion(s *Server, c *resp.Conn, _ [][]byte) {
	if v := clusterView(s, c); v != nil {
		c.WriteInt(v.Version())
	}
}

// clusterReadonly serves READONLY: on a replica, the connection may read
// (commands flagged readonly) the keys of its master's slots.
func clusterReadonly(s *Server, c *resp.Conn, _ [][]byte) {
	if clusterView(s, c) != nil {
		sessionOf(c).readonly = true
		c.WriteSimple("OK")
	}
}

func clusterReadwrite(s *Server, c *resp.Conn, _ [][]byte) {
	if clusterView(s, c) != nil {
		sessionOf(c).readonly = false
		c.WriteSimple("OK")
	}
}

// clusterAsking serves ASKING. Sluice hands a slot over whole (its keys
// copied, then -MOVED) and never answers -ASK, so ASKING changes nothing;
// it is accepted for clients that send it.
func clusterAsking(s *Server, c *resp.Conn, _ [][]byte) {
	if clusterView(s, c) != nil {
		c.WriteSimple("OK")
	}
}
