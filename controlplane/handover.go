package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sluicehq/sluice/cluster"
	"github.com/sluicehq/sluice/replication"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// A planned handover (FAILOVER on a primary under etcd) is a request the
// node writes once its writes are paused and its replica has every
// change; the controller grants it with the same compare-and-swap that
// publishes every topology, and deletes it in that transaction (granted or
// refused). The node resumes writes only once it knows the roles will not
// flip: its request withdrawn, refused, or gone with its lease.

func (a *Agent) handoverKey() string { return a.prefix + "handover" }

// Check implements replication.Handover: the target must be a replica of
// this node in the topology applied from etcd, and the lease alive (the
// controller is reached through etcd). It runs under the replication
// node's lock: it reads memory only.
func (a *Agent) Check(host string, port int) error {
	if !a.leaseOK(time.Duration(a.ttl.Load())) || a.lease.Load() == 0 {
		return errors.New("FAILOVER needs etcd: this node's lease is not renewed (is etcd reachable?)")
	}
	_, err := a.target(a.applied.Load(), host, port)
	return err
}

// target finds the replica of this node at host:port in top. The address
// a replica connects from may differ from the one it announces: a port
// that names one replica of this node is enough.
func (a *Agent) target(top *cluster.Topology, host string, port int) (*cluster.Node, error) {
	if top == nil {
		return nil, errors.New("FAILOVER: no topology from etcd applied yet")
	}
	if self := top.Node(a.cfg.ID); self == nil || self.Role != cluster.Master {
		return nil, errors.New("FAILOVER: this node is not a master in the topology etcd holds")
	}
	var match []*cluster.Node
	for _, r := range top.Replicas(a.cfg.ID) {
		if r.Port == port {
			if r.Host == host {
				return r, nil
			}
			match = append(match, r)
		}
	}
	if len(match) != 1 {
		return nil, replication.ErrFailoverNotReplica
	}
	return match[0], nil
}

// flipBound is how long a FAILOVER without TIMEOUT waits for the
// controller: enough for one to be elected after a crash.
func (a *Agent) flipBound() time.Duration { return 2*a.cfg.LeaseTTL + a.cfg.DialTimeout }

// flipped reports whether top makes this node a replica of to, and to a
// master.
func flipped(top *cluster.Topology, from, to string) bool {
	if top == nil {
		return false
	}
	f, t := top.Node(from), top.Node(to)
	return f != nil && t != nil && f.Role == cluster.Replica && f.MasterID == to && t.Role == cluster.Master
}

// Flip implements replication.Handover: it asks the controller for the
// flip (the handover key, on this node's lease, created only if no other
// handover is pending), and returns once this node has applied the
// topology that grants it and the new master serves it. On abort, at the
// deadline or when the controller refuses, it withdraws the request and
// returns an error; a request the controller granted meanwhile is a
// success.
func (a *Agent) Flip(host string, port int, deadline time.Time, abort <-chan struct{}) error {
	if deadline.IsZero() {
		deadline = time.Now().Add(a.flipBound())
	}
	top := a.applied.Load()
	to, err := a.target(top, host, port)
	if err != nil {
		return err
	}
	lease := clientv3.LeaseID(a.lease.Load())
	if lease == 0 {
		return errors.New("not registered in etcd")
	}
	val, _ := json.Marshal(cluster.Handover{From: a.cfg.ID, To: to.ID, Revision: top.Version})
	ctx, cancel := context.WithDeadline(a.ctx, deadline)
	defer cancel()
	go func() { // an ABORT also ends a request etcd is slow to take
		select {
		case <-abort:
			cancel()
		case <-ctx.Done():
		}
	}()
	key := a.handoverKey()
	resp, err := a.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(val), clientv3.WithLease(lease))).Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		// The request may have been written: withdraw it.
		reason := fmt.Sprintf("asking the controller: %v", err)
		switch {
		case isClosed(abort):
			reason = "FAILOVER ABORT"
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			reason = "timed out waiting for the controller"
		}
		return a.withdraw(key, string(val), to, reason)
	}
	if !resp.Succeeded {
		pending := ""
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			pending = string(kvs[0].Value)
		}
		return fmt.Errorf("another handover is in progress: %s", pending)
	}
	a.log.Info("cluster: handover asked of the controller", "to", to.ID, "to_addr", to.Addr, "revision", top.Version)
	wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer wcancel()
	gone := a.cli.Watch(wctx, key, clientv3.WithRev(resp.Header.Revision+1))
	for {
		sig := a.appliedSignal()
		if t := a.applied.Load(); flipped(t, a.cfg.ID, to.ID) {
			return a.awaitServing(to, t.Version, deadline)
		}
		select {
		case <-sig:
		case w, ok := <-gone:
			deleted := false
			for _, ev := range w.Events {
				deleted = deleted || ev.Type == clientv3.EventTypeDelete
			}
			switch {
			case deleted:
				return a.processed(to, deadline)
			case !ok || w.Err() != nil:
				gone = nil // the deadline or the topology decides
			}
		case <-ctx.Done():
			reason := "timed out waiting for the controller"
			if isClosed(abort) {
				reason = "FAILOVER ABORT"
			}
			return a.withdraw(key, string(val), to, reason)
		}
	}
}

