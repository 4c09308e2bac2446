package server

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/cluster"
	"github.com/sluicehq/sluice/commands"
	"github.com/sluicehq/sluice/persistence"
	"github.com/sluicehq/sluice/replication"
	"github.com/sluicehq/sluice/resp"
)

// Config is every setting of a server. Start from [Default], which holds
// the one definition of each default (each field's comment repeats it, and
// a test keeps the two in step); the zero Config does not validate.
// [Config.Settings] names each field as flags, SLUICE_* variables, config
// files and CONFIG GET know it.
type Config struct {
	// Bind lists the addresses to listen on, separated by spaces or
	// commas. Default "127.0.0.1".
	Bind string
	// Port is the TCP port of the plaintext listeners; 0 means none (a
	// TLS-only server, as Redis's port 0). Default 6379.
	Port int
	// ListenAddr, when set, replaces Bind and Port: one plaintext listener
	// opens at this host:port, whose port may be 0 for a free one (see
	// [Server.Addr]). It is for tests and programs that embed a server;
	// no flag, variable or config file line sets it. Default "".
	ListenAddr string
	// Shards is the number of state table shards, rounded up to a power
	// of two. Default 256.
	Shards int
	// SweepInterval is how often the expiry sweep reclaims expired keys (a
	// tenth of each shard per pass). Default 100ms.
	SweepInterval time.Duration
	// EnableDebug allows DEBUG, which freezes the clock: for tests only.
	// Default false.
	EnableDebug bool

	// MaxClients is the most simultaneous client connections. Default 10000.
	MaxClients int
	// MaxClientsPerIP is the most connections from one IP address; 0 means
	// no cap. Default 0.
	MaxClientsPerIP int
	// PreAuthMaxArgs is the most arguments of one command before AUTH.
	// Default 10.
	PreAuthMaxArgs int
	// PreAuthMaxBulk is the largest bulk string before AUTH, in bytes.
	// Default 16384.
	PreAuthMaxBulk int64
	// AuthTimeout closes connections that have not authenticated this long
	// after connecting (when a password is set). Default 10s.
	AuthTimeout time.Duration
	// MaxBulkLen is the largest bulk string in a request, in bytes.
	// Default 1048576.
	MaxBulkLen int64
	// MaxArgs is the most arguments of one command. Default 65536.
	MaxArgs int
	// MaxInlineLen is the longest inline command, in bytes. Default 65536.
	MaxInlineLen int
	// MaxQueryBuffer is the most unparsed request bytes buffered per
	// connection; it must exceed MaxBulkLen. Default 33554432.
	MaxQueryBuffer int
	// MaxPendingReply is how many reply bytes are buffered before a flush
	// in the middle of a pipeline. Default 1048576.
	MaxPendingReply int
	// WriteTimeout is the longest one flush of replies may block on a
	// client that does not read; the client is then closed. Default 10s.
	WriteTimeout time.Duration
	// IdleTimeout closes connections idle this long; 0 means never.
	// Default 0s.
	IdleTimeout time.Duration
	// MaxQueryBufferTotal is the most bytes the read buffers of all
	// connections hold together beyond the first 16 KiB of each; a
	// connection whose partial command would pass it is closed. At least
	// MaxQueryBuffer. Default 256mb.
	MaxQueryBufferTotal Bytes
	// MaxMemory refuses commands that create state with -OOM while used
	// memory (the Go heap plus the keyspace's off-heap tables) is over it;
	// 0 means no bound. Default 0.
	MaxMemory Bytes
	// MaxMultiLimits is the most limits one THROTTLE.MULTI, and one policy,
	// checks at once. Default 64.
	MaxMultiLimits int
	// MaxLeasesPerKey is the largest max LEASE.ACQUIRE accepts, hence the
	// most leases one key holds. Default 1024.
	MaxLeasesPerKey int64

	// ProtectedMode serves only loopback clients while no password is set.
	// Default true.
	ProtectedMode bool
	// RequirePass is the default user's password; empty means none.
	// Default "".
	RequirePass string
	// RequirePassFile names a file holding the default user's password
	// (set it or RequirePass, not both). Default "".
	RequirePassFile string
	// ACLFile names a users file: one "user <name> <rules...>" per line,
	// in Redis's ACL syntax. Default "".
	ACLFile string
	// TLSPort is the port of the TLS listeners; 0 means none. Default 0.
	TLSPort int
	// TLSCertFile is the server certificate (PEM), needed with TLSPort and
	// read again by [Server.Reload]. Default "".
	TLSCertFile string
	// TLSKeyFile is the server private key (PEM), needed with TLSPort and
	// read again by [Server.Reload]. Default "".
	TLSKeyFile string
	// TLSCACertFile holds the CA certificates that sign client
	// certificates (PEM). Default "".
	TLSCACertFile string
	// TLSAuthClients says whether TLS clients present a certificate: no,
	// optional or yes (optional and yes need TLSCACertFile). Default "yes".
	TLSAuthClients string

	// DataDir keeps a durable copy of the state on Pebble and recovers it
	// at start; empty means in memory only. Default "".
	DataDir string
	// Fsync says, with DataDir, when changes reach the disk: always
	// (before the reply), everysec or no (the OS decides). Default "everysec".
	Fsync string
	// FoldBytes is, with DataDir, how many journalled bytes are folded
	// into the key space at once; at least 65536. Default 16777216.
	FoldBytes int
	// JournalLoadTruncated says, with DataDir, what a start does with a
	// journal whose newest segment ends in a torn record (a crash
	// interrupted its last write), as Redis's aof-load-truncated: yes
	// folds the records before it, with a warning; no refuses to start.
	// Default true.
	JournalLoadTruncated bool
	// JournalAcceptCorruption says, with DataDir, what a start does with a
	// journal segment or Pebble write-ahead log damaged before its end, or
	// a journal segment missing: no refuses to start, naming the file; yes
	// folds every record that can be read, logs the loss and keeps the
	// file aside as <name>.corrupt. Default false.
	JournalAcceptCorruption bool

	// ReplicaOf makes the server a replica of the primary at "host port"
	// (or host:port) from the start (REPLICAOF does it at run time);
	// empty: a primary. Default "".
	ReplicaOf string
	// MasterAuth is the password a replica authenticates to its primary
	// with. Default "".
	MasterAuth string
	// MasterUser is the ACL user a replica authenticates as (with
	// MasterAuth); empty: the default user. Default "".
	MasterUser string
	// ReplicaAnnounceIP is the address a replica gives its primary for
	// itself (REPLCONF ip-address), shown by the primary's INFO
	// replication and ROLE and matched by its FAILOVER TO, instead of the
	// address it connects from (behind NAT or Docker port mapping); an IP
	// address, empty: not sent. Default "".
	ReplicaAnnounceIP string
	// ReplicaAnnouncePort is the port a replica gives its primary for
	// itself (REPLCONF listening-port); 0: the port it listens on.
	// Default 0.
	ReplicaAnnouncePort int
	// ReplBacklogSize is how many bytes of the replication stream are kept
	// for replicas to resume from after a disconnection (a partial
	// resync); at least 16384. Default 1048576.
	ReplBacklogSize int
	// ReplBufferLimit is how far, in bytes of the stream, a replica may
	// fall behind before it is disconnected (it then resyncs); at least
	// ReplBacklogSize. Default 268435456.
	ReplBufferLimit int
	// ReplTimeout drops a replication link on which nothing arrived for
	// this long (both sides send every second). Default 1m0s.
	ReplTimeout time.Duration
	// TLSReplication makes a replica connect to its primary over TLS
	// (--replicaof then names the primary's TLS port), verifying it with
	// TLSCACertFile and presenting TLSCertFile when set. Default false.
	TLSReplication bool
	// MinReplicasToWrite makes a primary refuse writes (NOREPLICAS) while
	// fewer replicas acknowledged within MinReplicasMaxLag; 0: never.
	// Default 0.
	MinReplicasToWrite int
	// MinReplicasMaxLag is how recent a replica's acknowledgement must be
	// for MinReplicasToWrite to count it. Default 10s.
	MinReplicasMaxLag time.Duration
	// MinReplicasAck, when positive, holds every reply of a command that
	// changed state until that many replicas acknowledged the change, for
	// at most MinReplicasAckTimeout; past it the reply is an error
	// (NOREPLICAS); 0: replies never wait for replicas. Default 0.
	MinReplicasAck int
	// MinReplicasAckTimeout bounds how long a reply waits for
	// MinReplicasAck acknowledgements. Default 1s.
	MinReplicasAckTimeout time.Duration

	// PolicyFile names the named policies (TOML) of POLICY.THROTTLE, read
	// again by [Server.Reload]; empty means none. Default "".
	PolicyFile string

	// ClusterEnabled runs the node as part of a Redis Cluster: keyed
	// commands for slots other nodes serve are redirected (-MOVED), and
	// CLUSTER and CLUSTERX serve. Default false.
	ClusterEnabled bool
	// ClusterNodeID is the node's id (40 hex digits); empty takes the one
	// kept in DataDir, or a new random one. Default "".
	ClusterNodeID string
	// ClusterAnnounceIP is the address the node gives for itself before a
	// topology lists it; empty gives none, as Redis. Default "".
	ClusterAnnounceIP string
	// ClusterAnnouncePort is the port the node gives for itself; 0 gives
	// the port it listens on. Default 0.
	ClusterAnnouncePort int
	// ClusterAnnounceHostname is the host name CLUSTER SLOTS, SHARDS and
	// NODES show for this node. Default "".
	ClusterAnnounceHostname string
	// ClusterEtcd, comma-separated etcd client URLs, makes etcd drive the
	// cluster: the node registers on a lease, applies the topology etcd
	// holds and takes part in the controller election (docs/failover.md);
	// empty means off. Default "".
	ClusterEtcd string
	// ClusterName names the cluster in etcd: its keys live under
	// /sluice/<name>/. Default "sluice".
	ClusterName string
	// ClusterLeaseTTL is the lease of a node's registration: a node not
	// heard from for this long is failed over. Whole seconds. Default 3s.
	ClusterLeaseTTL time.Duration
	// ClusterPrimaries is how many masters the controller keeps serving
	// the slots. Default 3.
	ClusterPrimaries int
	// ClusterReplicas is how many replicas the controller gives each
	// master. Default 1.
	ClusterReplicas int
	// ClusterPartitionPolicy is serve (keep serving the slots this node
	// holds until a newer topology says otherwise) or fence (refuse them
	// once the lease may have expired). Default "serve".
	ClusterPartitionPolicy string

	// MetricsAddr serves Prometheus /metrics, /healthz and /readyz over
	// HTTP at this address; empty means off. Default "".
	MetricsAddr string
	// Pprof also serves Go profiles at /debug/pprof/ on the metrics
	// listener (needs MetricsAddr). Default false.
	Pprof bool
	// TopKeys records decisions by key for THROTTLE.TOP and the status
	// page (a sketch of bounded memory; busy connections sampled).
	// Default true.
	TopKeys bool
	// SlowlogLogSlowerThan logs the commands that ran at least this many
	// microseconds in the slow log (SLOWLOG GET); 0 logs every command,
	// -1 none. Redis's default: Default 10000.
	SlowlogLogSlowerThan int64
	// SlowlogMaxLen is how many slow log entries are kept, the oldest
	// dropped first. Redis's default: Default 128.
	SlowlogMaxLen int
	// StatusPage serves the status page at / on the metrics listener
	// (needs MetricsAddr): to loopback clients only while no password is
	// set, else to clients giving a user's name and password (HTTP Basic).
	// Default true.
	StatusPage bool
}

