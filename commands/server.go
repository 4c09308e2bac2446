package commands

import (
	"crypto/tls"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/acl"
	"github.com/sluicehq/sluice/clock"
	"github.com/sluicehq/sluice/cluster"
	"github.com/sluicehq/sluice/keyspace"
	"github.com/sluicehq/sluice/policy"
	"github.com/sluicehq/sluice/replication"
	"github.com/sluicehq/sluice/resp"
	"github.com/sluicehq/sluice/topkeys"
)

// Version is Sluice's version, reported by INFO, HELLO and --version.
const Version = "0.1.0"

// redisVersion is the Redis version whose protocol and commands Sluice
// speaks; clients that gate features on redis_version read it.
const redisVersion = "7.2.0"

// Config configures a Server. The zero value of every field but Keys is a
// working default.
type Config struct {
	Keys        *keyspace.Keyspace // every key and its state; required
	Clock       *clock.Settable    // nil: the system clock
	Logger      *slog.Logger       // nil: slog.Default()
	EnableDebug bool               // allow DEBUG (the clock controls tests use)
	// NetStats reports the network layer's counters for INFO; nil reports zeros.
	NetStats func() resp.Stats
	// Settings are the effective configuration, shown by CONFIG GET and INFO.
	Settings []Setting
	// Users are the accounts; nil means only the default user, without a
	// password. The network layer's AuthRequired must be Users.AuthRequired().
	Users *acl.Users
	// Protected refuses clients that are not on a loopback address with
	// Redis's -DENIED reply (protected mode: no password is set).
	Protected bool
	// Persistence is the durable copy of Keys, whose change stream it
	// must receive; nil runs in memory only.
	Persistence Persistence
	// Replication ships Keys' change stream to replicas and follows a
	// primary; nil: the replication commands answer that it is off.
	Replication Replication

	// MaxMemory refuses commands flagged denyoom (those that create state)
	// with Redis's -OOM reply while used memory (the Go heap plus the
	// keyspace's off-heap tables, see Memory) is over it; 0 means no
	// bound. Call SampleMemory periodically when it is set.
	MaxMemory int64
	// MaxMultiLimits caps the limits of one THROTTLE.MULTI; 0 means
	// DefaultMaxMultiLimits.
	MaxMultiLimits int
	// MaxLeasesPerKey caps LEASE.ACQUIRE's max; 0 means
	// DefaultMaxLeasesPerKey.
	MaxLeasesPerKey int64
	// Cluster is this node's place in a Redis Cluster: dispatch routes
	// keyed commands by it (-MOVED, -CROSSSLOT, -CLUSTERDOWN) and CLUSTER
	// and CLUSTERX read and set it. nil runs standalone (cluster mode off).
	// Call DropStep periodically when it is set.
	Cluster *cluster.State
	// SlotTail, in cluster mode, must be one of Keys' journals: it lets
	// CLUSTERX MIGRATE ship what changed while it copied. nil refuses
	// CLUSTERX MIGRATE.
	SlotTail *SlotTail
	// MigrateUser, MigratePassword and MigrateTLS are how CLUSTERX MIGRATE
	// connects to the destination node: AUTH [user] password when the
	// password is set, TLS when set (those a replica uses for its
	// primary).
	MigrateUser, MigratePassword string
	MigrateTLS                   *tls.Config
	// ClusterManager, when set, names what sets the topology and the roles
	// (e.g. "etcd (--cluster-etcd)"): CLUSTERX SETNODES is then refused
	// unless FORCE, and CLUSTERX SETNODEID and REPLICAOF always; FAILOVER
	// too unless ClusterHandover is set.
	ClusterManager string
	// ClusterHandover, with ClusterManager, lets FAILOVER run: the control
	// plane checks the target and flips the roles in its topology (see
	// replication.FailoverOptions.Handover).
	ClusterHandover replication.Handover
	// ClusterInfo, when set, adds lines to INFO's "# Cluster" (the control
	// plane's link).
	ClusterInfo func(kv func(string, any))
	// TopKeys counts decisions by key for THROTTLE.TOP and the status
	// page; nil makes one of topkeys' default sizes, unless NoTopKeys.
	TopKeys *topkeys.Recorder
	// NoTopKeys records no decision by key; THROTTLE.TOP then replies an
	// error.
	NoTopKeys bool
	// Slowlog configures the slow log (SLOWLOG); nil: Redis's defaults,
	// commands of 10 ms or more, the latest 128.
	Slowlog *SlowlogConfig
	// Sleep waits out the delay an AUTH earns after its address failed
	// too often (see authGuard); nil is time.Sleep. Tests pass one that
	// records the delays and moves Clock instead.
	Sleep func(time.Duration)
}

// Setting is one named configuration value.
type Setting struct {
	Name, Value string
}

