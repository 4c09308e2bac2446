package server

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/commands"
)

// A Setting is one field of a Config under the name the outside world
// knows it by: the flag --Name, the environment variable SLUICE_NAME
// (upper-cased, dashes as underscores), a config file's "Name value" line
// and CONFIG GET's Name.
type Setting struct {
	Name string
	// Section is where --help lists the setting: sluice, limits, security,
	// persistence, replication, cluster, policies or observability.
	Section string
	// Usage is the setting's line in --help.
	Usage string
	// Value points at the field: a *string, *int, *int64, *bool,
	// *time.Duration or *Bytes (a flag.Value). Its value when the flag is made is the flag's default.
	Value any
	// Example is a valid value that error messages show; empty means the
	// default is a good example.
	Example string
	// Unit, for a duration, is what a number without a unit counts (the
	// timeout counts seconds, as Redis's does); 0 means a unit is required.
	Unit time.Duration
}

// Settings lists every setting of c, bound to c's fields, in a fixed order.
func (c *Config) Settings() []Setting {
	var out []Setting
	for _, e := range c.table() {
		if e.value != nil {
			out = append(out, Setting{Name: e.name, Section: e.section, Usage: e.usage, Value: e.value, Example: e.example, Unit: e.unit})
		}
	}
	return out
}

// entry is one row of the settings table: a field, or a fixed answer of
// CONFIG GET that Redis clients expect.
type entry struct {
	name, section, usage string
	value                any           // the field; nil for a fixed answer
	show                 func() string // CONFIG GET's value; nil: the field's
	hidden               bool          // not listed by CONFIG GET and INFO
	example              string        // see Setting.Example
	unit                 time.Duration // see Setting.Unit
}