// Default returns the default configuration: an in-memory server on
// 127.0.0.1:6379. The network limits are package resp's defaults and the
// fold size package persistence's.
func Default() Config {
	return Config{
		Bind:                  "127.0.0.1",
		Port:                  6379,
		Shards:                256,
		SweepInterval:         100 * time.Millisecond,
		MaxClients:            resp.DefaultMaxClients,
		PreAuthMaxArgs:        resp.DefaultPreAuthMaxArgs,
		PreAuthMaxBulk:        resp.DefaultPreAuthMaxBulkLen,
		AuthTimeout:           resp.DefaultAuthTimeout,
		MaxBulkLen:            resp.DefaultMaxBulkLen,
		MaxArgs:               resp.DefaultMaxArgs,
		MaxInlineLen:          resp.DefaultMaxInlineLen,
		MaxQueryBuffer:        resp.DefaultMaxQueryBuffer,
		MaxPendingReply:       resp.DefaultMaxPendingReply,
		WriteTimeout:          resp.DefaultWriteTimeout,
		ProtectedMode:         true,
		TopKeys:               true,
		SlowlogLogSlowerThan:  commands.DefaultSlowlogSlowerThan,
		SlowlogMaxLen:         commands.DefaultSlowlogMaxLen,
		StatusPage:            true,
		TLSAuthClients:        "yes",
		Fsync:                 persistence.EverySec.String(),
		FoldBytes:             persistence.DefaultFoldBytes,
		ReplBacklogSize:       replication.DefaultBacklogSize,
		ReplBufferLimit:       replication.DefaultBufferLimit,
		ReplTimeout:           replication.DefaultTimeout,
		MinReplicasMaxLag:     replication.DefaultMinReplicasMaxLag,
		MinReplicasAckTimeout: replication.DefaultAckTimeout,

		MaxQueryBufferTotal:     resp.DefaultMaxQueryBufferTotal,
		MaxMultiLimits:          commands.DefaultMaxMultiLimits,
		MaxLeasesPerKey:         commands.DefaultMaxLeasesPerKey,
		JournalLoadTruncated:    true,
		JournalAcceptCorruption: false,

		ClusterName:            "sluice",
		ClusterLeaseTTL:        3 * time.Second,
		ClusterPrimaries:       3,
		ClusterReplicas:        1,
		ClusterPartitionPolicy: "serve",
	}
}