// withdraw deletes this node's request if the controller has not
// processed it; one it processed meanwhile is read from the topology. It
// keeps trying while etcd does not answer, until the lease the request is
// on has surely expired (no keepalive answer for the TTL plus the fence's
// margin): writes must not resume while a flip could still be granted.
// A stopping agent gives up at once: its node stops serving anyway, so a
// flip granted later loses nothing.
func (a *Agent) withdraw(key, val string, to *cluster.Node, reason string) error {
	for {
		if a.ctx.Err() != nil {
			return fmt.Errorf("%s (the node is stopping)", reason)
		}
		ctx, cancel := context.WithTimeout(context.Background(), a.cfg.DialTimeout)
		resp, err := a.cli.Txn(ctx).If(clientv3.Compare(clientv3.Value(key), "=", val)).Then(clientv3.OpDelete(key)).Commit()
		cancel()
		switch {
		case err == nil && resp.Succeeded:
			a.log.Warn("cluster: handover request withdrawn", "to", to.ID, "reason", reason)
			return errors.New(reason)
		case err == nil:
			return a.processed(to, time.Now().Add(a.cfg.LeaseTTL))
		case !a.leaseOK(time.Duration(a.ttl.Load()) + a.cfg.FenceMargin):
			a.log.Warn("cluster: handover request not withdrawn, but its lease has expired", "to", to.ID, "reason", reason, "err", err)
			return fmt.Errorf("%s (etcd unreachable: %v)", reason, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// processed reads the topology once the controller deleted the request:
// granted, it applies it and waits for the new master; refused, it says
// so.
func (a *Agent) processed(to *cluster.Node, deadline time.Time) error {
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.DialTimeout)
	defer cancel()
	r, err := a.cli.Get(ctx, a.topologyKey())
	if err == nil && len(r.Kvs) > 0 {
		a.apply(string(r.Kvs[0].Value), r.Kvs[0].ModRevision)
	}
	if t := a.applied.Load(); flipped(t, a.cfg.ID, to.ID) {
		return a.awaitServing(to, t.Version, deadline)
	}
	if err != nil {
		// Processed, but the map cannot be read: the watch applies it
		// when it comes; writes resume here meanwhile only if not granted.
		return fmt.Errorf("the controller processed the handover, the topology cannot be read: %w", err)
	}
	return errors.New("the controller did not grant the handover (the topology changed, or a node of it is gone: see the controller's log)")
}

// awaitServing waits until the new master has applied version (it
// promotes itself before it serves; asked as the offsets are, over TLS
// with Config.TLS), so that the paused writes, redirected
// to it, are served there rather than sent back; past the deadline it
// gives up waiting (the map is published: it will).
func (a *Agent) awaitServing(to *cluster.Node, version int64, deadline time.Time) error {
	if least := time.Now().Add(a.cfg.DialTimeout); deadline.Before(least) {
		deadline = least
	}
	ctx, cancel := context.WithDeadline(a.ctx, deadline)
	defer cancel()
	c := redis.NewClient(&redis.Options{Addr: to.Host + ":" + strconv.Itoa(to.Port), Username: a.cfg.Username,
		Password: a.cfg.Password, TLSConfig: a.cfg.TLS, MaxRetries: -1, DisableIdentity: true, PoolSize: 1})
	defer func() { _ = c.Close() }()
	for ctx.Err() == nil {
		if v, err := c.Do(ctx, "CLUSTERX", "VERSION").Int64(); err == nil && v >= version {
			a.log.Info("cluster: role change: handed over to the new master", "to", to.ID, "to_addr", to.Addr, "revision", version)
			return nil
		}
		t := time.NewTimer(2 * time.Millisecond)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	a.log.Warn("cluster: handed over; the new master has not applied the topology yet", "to", to.ID, "revision", version)
	return nil
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// appliedSignal is closed when the next topology is applied.
func (a *Agent) appliedSignal() <-chan struct{} {
	a.sigMu.Lock()
	defer a.sigMu.Unlock()
	return a.sig
}

// appliedNow records top as applied and wakes the waiters of
// appliedSignal.
func (a *Agent) appliedNow(top *cluster.Topology) {
	a.applied.Store(top)
	a.sigMu.Lock()
	defer a.sigMu.Unlock()
	close(a.sig)
	a.sig = make(chan struct{})
}

// readHandover reads the pending handover request, if any: the request and
// its mod revision (0: none). An unreadable one is returned as a request
// that Decide refuses, so that the controller deletes it.
func (a *Agent) readHandover(ctx context.Context) (*cluster.Handover, int64, error) {
	r, err := a.cli.Get(ctx, a.handoverKey())
	if err != nil || len(r.Kvs) == 0 {
		return nil, 0, err
	}
	var h cluster.Handover
	if err := json.Unmarshal(r.Kvs[0].Value, &h); err != nil {
		a.log.Warn("cluster: unreadable handover request; deleting it", "value", string(r.Kvs[0].Value))
		h = cluster.Handover{Revision: -1}
	}
	return &h, r.Kvs[0].ModRevision, nil
}