// table is the one list of settings: flags, CONFIG GET and INFO read it, in
// this order.
func (c *Config) table() []entry {
	fixed := func(v string) func() string { return func() string { return v } }
	return []entry{
		{name: "bind", section: "sluice", value: &c.Bind, usage: "addresses to listen on (space or comma separated)",
			show: func() string { return strings.Join(c.bindAddrs(), " ") }},
		{name: "port", section: "sluice", value: &c.Port, usage: "TCP port (0: no plaintext listener, TLS only)"},
		{name: "maxclients", section: "limits", value: &c.MaxClients, usage: "maximum simultaneous client connections"},
		{name: "maxclients-per-ip", section: "limits", value: &c.MaxClientsPerIP, usage: "maximum connections from one IP address (0: no cap)", example: "100"},
		{name: "preauth-max-args", section: "limits", value: &c.PreAuthMaxArgs, usage: "most arguments in one command before AUTH"},
		{name: "preauth-max-bulk-len", section: "limits", value: &c.PreAuthMaxBulk, usage: "largest bulk string before AUTH, bytes"},
		{name: "auth-timeout", section: "limits", value: &c.AuthTimeout,
			usage: "close connections not authenticated this long after connecting (when a password is set)"},
		{name: "proto-max-bulk-len", section: "limits", value: &c.MaxBulkLen, usage: "largest bulk string accepted in a request, bytes"},
		{name: "proto-max-args", section: "limits", value: &c.MaxArgs, usage: "most arguments in one command"},
		{name: "proto-max-inline-len", section: "limits", value: &c.MaxInlineLen, usage: "longest inline command, bytes"},
		{name: "client-query-buffer-limit", section: "limits", value: &c.MaxQueryBuffer, usage: "most unparsed request bytes buffered per connection"},
		{name: "client-reply-buffer", section: "limits", value: &c.MaxPendingReply, usage: "reply bytes buffered before a mid-pipeline flush"},
		{name: "write-timeout", section: "limits", value: &c.WriteTimeout,
			usage: "longest one flush of replies may block on a client that does not read"},
		{name: "timeout", section: "limits", value: &c.IdleTimeout, usage: "close connections idle this long, in seconds or with a unit (0: never)",
			example: "300", unit: time.Second,
			show: func() string { return strconv.FormatInt(int64(c.IdleTimeout/time.Second), 10) }}, // seconds, as Redis
		{name: "max-query-buffer-total", section: "limits", value: &c.MaxQueryBufferTotal,
			usage: "most bytes all connections' read buffers hold beyond 16 KiB each; a connection that would pass it is closed (100mb, 1gb...)"},
		{name: "maxmemory", section: "limits", value: &c.MaxMemory, example: "100mb",
			usage: "refuse commands that create state with -OOM while used memory (Go heap + off-heap tables) is over this (0: no bound; 100mb, 1gb...)"},
		{name: "maxmemory-policy", show: fixed("noeviction")},
		{name: "max-multi-limits", section: "limits", value: &c.MaxMultiLimits, usage: "most limits in one THROTTLE.MULTI or one policy"},
		{name: "max-leases-per-key", section: "limits", value: &c.MaxLeasesPerKey, usage: "largest max LEASE.ACQUIRE accepts (the most leases one key holds)"},
		{name: "shards", section: "sluice", value: &c.Shards, usage: "state table shards (rounded up to a power of two)"},
		{name: "sweep-interval", section: "sluice", value: &c.SweepInterval,
			usage: "how often expired keys are reclaimed (a tenth of each shard per pass)"},
		{name: "save", show: fixed("")},
		{name: "appendonly", show: fixed("no")},
		{name: "databases", show: fixed("1")},
		{name: "protected-mode", section: "security", value: &c.ProtectedMode, usage: "without a password, serve only loopback clients"},
		{name: "requirepass", section: "security", value: &c.RequirePass,
			usage: "password of the default user (prefer SLUICE_REQUIREPASS or --requirepass-file: flags show in ps)",
			show:  func() string { return redacted(c.RequirePass != "" || c.RequirePassFile != "") }},
		{name: "requirepass-file", section: "security", value: &c.RequirePassFile, usage: "file holding the default user password", hidden: true},
		{name: "aclfile", section: "security", value: &c.ACLFile, usage: `users file: one "user <name> <rules...>" per line, Redis ACL syntax`},
		{name: "tls-port", section: "security", value: &c.TLSPort, usage: "TLS port (0: no TLS listener)", example: "6380"},
		{name: "tls-cert-file", section: "security", value: &c.TLSCertFile, usage: "server certificate (PEM); reloaded on SIGHUP"},
		{name: "tls-key-file", section: "security", value: &c.TLSKeyFile, usage: "server private key (PEM); reloaded on SIGHUP", hidden: true},
		{name: "tls-ca-cert-file", section: "security", value: &c.TLSCACertFile,
			usage: "CA certificates that sign client certificates (PEM)", hidden: true},
		{name: "tls-auth-clients", section: "security", value: &c.TLSAuthClients, usage: "client certificates: no | optional | yes"},
		{name: "metrics-addr", section: "observability", value: &c.MetricsAddr, example: "127.0.0.1:9121",
			usage: "serve Prometheus /metrics, /healthz and /readyz over HTTP here (e.g. 127.0.0.1:9121; empty: off)"},
		{name: "pprof", section: "observability", value: &c.Pprof,
			usage: "also serve Go profiles on the metrics listener at /debug/pprof/ (needs --metrics-addr)", hidden: true},
		{name: "top-keys", section: "observability", value: &c.TopKeys,
			usage: "record decisions by key for THROTTLE.TOP and the status page (bounded memory, under 8 MB)"},
		{name: "slowlog-log-slower-than", section: "observability", value: &c.SlowlogLogSlowerThan,
			usage: "log commands that ran at least this many microseconds in the slow log, SLOWLOG GET (0: every command, -1: none)"},
		{name: "slowlog-max-len", section: "observability", value: &c.SlowlogMaxLen,
			usage: "entries the slow log keeps, the oldest dropped first (each at most 32 arguments of 128 bytes)"},
		{name: "status-page", section: "observability", value: &c.StatusPage,
			usage: "serve the status page at / on --metrics-addr: loopback clients only without a password, else HTTP Basic with a user's password"},
		{name: "data-dir", section: "persistence", value: &c.DataDir, example: "/var/lib/sluice",
			usage: "keep a durable copy of the state here (Pebble) and reload it at start (empty: in memory only)"},
		{name: "fsync", section: "persistence", value: &c.Fsync,
			usage: "with --data-dir, when changes reach the disk: always (before the reply) | everysec | no (the OS decides)"},
		{name: "fold-bytes", section: "persistence", value: &c.FoldBytes,
			usage: "with --data-dir, journalled bytes folded into the key space at once: larger writes a busy key fewer times but replays longer at start and takes more memory while folding"},
		{name: "replicaof", section: "replication", value: &c.ReplicaOf,
			usage: `follow the primary at "host port" from the start (REPLICAOF does it at run time; empty: a primary)`},
		{name: "masterauth", section: "replication", value: &c.MasterAuth,
			usage: "password to authenticate to the primary with (prefer SLUICE_MASTERAUTH: flags show in ps)",
			show:  func() string { return redacted(c.MasterAuth != "") }},
		{name: "masteruser", section: "replication", value: &c.MasterUser, usage: "ACL user to authenticate to the primary as (empty: default)"},
		{name: "replica-announce-ip", section: "replication", value: &c.ReplicaAnnounceIP, example: "203.0.113.7",
			usage: "the IP address this replica gives its primary for itself (INFO replication, ROLE, FAILOVER TO), when the one it connects from is not reachable (NAT, Docker); empty: that one"},
		{name: "replica-announce-port", section: "replication", value: &c.ReplicaAnnouncePort, example: "6380",
			usage: "the port this replica gives its primary for itself (0: the port it listens on)"},
		{name: "repl-backlog-size", section: "replication", value: &c.ReplBacklogSize,
			usage: "bytes of the replication stream kept for replicas to resume from after a disconnection"},
		{name: "repl-buffer-limit", section: "replication", value: &c.ReplBufferLimit,
			usage: "bytes of the stream a replica may fall behind before it is disconnected (it then resyncs)"},
		{name: "repl-timeout", section: "replication", value: &c.ReplTimeout,
			usage: "drop a replication link silent this long (both sides send every second)",
			show:  func() string { return strconv.FormatInt(int64(c.ReplTimeout/time.Second), 10) }}, // seconds, as Redis
		{name: "tls-replication", section: "replication", value: &c.TLSReplication,
			usage: "connect to the primary over TLS (--replicaof names its TLS port), verified with --tls-ca-cert-file; in cluster mode also slot moves and the etcd controller's offset queries"},
		{name: "min-replicas-to-write", section: "replication", value: &c.MinReplicasToWrite,
			usage: "refuse writes (NOREPLICAS) while fewer replicas acknowledged within --min-replicas-max-lag (0: never)"},
		{name: "min-replicas-max-lag", section: "replication", value: &c.MinReplicasMaxLag,
			usage: "how recent an acknowledgement must be for --min-replicas-to-write to count the replica",
			show:  func() string { return strconv.FormatInt(int64(c.MinReplicasMaxLag/time.Second), 10) }},
		{name: "min-replicas-ack", section: "replication", value: &c.MinReplicasAck,
			usage: "hold each reply that changed state until this many replicas acknowledged the change, as WAIT would (0: never); past --min-replicas-ack-timeout the reply is -NOREPLICAS"},
		{name: "min-replicas-ack-timeout", section: "replication", value: &c.MinReplicasAckTimeout, unit: time.Millisecond, example: "1000",
			usage: "how long a reply waits for --min-replicas-ack acknowledgements (a number counts milliseconds)",
			show:  func() string { return strconv.FormatInt(c.MinReplicasAckTimeout.Milliseconds(), 10) }},
		{name: "journal-load-truncated", section: "persistence", value: &c.JournalLoadTruncated,
			usage: "with --data-dir, a journal ending in a torn record (a crash during its last write): yes starts with the records before it (logged) | no refuses to start"},
		{name: "journal-accept-corruption", section: "persistence", value: &c.JournalAcceptCorruption,
			usage: "with --data-dir, a journal or Pebble log damaged before its end, or a journal file missing: no refuses to start, naming the file | yes starts with every readable record, logs the loss and keeps the file as <name>.corrupt"},
		{name: "policy-file", section: "policies", value: &c.PolicyFile, usage: "named policies (TOML) for POLICY.THROTTLE; reloaded on SIGHUP", hidden: true},
		{name: "cluster-enabled", section: "cluster", value: &c.ClusterEnabled,
			usage: "run as a Redis Cluster node: redirect keys of other nodes' slots (-MOVED); set the topology with CLUSTERX SETNODES"},
		{name: "cluster-node-id", section: "cluster", value: &c.ClusterNodeID,
			usage: "this node's id, 40 hex digits (empty: the one kept in --data-dir, else a random one; CLUSTERX SETNODEID changes it)"},
		{name: "cluster-announce-ip", section: "cluster", value: &c.ClusterAnnounceIP,
			usage: "the address this node gives for itself before a topology lists it (clients are sent to the topology's addresses)"},
		{name: "cluster-announce-port", section: "cluster", value: &c.ClusterAnnouncePort,
			usage: "the port this node gives for itself (0: the port it listens on)"},
		{name: "cluster-announce-hostname", section: "cluster", value: &c.ClusterAnnounceHostname,
			usage: "the host name CLUSTER SLOTS, SHARDS and NODES show for this node"},
		{name: "cluster-etcd", section: "cluster", value: &c.ClusterEtcd, example: "http://127.0.0.1:2379",
			usage: "etcd client URLs, comma separated: etcd drives the cluster (membership on leases, automatic failover, an elected controller; needs --cluster-enabled; empty: CLUSTERX SETNODES does)"},
		{name: "cluster-name", section: "cluster", value: &c.ClusterName, usage: "the cluster's name in etcd (its keys live under /sluice/<name>/)"},
		{name: "cluster-lease-ttl", section: "cluster", value: &c.ClusterLeaseTTL, example: "3s",
			usage: "with --cluster-etcd, a node not heard from for this long is failed over (whole seconds)"},
		{name: "cluster-primaries", section: "cluster", value: &c.ClusterPrimaries, usage: "with --cluster-etcd, how many masters share the slots"},
		{name: "cluster-replicas", section: "cluster", value: &c.ClusterReplicas, usage: "with --cluster-etcd, replicas wanted per master (more nodes still join as replicas)"},
		{name: "cluster-partition-policy", section: "cluster", value: &c.ClusterPartitionPolicy,
			usage: "with --cluster-etcd, a node cut off from etcd: serve (keep serving its slots until a newer topology) | fence (refuse them with -CLUSTERDOWN once its lease may have expired)"},
		{name: "enable-debug-command", section: "sluice", value: &c.EnableDebug, usage: "allow DEBUG (freezing the clock: for tests only)"},
	}
}

// shown is the effective configuration as CONFIG GET and INFO list it.
func (c Config) shown() []commands.Setting {
	var out []commands.Setting
	for _, e := range c.table() {
		if e.hidden {
			continue
		}
		v := ""
		if e.show != nil {
			v = e.show()
		} else {
			v = format(e.value)
		}
		out = append(out, commands.Setting{Name: e.name, Value: v})
	}
	return out
}

// format spells a field's value as CONFIG GET does.
func format(field any) string {
	switch v := field.(type) {
	case *string:
		return *v
	case *int:
		return strconv.Itoa(*v)
	case *int64:
		return strconv.FormatInt(*v, 10)
	case *bool:
		if *v {
			return "yes"
		}
		return "no"
	case *time.Duration:
		return v.String()
	case *Bytes:
		return strconv.FormatInt(int64(*v), 10) // bytes, as Redis shows them
	}
	panic(fmt.Sprintf("server: setting of unknown type %T", field))
}

func redacted(set bool) string {
	if set {
		return "<redacted>"
	}
	return ""
}
