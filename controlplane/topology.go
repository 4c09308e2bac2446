package controlplane

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sluicehq/sluice/cluster"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
)

// discardZap silences etcd's client logger: the agent logs what an
// operator needs through slog.
func discardZap() *zap.Logger { return zap.NewNop() }

// runTopology applies the topology etcd holds now, then every newer one
// as the watch reports it; after a broken watch it reads it again.
func (a *Agent) runTopology() {
	defer a.wg.Done()
	backoff := 100 * time.Millisecond
	for a.ctx.Err() == nil {
		err := a.followTopology()
		if a.ctx.Err() != nil {
			return
		}
		a.log.Warn("cluster: topology watch broken; reading it again", "err", err, "retry_in", backoff)
		if !a.sleep(backoff) {
			return
		}
		backoff = min(backoff*2, a.cfg.LeaseTTL)
	}
}

// syncTopology reads the topology etcd holds and applies it.
func (a *Agent) syncTopology(ctx context.Context) error {
	_, err := a.readTopology(ctx)
	return err
}

// readTopology is syncTopology; it returns etcd's revision at the read.
func (a *Agent) readTopology(ctx context.Context) (int64, error) {
	r, err := a.cli.Get(ctx, a.topologyKey())
	if err != nil {
		return 0, err
	}
	if len(r.Kvs) > 0 {
		a.apply(string(r.Kvs[0].Value), r.Kvs[0].ModRevision)
	}
	return r.Header.Revision, nil
}

func (a *Agent) followTopology() error {
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(a.ctx))
	defer cancel()
	rev, err := a.readTopology(ctx)
	if err != nil {
		return err
	}
	for w := range a.cli.Watch(ctx, a.topologyKey(), clientv3.WithRev(rev+1)) {
		if err := w.Err(); err != nil {
			return err
		}
		for _, ev := range w.Events {
			if ev.Type == clientv3.EventTypePut {
				a.apply(string(ev.Kv.Value), ev.Kv.ModRevision)
			}
		}
	}
	return errors.New("watch closed")
}

// apply sets the topology at version and this node's replication role
// from it: a master promotes itself before it serves its slots, a replica
// stops serving them before it follows its master.
func (a *Agent) apply(text string, version int64) {
	a.applyMu.Lock()
	defer a.applyMu.Unlock()
	t, err := cluster.Parse(text, version)
	if err != nil {
		a.log.Error("cluster: etcd holds a topology this node cannot read; keeping the current one", "revision", version, "err", err)
		return
	}
	self := t.Node(a.cfg.ID)
	if self != nil && self.Role == cluster.Master {
		if !a.cfg.Replication.Promote() {
			a.log.Info("cluster: role change: promoted to primary", "revision", version, "node_id", a.cfg.ID)
		}
	}
	_, cur, err := a.cfg.Node.ApplyTopology(text, version)
	if err != nil {
		a.log.Warn("cluster: topology from etcd not applied", "revision", version, "err", err)
		return
	}
	a.revision.Store(cur.Version())
	if cur.Version() == version {
		a.appliedNow(t)
	}
	if self != nil && self.Role == cluster.Replica {
		if m := t.Node(self.MasterID); m != nil && !a.cfg.Replication.ReplicaOf(m.Host, m.Port) {
			a.log.Info("cluster: role change: replica", "revision", version, "node_id", a.cfg.ID, "master", m.Addr, "master_id", m.ID)
		}
	}
}

// lead runs the controller while this node holds the election: it decides
// now, then on every change under the cluster's prefix (a registration
// coming or going, a topology written), again one lease TTL after a
// decision that failed, and at the end of the start-up grace when it held
// a decision back. Nothing is read from etcd while nothing changes.
func (a *Agent) lead(ctx context.Context, elec *concurrency.Election, lost <-chan struct{}) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer func() {
		// Resigning lets another node lead at once after a clean stop; a
		// node cut off from etcd gives up quickly (its key expires).
		rctx, rcancel := context.WithTimeout(context.Background(), min(a.cfg.DialTimeout, a.cfg.LeaseTTL/2))
		_ = elec.Resign(rctx)
		rcancel()
	}()
	watch := a.cli.Watch(clientv3.WithRequireLeader(ctx), a.prefix, clientv3.WithPrefix())
	for {
		var retry <-chan time.Time // nil: wait for a change
		wait, err := a.decide(ctx, elec)
		switch {
		case err != nil && ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			a.log.Warn("cluster: controller decision failed; trying again", "err", err, "retry_in", a.cfg.LeaseTTL)
			retry = time.After(a.cfg.LeaseTTL)
		case wait > 0:
			retry = time.After(wait)
		}
		select {
		case <-lost:
			return errors.New("lease expired")
		case <-ctx.Done():
			return ctx.Err()
		case w, ok := <-watch:
			if !ok || w.Err() != nil {
				return fmt.Errorf("watch: %v", w.Err())
			}
		case <-retry:
		}
	}
}

