package commands

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/cluster"
	"github.com/sluicehq/sluice/counter"
	"github.com/sluicehq/sluice/gcra"
	"github.com/sluicehq/sluice/keyspace"
	"github.com/sluicehq/sluice/lease"
	"github.com/sluicehq/sluice/replication"
	"github.com/sluicehq/sluice/slidinglog"
	"github.com/sluicehq/sluice/window"
)

// Error replies, worded as Redis words them.
const (
	errSyntax         = "ERR syntax error"
	errNotInteger     = "ERR value is not an integer or out of range"
	errDBIndex        = "ERR DB index is out of range"
	errNoProto        = "NOPROTO unsupported protocol version"
	errWrongPass      = "WRONGPASS invalid username-password pair or user is disabled."
	errAuthNoPassword = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
	errClientName     = "ERR Client names cannot contain spaces, newlines or special characters."
	errDenied         = "DENIED Sluice is running in protected mode because no password is set for the default user. In this mode connections are only accepted from the loopback interface. To serve other hosts, set a password with --requirepass (or SLUICE_REQUIREPASS, or --requirepass-file) or users with --aclfile, or, only on a network you trust, start with --protected-mode=false."
	errDebugDisabled  = "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"no\", you need to start the server with --enable-debug-command to use it."
	errProtoVersion   = "ERR Protocol version is not an integer or out of range"
	errHelloNoAuth    = "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"
	errAuthBackoff    = "ERR too many failed authentication attempts from this address, try again later"
	errGetKeysCommand = "ERR Invalid command specified"
	errGetKeysArity   = "ERR Invalid number of arguments specified for command"
	errGetKeysNone    = "ERR The command has no key arguments"
	errOOM            = "OOM command not allowed when used memory > 'maxmemory'."
	errInvalidCursor  = "ERR invalid cursor"
	errLoading        = "LOADING Sluice is loading the dataset in memory"
)

// errTooManyLimits refuses a THROTTLE.MULTI over its bound.
func errTooManyLimits(most int) string {
	return fmt.Sprintf("ERR too many limits: at most %d per call (max-multi-limits)", most)
}

// errLeaseMaxTooLarge refuses a LEASE.ACQUIRE max over its bound.
func errLeaseMaxTooLarge(most int64) string {
	return fmt.Sprintf("ERR invalid max: must be at most %d (max-leases-per-key)", most)
}

func errHelloOption(opt []byte) string {
	return fmt.Sprintf("ERR Syntax error in HELLO option '%s'", clean(truncate(opt, 128)))
}

// errClientInfoValue refuses a CLIENT SETINFO value; Redis names the
// attribute in lower case.
func errClientInfoValue(attr []byte) string {
	return "ERR " + strings.ToLower(string(attr)) + " cannot contain spaces, newlines or special characters."
}

func errClientInfoOption(attr []byte) string {
	return fmt.Sprintf("ERR Unrecognized option '%s'", clean(truncate(attr, 128)))
}

func errDebugSubcommand(sub []byte) string {
	return fmt.Sprintf("ERR unknown subcommand or wrong number of arguments for '%s'. Try DEBUG HELP.", clean(truncate(sub, 128)))
}

func errNoPolicy(name []byte) string {
	return "ERR no such policy '" + clean(truncate(name, 128)) + "'"
}

// errNotDurable is the reply of a change that persistence could not make
// durable, with the cause on one line.
// errNotAcked replaces replies withheld until replicas acknowledged the
// changes before them (--min-replicas-ack) when they did not in time. A
// change was made on this primary; a failover now may lose it.
func errNotAcked(want int) string {
	return fmt.Sprintf("NOREPLICAS Not enough replicas acknowledged the change in time (--min-replicas-ack %d); it was made here, but a failover may lose it.", want)
}

func errNotDurable(err error) string {
	return "ERR decision not durable: " + strings.NewReplacer("\r", " ", "\n", " ").Replace(err.Error())
}

