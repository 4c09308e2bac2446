package client

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterStateReloadInterval is how old a slot map [NewClusterClient]'s
// client lets its map get before it reloads it (go-redis's default is 60
// seconds).
const ClusterStateReloadInterval = 2 * time.Second

// ClusterReloadMinGap is the shortest time between two slot-map reloads
// that [NewClusterClient]'s client starts because a command failed.
const ClusterReloadMinGap = 100 * time.Millisecond

// NewClusterClient returns a go-redis ClusterClient for a Sluice cluster:
// opt's settings, with ClusterStateReloadInterval set to
// [ClusterStateReloadInterval] and DialerRetries to 1 when opt leaves them
// zero, and a hook that reloads the slot map when a command fails on a
// node that is gone. opt itself is not changed.
//
// Why: go-redis v9 reloads its slot map (CLUSTER SLOTS from one node)
// right after a -MOVED or -ASK reply, and otherwise only when a command
// finds the map older than ClusterStateReloadInterval. When a primary dies
// and a new topology gives its slots to another node, nothing answers
// -MOVED: the dead node's connections are refused, and go-redis keeps
// sending that slot's commands there until the map ages out (measured
// after a real Redis Cluster failover: 57.6 s of failures with the 60 s
// default, 3.7 s with 2 s, and up to one more interval when a reload lands
// just before the new map).
//
// So the client also reloads its map, in the background, whenever a
// command (or a pipeline) fails with a connection error (refused, reset,
// EOF, i/o timeout) or -CLUSTERDOWN, on the node it was sent to or after
// go-redis's retries: a failover is followed within about one reload of
// the new map being written, whatever the interval. It stays bounded while
// a node is dead: at most one reload runs at a time (go-redis coalesces
// them and waits 200 ms after each), and failures start at most one every
// [ClusterReloadMinGap]. A reload's own CLUSTER SLOTS failing does not
// start another. The interval remains the fallback for a map that changed
// without any command failing.
//
// DialerRetries 1: go-redis dials a node up to 5 times, 100 ms apart, on
// each of a command's 4 tries (MaxRedirects 3), so a command sent to a
// dead node took about 2 s to fail and to try the reloaded map. The
// cluster client already retries a refused dial with its own backoff
// (8-512 ms), on a node taken from the map again from the third try; one
// dial per try is enough, and keeps a command's failure as short as the
// node's refusal.
//
// A primary that hangs (stopped, not dead) accepts connections and answers
// nothing: each try waits for ReadTimeout (go-redis's default 3 s) or the
// command's context deadline, whichever is first, and only then counts as
// a failure. NewClusterClient leaves ReadTimeout as opt sets it; give
// commands a context deadline (as [Middleware] does with
// [MiddlewareConfig.Timeout]) or set ReadTimeout to bound that wait.
func NewClusterClient(opt *redis.ClusterOptions) *redis.ClusterClient {
	o := *opt
	if o.ClusterStateReloadInterval == 0 {
		o.ClusterStateReloadInterval = ClusterStateReloadInterval
	}
	if o.DialerRetries == 0 {
		o.DialerRetries = 1
	}
	c := redis.NewClusterClient(&o)
	h := &reloadHook{reload: func() { c.ReloadState(context.Background()) }, gap: ClusterReloadMinGap}
	// Each node's client sees every try's error, before go-redis retries
	// on a node it picks from the (by then perhaps reloaded) map; the
	// cluster client sees what is left after the retries, and pipelines.
	// Nodes are created on first use, after this.
	c.OnNewNode(func(n *redis.Client) { n.AddHook(h) })
	c.AddHook(h)
	return c
}

// reloadHook is the go-redis hook that calls reload when a command fails
// as a dead or partitioned node's commands do, at most once every gap.
type reloadHook struct {
	reload func()
	gap    time.Duration
	last   atomic.Int64 // UnixNano of the last reload started; 0: none yet
}

// DialHook implements redis.Hook: it leaves dialing alone (a refused dial
// shows up as the command's error).
func (h *reloadHook) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook implements redis.Hook.
func (h *reloadHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if err != nil && !isSlotsQuery(cmd) && nodeFailed(err) {
			h.trigger()
		}
		return err
	}
}

// ProcessPipelineHook implements redis.Hook.
func (h *reloadHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		failed := err != nil && nodeFailed(err)
		for _, cmd := range cmds {
			if failed {
				break
			}
			failed = cmd.Err() != nil && nodeFailed(cmd.Err())
		}
		if failed {
			h.trigger()
		}
		return err
	}
}

// trigger starts a reload unless one was started less than gap ago.
func (h *reloadHook) trigger() {
	now := time.Now().UnixNano()
	last := h.last.Load()
	if last != 0 && now-last < int64(h.gap) {
		return
	}
	if h.last.CompareAndSwap(last, now) {
		h.reload()
	}
}

// isSlotsQuery reports whether cmd is the map query of a reload (CLUSTER
// SLOTS, or SHARDS/NODES): its failure on a dead node is the reload's own
// business and must not start another one.
func isSlotsQuery(cmd redis.Cmder) bool {
	if cmd.Name() != "cluster" {
		return false
	}
	args := cmd.Args()
	if len(args) < 2 {
		return false
	}
	sub, _ := args[1].(string)
	switch strings.ToLower(sub) {
	case "slots", "shards", "nodes":
		return true
	}
	return false
}

// nodeFailed reports whether err says the node a command went to is gone,
// hung or no longer serves its slots: a network error (refused or reset
// connection, i/o timeout, also from the context's deadline), an EOF, or
// -CLUSTERDOWN. A context cancelled or expired before any I/O, and every
// other server reply, do not count.
func nodeFailed(err error) bool {
	var opErr *net.OpError
	switch {
	case errors.As(err, &opErr):
		return true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	}
	var rerr redis.Error
	return errors.As(err, &rerr) && strings.HasPrefix(rerr.Error(), "CLUSTERDOWN")
}