// decide reads the live registrations and the topology, asks the offsets
// of the replicas that could replace a failed master, and publishes
// cluster.Decide's topology if it changed, in one transaction that
// succeeds only if the topology is still the one read and this node still
// leads.
func (a *Agent) decide(ctx context.Context, elec *concurrency.Election) (wait time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.LeaseTTL+a.cfg.DialTimeout)
	defer cancel()
	nodes, err := a.cli.Get(ctx, a.prefix+"nodes/", clientv3.WithPrefix())
	if err != nil {
		return 0, err
	}
	var live []cluster.Member
	for _, kv := range nodes.Kvs {
		var r registration
		if err := json.Unmarshal(kv.Value, &r); err != nil || !cluster.ValidID(r.ID) {
			a.log.Warn("cluster: ignoring an unreadable registration", "key", string(kv.Key))
			continue
		}
		live = append(live, cluster.Member{ID: r.ID, Host: r.Host, Port: r.Port})
	}
	tr, err := a.cli.Get(ctx, a.topologyKey())
	if err != nil {
		return 0, err
	}
	var cur *cluster.Topology
	var rev int64
	if len(tr.Kvs) > 0 {
		rev = tr.Kvs[0].ModRevision
		if cur, err = cluster.Parse(string(tr.Kvs[0].Value), rev); err != nil {
			return 0, fmt.Errorf("the topology in etcd is unreadable (fix it or delete %s): %w", a.topologyKey(), err)
		}
	}
	handover, hrev, err := a.readHandover(ctx)
	if err != nil {
		return 0, err
	}
	live, presumed := a.presumeAlive(cur, live)
	d := cluster.Decide(cur, live, a.offsets(ctx, cur, live), a.cfg.Shape, handover)
	if presumed > 0 {
		wait = a.startGrace() - time.Since(a.started)
		a.log.Info("cluster: controller waits for nodes of the topology to register after its start", "unregistered", presumed,
			"grace_left", wait)
	}
	if !d.Changed && handover == nil {
		return wait, nil
	}
	// A handover request is deleted in the same transaction, granted or
	// refused: its node reads the outcome from the topology.
	conds := []clientv3.Cmp{
		clientv3.Compare(clientv3.ModRevision(a.topologyKey()), "=", rev),
		clientv3.Compare(clientv3.CreateRevision(elec.Key()), "=", elec.Rev()),
	}
	var ops []clientv3.Op
	if d.Changed {
		ops = append(ops, clientv3.OpPut(a.topologyKey(), d.Text))
	}
	if handover != nil {
		conds = append(conds, clientv3.Compare(clientv3.ModRevision(a.handoverKey()), "=", hrev))
		ops = append(ops, clientv3.OpDelete(a.handoverKey()))
		if d.Refused != "" {
			a.log.Warn("cluster: controller refused a handover", "from", handover.From, "to", handover.To, "reason", d.Refused)
		}
	}
	resp, err := a.cli.Txn(ctx).If(conds...).Then(ops...).Commit()
	if err != nil {
		return 0, err
	}
	if !resp.Succeeded {
		a.log.Info("cluster: topology changed under the controller (or it lost the election); deciding again")
		return wait, nil
	}
	if !d.Changed {
		return wait, nil
	}
	a.log.Info("cluster: controller published a topology", "revision", resp.Header.Revision, "previous", rev,
		"live_nodes", len(live), "events", strings.Join(d.Events, "; "))
	return wait, nil
}

// startGrace is how long after its start a controller presumes alive the
// nodes of the topology it has never seen registered: after a restart of
// the whole cluster the first node elected must not fail the others over
// while they are still starting. A node it saw registered and now gone
// (its lease expired) is failed over at once.
func (a *Agent) startGrace() time.Duration { return 2 * a.cfg.LeaseTTL }