// errorReplies words the Go errors of argument parsing and of the packages
// below as Redis error replies. The wording is the reply's, not the Go
// error's: rewording a Go error never changes what clients see.
var errorReplies = []struct {
	err   error
	reply string
}{
	{errArgNotInteger, errNotInteger},
	{errArgCount, "ERR wrong number of arguments"},
	{gcra.ErrNegativeBurst, "ERR invalid max_burst: must be >= 0"},
	{gcra.ErrCount, "ERR invalid count: must be >= 1"},
	{gcra.ErrPeriod, "ERR invalid period: must be >= 1 second"},
	{gcra.ErrZeroRate, "ERR zero rates are not supported"},
	{gcra.ErrOverflow, "ERR limit arithmetic overflows 64-bit nanoseconds"},
	{keyspace.ErrNoChecks, "ERR at least one limit is required"},
	{keyspace.ErrShardFull, "ERR state table shard is full"},
	{window.ErrAlgorithm, "ERR unknown algorithm: must be fixed or sliding"},
	{lease.ErrMax, "ERR invalid max: must be >= 1"},
	{lease.ErrTTL, "ERR invalid ttl: must be >= 1 millisecond and at most 2^40 ms"},
	{counter.ErrTTL, "ERR invalid ttl: must be >= 1 millisecond and at most 2^40 ms"},
	{counter.ErrOverflow, "ERR increment or decrement would overflow"},
	{slidinglog.ErrMax, "ERR invalid limit: must be >= 1"},
	{slidinglog.ErrPeriod, "ERR invalid period: must be >= 1 millisecond and at most 2^40 ms"},
	{slidinglog.ErrQuantity, "ERR invalid quantity: must be >= 0"},
	{replication.ErrFailoverOnReplica, "ERR FAILOVER is not valid when server is a replica."},
	{replication.ErrFailoverNoReplicas, "ERR FAILOVER requires connected replicas."},
	{replication.ErrFailoverNotReplica, "ERR FAILOVER target HOST and PORT is not a replica."},
	{replication.ErrFailoverNotOnline, "ERR FAILOVER target replica is not online."},
	{replication.ErrFailoverInProgress, "ERR FAILOVER already in progress."},
	{replication.ErrFailoverNotRunning, "ERR FAILOVER is not in progress."},
	{replication.ErrFailoverForceOptions, "ERR FAILOVER with force option requires both a timeout and target HOST and IP."},
}

// errorReply is the Redis error reply for err: its wording in errorReplies,
// or "ERR " and the Go error's text for an error without one.
func errorReply(err error) string {
	for _, e := range errorReplies {
		if errors.Is(err, e.err) {
			return e.reply
		}
	}
	return "ERR " + err.Error()
}

func errArity(fullName string) string {
	return "ERR wrong number of arguments for '" + fullName + "' command"
}

// errSubcommandSyntax is Redis's reply to a subcommand called with
// arguments it does not take.
func errSubcommandSyntax(sub []byte, parent string) string {
	return fmt.Sprintf("ERR unknown subcommand or wrong number of arguments for '%s'. Try %s HELP.", clean(truncate(sub, 128)), parent)
}

func errUnknownSubcommand(sub []byte, parent string) string {
	return fmt.Sprintf("ERR unknown subcommand '%s'. Try %s HELP.", clean(truncate(sub, 128)), strings.ToUpper(parent))
}

// errUnknownCommand is Redis 7's reply for an unknown command, including its
// trailing space: each argument is quoted until 128 bytes of them are shown.
func errUnknownCommand(args [][]byte) string {
	var b strings.Builder
	for _, a := range args[1:] {
		if b.Len() >= 128 {
			break
		}
		n := min(len(a), 128-b.Len())
		b.WriteString("'")
		b.WriteString(clean(a[:n]))
		b.WriteString("' ")
	}
	return fmt.Sprintf("ERR unknown command '%s', with args beginning with: %s", clean(truncate(args[0], 128)), b.String())
}