// Validate reports every problem of c at once, each naming the setting as
// its flag (--name) does.
func (c Config) Validate() error {
	var errs []error
	check := func(bad bool, format string, args ...any) {
		if bad {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.Port < 0 || c.Port > 65535, "--port %d: must be 0..65535", c.Port)
	check(c.Port == 0 && c.TLSPort == 0 && c.ListenAddr == "",
		"--port 0 turns the plaintext listener off and no --tls-port is set: nothing would listen")
	check(len(c.bindAddrs()) == 0, "--bind: no address")
	check(c.Shards < 1 || c.Shards > 1<<16, "--shards %d: must be 1..65536", c.Shards)
	check(c.SweepInterval <= 0, "--sweep-interval %s: must be positive", c.SweepInterval)
	check(c.MaxClients < 1, "--maxclients %d: must be at least 1", c.MaxClients)
	check(c.MaxClientsPerIP < 0, "--maxclients-per-ip %d: must not be negative", c.MaxClientsPerIP)
	check(c.PreAuthMaxArgs < 1 || c.PreAuthMaxBulk < 1, "--preauth-max-args and --preauth-max-bulk-len must be positive")
	check(c.AuthTimeout <= 0, "--auth-timeout %s: must be positive", c.AuthTimeout)
	check(c.MaxBulkLen < 1, "--proto-max-bulk-len %d: must be positive", c.MaxBulkLen)
	check(c.MaxArgs < 1, "--proto-max-args %d: must be positive", c.MaxArgs)
	check(c.MaxInlineLen < 1, "--proto-max-inline-len %d: must be positive", c.MaxInlineLen)
	check(int64(c.MaxQueryBuffer) <= c.MaxBulkLen,
		"--client-query-buffer-limit %d: must exceed --proto-max-bulk-len %d", c.MaxQueryBuffer, c.MaxBulkLen)
	check(c.MaxPendingReply < 1, "--client-reply-buffer %d: must be positive", c.MaxPendingReply)
	check(c.WriteTimeout <= 0, "--write-timeout %s: must be positive", c.WriteTimeout)
	check(c.IdleTimeout < 0, "--timeout %s: must not be negative", c.IdleTimeout)
	check(int64(c.MaxQueryBufferTotal) < int64(c.MaxQueryBuffer), "--max-query-buffer-total %d: must be at least --client-query-buffer-limit %d",
		c.MaxQueryBufferTotal, c.MaxQueryBuffer)
	check(c.MaxMemory < 0, "--maxmemory %d: must not be negative", c.MaxMemory)
	check(c.MaxMultiLimits < 1 || c.MaxMultiLimits > maxMultiLimits, "--max-multi-limits %d: must be 1..%d", c.MaxMultiLimits, maxMultiLimits)
	check(c.MaxLeasesPerKey < 1 || c.MaxLeasesPerKey > maxLeasesPerKey, "--max-leases-per-key %d: must be 1..%d", c.MaxLeasesPerKey, maxLeasesPerKey)
	check(c.SlowlogLogSlowerThan < -1, "--slowlog-log-slower-than %d: must be -1 (off), 0 (every command) or more", c.SlowlogLogSlowerThan)
	check(c.SlowlogMaxLen < 0 || c.SlowlogMaxLen > maxSlowlogLen, "--slowlog-max-len %d: must be 0..%d", c.SlowlogMaxLen, maxSlowlogLen)
	check(c.RequirePass != "" && c.RequirePassFile != "", "--requirepass and --requirepass-file: set one")
	check(c.TLSPort < 0 || c.TLSPort > 65535, "--tls-port %d: must be 0..65535", c.TLSPort)
	check(c.TLSPort != 0 && (c.TLSCertFile == "" || c.TLSKeyFile == ""), "--tls-port needs --tls-cert-file and --tls-key-file")
	check(c.TLSAuthClients != "no" && c.TLSAuthClients != "optional" && c.TLSAuthClients != "yes",
		"--tls-auth-clients %q: must be no, optional or yes", c.TLSAuthClients)
	check(c.TLSPort != 0 && c.TLSAuthClients != "no" && c.TLSCACertFile == "",
		"--tls-auth-clients optional or yes needs --tls-ca-cert-file")
	check(c.Pprof && c.MetricsAddr == "", "--pprof needs --metrics-addr")
	check(c.ClusterNodeID != "" && !cluster.ValidID(c.ClusterNodeID), "--cluster-node-id %q: must be 40 hex digits", c.ClusterNodeID)
	check(c.ReplicaAnnounceIP != "" && net.ParseIP(c.ReplicaAnnounceIP) == nil,
		"--replica-announce-ip %q: must be an IP address", c.ReplicaAnnounceIP)
	check(c.ReplicaAnnouncePort < 0 || c.ReplicaAnnouncePort > 65535, "--replica-announce-port %d: must be 0..65535", c.ReplicaAnnouncePort)
	check(c.ClusterAnnouncePort < 0 || c.ClusterAnnouncePort > 65535, "--cluster-announce-port %d: must be 0..65535", c.ClusterAnnouncePort)
	check(!c.ClusterEnabled && (c.ClusterNodeID != "" || c.ClusterAnnounceIP != "" || c.ClusterAnnouncePort != 0 || c.ClusterAnnounceHostname != ""),
		"--cluster-node-id and --cluster-announce-* need --cluster-enabled")
	check(c.ClusterEtcd != "" && !c.ClusterEnabled, "--cluster-etcd needs --cluster-enabled yes")
	check(c.ClusterEtcd != "" && c.Port == 0 && c.ListenAddr == "" && c.TLSPort != 0 && c.ClusterAnnouncePort == 0 && !c.TLSReplication,
		"--cluster-etcd with --port 0 (TLS only) needs --tls-replication: the nodes dial each other's TLS port")
	check(c.ClusterName == "" || strings.ContainsAny(c.ClusterName, "/ \t\r\n"), "--cluster-name %q: must be non-empty, without '/' or spaces", c.ClusterName)
	check(c.ClusterLeaseTTL < time.Second || c.ClusterLeaseTTL%time.Second != 0, "--cluster-lease-ttl %s: must be whole seconds, at least 1s (etcd's lease unit)", c.ClusterLeaseTTL)
	check(c.ClusterPrimaries < 1 || c.ClusterPrimaries > cluster.Slots, "--cluster-primaries %d: must be 1..%d", c.ClusterPrimaries, cluster.Slots)
	check(c.ClusterReplicas < 0, "--cluster-replicas %d: must not be negative", c.ClusterReplicas)
	check(c.ClusterPartitionPolicy != "serve" && c.ClusterPartitionPolicy != "fence",
		"--cluster-partition-policy %q: must be serve or fence", c.ClusterPartitionPolicy)
	if c.ClusterEtcd != "" && c.ClusterEnabled {
		if _, err := c.clusterHost(); err != nil {
			errs = append(errs, err)
		}
	}
	check(c.FoldBytes < 1<<16, "--fold-bytes %d: must be at least 65536", c.FoldBytes)
	if _, err := persistence.ParseMode(c.Fsync); err != nil {
		errs = append(errs, fmt.Errorf("--fsync: %w", err))
	}
	if _, _, err := c.replicaOf(); err != nil {
		errs = append(errs, err)
	}
	check(c.ReplBacklogSize < 16384, "--repl-backlog-size %d: must be at least 16384", c.ReplBacklogSize)
	check(c.ReplBufferLimit < c.ReplBacklogSize,
		"--repl-buffer-limit %d: must be at least --repl-backlog-size %d", c.ReplBufferLimit, c.ReplBacklogSize)
	check(c.ReplTimeout < time.Second, "--repl-timeout %s: must be at least 1s", c.ReplTimeout)
	check(c.MinReplicasToWrite < 0, "--min-replicas-to-write %d: must not be negative", c.MinReplicasToWrite)
	check(c.MinReplicasMaxLag < time.Second, "--min-replicas-max-lag %s: must be at least 1s", c.MinReplicasMaxLag)
	check(c.MinReplicasAck < 0, "--min-replicas-ack %d: must not be negative", c.MinReplicasAck)
	check(c.MinReplicasAckTimeout < time.Millisecond, "--min-replicas-ack-timeout %s: must be at least 1ms", c.MinReplicasAckTimeout)
	return errors.Join(errs...)
}

// replicaOf splits ReplicaOf, "host port" as Redis spells it or
// "host:port", into the primary's host and port; an empty host means none.
func (c Config) replicaOf() (string, int, error) {
	if strings.TrimSpace(c.ReplicaOf) == "" {
		return "", 0, nil
	}
	f := strings.Fields(c.ReplicaOf)
	if len(f) == 1 {
		host, port, err := net.SplitHostPort(f[0])
		if err != nil {
			return "", 0, fmt.Errorf("--replicaof %q: must be \"host port\" or host:port", c.ReplicaOf)
		}
		f = []string{host, port}
	}
	if len(f) != 2 {
		return "", 0, fmt.Errorf("--replicaof %q: must be \"host port\" or host:port", c.ReplicaOf)
	}
	port, err := strconv.Atoi(f[1])
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("--replicaof %q: port must be 1..65535", c.ReplicaOf)
	}
	return f[0], port, nil
}