// runSeen records every id that registers while the agent runs (an idle
// watch at steady state), for presumeAlive.
func (a *Agent) runSeen() {
	defer a.wg.Done()
	for a.ctx.Err() == nil {
		ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(a.ctx))
		r, err := a.cli.Get(ctx, a.prefix+"nodes/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err == nil {
			a.markSeen(r.Kvs)
			for w := range a.cli.Watch(ctx, a.prefix+"nodes/", clientv3.WithPrefix(), clientv3.WithRev(r.Header.Revision+1)) {
				if w.Err() != nil {
					break
				}
				for _, ev := range w.Events {
					if ev.Type == clientv3.EventTypePut {
						a.markSeen([]*mvccpb.KeyValue{ev.Kv})
					}
				}
			}
		}
		cancel()
		if !a.sleep(a.cfg.LeaseTTL / 2) {
			return
		}
	}
}

func (a *Agent) markSeen(kvs []*mvccpb.KeyValue) {
	a.seenMu.Lock()
	defer a.seenMu.Unlock()
	for _, kv := range kvs {
		a.seen[strings.TrimPrefix(string(kv.Key), a.prefix+"nodes/")] = true
	}
}

// presumeAlive adds to live, within the start-up grace, the nodes of cur
// that are not registered and were never seen registered (at their
// topology address); it returns how many it added.
func (a *Agent) presumeAlive(cur *cluster.Topology, live []cluster.Member) ([]cluster.Member, int) {
	if cur == nil || time.Since(a.started) >= a.startGrace() {
		return live, 0
	}
	registered := map[string]bool{}
	for _, m := range live {
		registered[m.ID] = true
	}
	a.seenMu.Lock()
	defer a.seenMu.Unlock()
	n := 0
	for _, node := range cur.Nodes {
		if !registered[node.ID] && !a.seen[node.ID] {
			live = append(live, cluster.Member{ID: node.ID, Host: node.Host, Port: node.Port})
			n++
		}
	}
	return live, n
}

// offsets asks the live replicas of every master that is not live for
// their replication offset, all at once, within a lease TTL; a replica
// that does not answer is left out (it ranks last). A master with one live
// replica needs no answer.
func (a *Agent) offsets(ctx context.Context, cur *cluster.Topology, live []cluster.Member) map[string]int64 {
	if cur == nil {
		return nil
	}
	alive := map[string]bool{}
	for _, m := range live {
		alive[m.ID] = true
	}
	var ask []*cluster.Node
	for _, m := range cur.Nodes {
		if m.Role != cluster.Master || alive[m.ID] {
			continue
		}
		var rs []*cluster.Node
		for _, r := range cur.Replicas(m.ID) {
			if alive[r.ID] {
				rs = append(rs, r)
			}
		}
		if len(rs) > 1 {
			ask = append(ask, rs...)
		}
	}
	if len(ask) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, a.cfg.LeaseTTL)
	defer cancel()
	out := map[string]int64{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, r := range ask {
		wg.Go(func() {
			off, err := a.cfg.Offset(ctx, r.Host, r.Port)
			if err != nil {
				a.log.Warn("cluster: replica offset unknown", "node_id", r.ID, "addr", r.Addr, "err", err)
				return
			}
			mu.Lock()
			out[r.ID] = off
			mu.Unlock()
		})
	}
	wg.Wait()
	a.log.Info("cluster: replica offsets", slog.Any("offsets", out))
	return out
}

// roleOffset asks ROLE: a replica answers [slave host port state offset].
// A nil tc dials plaintext.
func roleOffset(user, pass string, tc *tls.Config) func(ctx context.Context, host string, port int) (int64, error) {
	return func(ctx context.Context, host string, port int) (int64, error) {
		c := redis.NewClient(&redis.Options{Addr: host + ":" + strconv.Itoa(port), Username: user, Password: pass,
			MaxRetries: -1, DisableIdentity: true, TLSConfig: tc})
		defer func() { _ = c.Close() }()
		v, err := c.Do(ctx, "ROLE").Slice()
		if err != nil {
			return 0, err
		}
		if len(v) >= 5 && v[0] == "slave" {
			if off, ok := v[4].(int64); ok {
				return off, nil
			}
		}
		if len(v) >= 2 && v[0] == "master" {
			if off, ok := v[1].(int64); ok {
				return off, nil
			}
		}
		return 0, fmt.Errorf("unexpected ROLE reply %v", v)
	}
}