// clean replaces CR and LF with spaces, as Redis does in error replies.
// Other bytes, valid UTF-8 or not, pass through unchanged.
func clean(b []byte) string {
	out := []byte(string(b))
	for i, c := range out {
		if c == '\r' || c == '\n' {
			out[i] = ' '
		}
	}
	return string(out)
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// Authentication and authorisation replies, as Redis words them.
const (
	errNoAuth    = "NOAUTH Authentication required."
	errNoPermKey = "NOPERM No permissions to access a key"
)

func errNoPermCmd(user, cmd string) string {
	return fmt.Sprintf("NOPERM User %s has no permissions to run the '%s' command", user, cmd)
}

// Replication replies, as Redis words them.
const (
	errReadOnly            = "READONLY You can't write against a read only replica."
	errWaitOnReplica       = "ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated."
	errTimeoutInteger      = "ERR timeout is not an integer or out of range"
	errTimeoutNeg          = "ERR timeout is negative"
	errMasterPort          = "ERR Invalid master port"
	errNoMasterLink        = "NOMASTERLINK Can't SYNC while not connected with my master"
	errNoReplication       = "ERR replication is not enabled on this server"
	errNoReplicas          = "NOREPLICAS Not enough good replicas to write."
	errFailoverTimeout     = "ERR FAILOVER timeout must be greater than 0"
	errPsyncFailoverMaster = "ERR PSYNC FAILOVER can't be sent to a master."
)

func errReplconfOption(opt []byte) string {
	return fmt.Sprintf("ERR Unrecognized REPLCONF option: %s", clean(truncate(opt, 128)))
}

func errReplconfIPAddress(v []byte) string {
	return fmt.Sprintf("ERR REPLCONF ip-address '%s': must be an IP address or a host name", clean(truncate(v, 128)))
}

// Cluster replies, as Redis words them (CLUSTERX's as Kvrocks does).
const (
	errClusterDisabled = "ERR This instance has cluster support disabled"
	errCrossSlot       = "CROSSSLOT Keys in request don't hash to the same slot"
	errClusterDown     = "CLUSTERDOWN Hash slot not served"
	// errFenced is the fence's refusal: Redis's minority-partition reply,
	// with the reason.
	errFenced             = "CLUSTERDOWN The cluster is down (fenced: this node has not renewed its etcd lease, or not yet read the topology)"
	errInvalidSlot        = "ERR Invalid slot"
	errInvalidSlotOrCount = "ERR Invalid slot or number of keys"
	errClusterNodeID      = "ERR Invalid cluster node id: want 40 hex digits"
)

// errMoved sends a client to the node that serves slot, at "host:port".
func errMoved(slot int, addr string) string { return "MOVED " + strconv.Itoa(slot) + " " + addr }

// errClusterManaged refuses CLUSTERX SETNODES without FORCE while a control
// plane sets the topology; errClusterIDManaged refuses CLUSTERX SETNODEID.
func errClusterManaged(manager string) string {
	return "ERR the topology is managed by " + manager + ": add FORCE to set it anyway (the controller replaces it with its next change)"
}

// errRoleManaged refuses REPLICAOF and FAILOVER while a control plane sets
// the roles (Redis refuses REPLICAOF in cluster mode likewise).
func errRoleManaged(cmd, manager string) string {
	return "ERR " + cmd + " not allowed while the topology is managed by " + manager + ": the controller sets each node's role"
}

func errClusterIDManaged(manager string) string {
	return "ERR the topology is managed by " + manager + ": this node's id is kept by it"
}

func errClusterVersion(got, current int64) string {
	return fmt.Sprintf("ERR Invalid cluster version: %d is older than the current version %d (add FORCE to set it anyway)", got, current)
}

// errCluster words an error of package cluster on one line: "ERR Invalid
// nodes definition: line 2: ...", "ERR cluster state: ...".
func errCluster(err error) string {
	msg := strings.NewReplacer("\r", " ", "\n", " ").Replace(err.Error())
	if errors.Is(err, cluster.ErrNodes) {
		msg = "I" + strings.TrimPrefix(msg, "i")
	}
	return "ERR " + msg
}