// The largest bounds Validate accepts: a THROTTLE.MULTI of 16384 limits
// is all proto-max-args allows, 2^20 leases journal 16 MiB a change, and
// 2^16 slow log entries hold at most about 350 MiB (32 arguments of 128
// bytes and their strings' headers each).
const (
	maxMultiLimits  = 16384
	maxLeasesPerKey = 1 << 20
	maxSlowlogLen   = 1 << 16
)

// bindAddrs splits Bind into its addresses.
func (c Config) bindAddrs() []string {
	return strings.FieldsFunc(c.Bind, func(r rune) bool { return r == ' ' || r == ',' })
}

// etcdEndpoints splits ClusterEtcd.
func (c Config) etcdEndpoints() []string {
	var out []string
	for _, e := range strings.Split(c.ClusterEtcd, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// clusterHost is the host a node registers in etcd, the one clients are
// sent to: --cluster-announce-ip, else --cluster-announce-hostname, else
// the first --bind address when it names one host (not 0.0.0.0 or ::).
func (c Config) clusterHost() (string, error) {
	switch {
	case c.ClusterAnnounceIP != "":
		return c.ClusterAnnounceIP, nil
	case c.ClusterAnnounceHostname != "":
		return c.ClusterAnnounceHostname, nil
	}
	if b := c.bindAddrs(); len(b) > 0 {
		if ip := net.ParseIP(b[0]); ip != nil && !ip.IsUnspecified() {
			return b[0], nil
		}
	}
	return "", errors.New("--cluster-etcd needs --cluster-announce-ip (or --cluster-announce-hostname): the address other nodes and clients reach this node at (--bind names none)")
}