// Server executes commands. It implements resp.Handler; use it as the
// Handler of a resp.Server with OnOpen and OnClose wired to its methods.
type Server struct {
	cfg     Config
	keys    *keyspace.Keyspace
	clock   *clock.Settable
	log     *slog.Logger
	cmds    *registry
	started time.Time

	mu       sync.Mutex
	sessions map[uint64]*session

	commandsDone atomic.Uint64 // commands of sessions that have ended
	rejected     atomic.Uint64 // calls refused before running (unknown, arity)
	authFailures atomic.Uint64 // AUTH and HELLO AUTH with bad credentials
	authGuard    authGuard     // failed AUTH per client address
	deniedCmd    atomic.Uint64 // NOAUTH and NOPERM for a command
	deniedKey    atomic.Uint64 // NOPERM for a key
	latency      Latency
	slowlog      slowlog                   // SLOWLOG (slowlog.go)
	statsBase    atomic.Pointer[statsBase] // CONFIG RESETSTAT's baseline (cmdstats.go)

	decisions   decisions    // every rate-limit decision, by kind and policy
	waitDurable func() error // s.waitDurableFn, bound once (no allocation per call)
	// repl is cfg.Replication.
	repl Replication
	// durable is cfg.Persistence when its replies wait for durability
	// (RepliesWait), else nil: then no command sets a barrier.
	durable Persistence
	// acks is cfg.Replication when its replies wait for replicas'
	// acknowledgements (--min-replicas-ack), else nil.
	acks ReplicaAcks

	// policies are the named policies POLICY.* serve (cmd_policy.go).
	policies atomic.Pointer[policy.Set]

	// loading is set while the data directory is recovered (SetLoading).
	loading atomic.Pointer[loadingState]

	// heldWrites is DEBUG HOLD-WRITES (a write in flight, for tests).
	heldWrites writeHold

	// isLocal tells loopback clients for protected mode; tests replace it
	// to see the refusal without a second network.
	isLocal func(addr string) bool

	// cluster is cfg.Cluster: nil when cluster mode is off (routing.go).
	cluster   *cluster.State
	redirects atomic.Uint64 // -MOVED replies
	// -TRYAGAIN, -CROSSSLOT and -CLUSTERDOWN replies (routing.go)
	redirectsTryAgain, redirectsCrossSlot, redirectsDown atomic.Uint64
	slotDrop                                             slotDrop // removing the keys of slots this node lost
	// tail is cfg.SlotTail; migrations the slot moves from and to this
	// node (migrate.go).
	tail       *SlotTail
	migrations migrations
	manager    string                     // cfg.ClusterManager
	clusterKV  func(kv func(string, any)) // cfg.ClusterInfo
	fenced     atomic.Bool                // SetFenced: refuse keyed commands on served slots
	// top counts decisions by key (nil with NoTopKeys); src* are the
	// commands' sources in it (cmd_top.go).
	top                                             *topkeys.Recorder
	srcThrottle, srcCLThrottle, srcWindow, srcMulti topkeys.Source

	heapSample  atomic.Int64  // the Go heap's objects when last sampled (memory.go)
	oomRejected atomic.Uint64 // calls refused with -OOM
}

// NewServer returns a Server over cfg.Keys.
func NewServer(cfg Config) *Server {
	if cfg.Clock == nil {
		cfg.Clock = clock.NewSettable(clock.NewSystem())
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Users == nil {
		cfg.Users = acl.NewUsers("")
	}
	if cfg.Sleep == nil {
		cfg.Sleep = time.Sleep
	}
	if cfg.NetStats == nil {
		cfg.NetStats = func() resp.Stats { return resp.Stats{} }
	}
	if cfg.MaxMultiLimits <= 0 {
		cfg.MaxMultiLimits = DefaultMaxMultiLimits
	}
	if cfg.MaxLeasesPerKey <= 0 {
		cfg.MaxLeasesPerKey = DefaultMaxLeasesPerKey
	}
	cfg.MaxMemory = max(cfg.MaxMemory, 0)
	s := &Server{
		cfg:       cfg,
		keys:      cfg.Keys,
		clock:     cfg.Clock,
		log:       cfg.Logger,
		cmds:      newRegistry(commandTable()),
		started:   time.Now(),
		sessions:  map[uint64]*session{},
		isLocal:   isLoopback,
		repl:      cfg.Replication,
		cluster:   cfg.Cluster,
		tail:      cfg.SlotTail,
		manager:   cfg.ClusterManager,
		clusterKV: cfg.ClusterInfo,
	}
	s.initTopKeys()
	s.slowlog.init(cfg.Slowlog)
	s.waitDurable = s.waitDurableFn
	if p := cfg.Persistence; p != nil && p.RepliesWait() {
		s.durable = p
	}
	if ra, ok := cfg.Replication.(ReplicaAcks); ok && ra.AckReplicas() > 0 {
		s.acks = ra
	}
	s.SampleMemory()
	if s.cluster != nil && s.cluster.View().Topology != nil {
		// A node may have stopped before it finished dropping the keys of
		// slots it lost: a pass over what it recovered finds them.
		s.slotDrop.start()
	}
	return s
}

// loadingState is what SetLoading was given.
type loadingState struct {
	info func() []Setting
}

// SetLoading says whether the state is still being recovered. While it is
// (info is not nil), every command that Redis does not allow while loading
// (those without FlagLoading: all that touch keys, and PING) answers
// -LOADING, and INFO's persistence section shows loading:1 followed by the
// fields info returns (Redis's loading_* figures). SetLoading(nil) ends
// loading; commands then run as usual.
func (s *Server) SetLoading(info func() []Setting) {
	if info == nil {
		s.loading.Store(nil)
		return
	}
	s.loading.Store(&loadingState{info: info})
}

// Clock is the server's clock (frozen and released by DEBUG CLOCK).
func (s *Server) Clock() *clock.Settable { return s.clock }

// Commands lists the command table, sorted by name.
func (s *Server) Commands() []*Command { return s.cmds.sorted }
