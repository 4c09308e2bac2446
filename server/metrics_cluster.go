package server

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluicehq/sluice/commands"
	"github.com/sluicehq/sluice/controlplane"
)

// clusterCollector turns the cluster counters into Prometheus metrics at
// scrape time. Routing counts only its refusals (the redirect path); a
// served command pays nothing for these.
type clusterCollector struct {
	cmds                                *commands.Server
	enabled, version, served, redirects *prometheus.Desc
	dropped, migrations, lastRefused    *prometheus.Desc
	fenced, leader, leaseOK, revision   *prometheus.Desc
	// link is the etcd agent's status; ok false without --cluster-etcd
	// (or before the agent started): no sluice_cluster_etcd_ metric then.
	link func() (st controlplane.Status, ok bool)
}

func newClusterCollector(cmds *commands.Server, link func() (controlplane.Status, bool)) *clusterCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("sluice_cluster_"+name, help, labels, nil)
	}
	return &clusterCollector{
		cmds:    cmds,
		link:    link,
		fenced:  d("fenced", "1 while the etcd fence refuses this node's slots (-CLUSTERDOWN: lease not renewed, or the topology not read yet), else 0 (INFO cluster_fenced)."),
		leader:  d("etcd_leader", "1 when this node runs the etcd controller (INFO cluster_etcd_leader); only with --cluster-etcd."),
		leaseOK: d("etcd_lease_ok", "1 when this node's etcd lease was renewed within its TTL (INFO cluster_etcd_lease_ok); only with --cluster-etcd."),
		revision: d("etcd_topology_revision", "The etcd revision of the topology last applied, 0 before one (INFO cluster_etcd_topology_revision); "+
			"only with --cluster-etcd."),
		enabled: d("enabled", "1 when cluster mode is on (--cluster-enabled), else 0 and no other sluice_cluster_ metric."),
		version: d("topology_version", "The topology's version (CLUSTERX VERSION, cluster_current_epoch); -1 before the first."),
		served:  d("slots_served", "Slots this node serves now: its own in the topology, minus those migrated away or refusing writes, plus those imported."),
		redirects: d("redirects_total", "Keyed commands refused by routing, by kind: moved (-MOVED), tryagain (-TRYAGAIN while a migrating slot drains), "+
			"crossslot (-CROSSSLOT), clusterdown (-CLUSTERDOWN before any topology).", "kind"),
		dropped:     d("keys_dropped_total", "Keys removed because this node no longer holds their slot."),
		migrations:  d("migrations_total", "Slot migrations from this node (CLUSTERX MIGRATE), by result: success, fail.", "result"),
		lastRefused: d("migration_writes_refused_seconds", "How long the last successful slot migration refused the slot's writes (-TRYAGAIN) while its last changes drained."),
	}
}

// Describe implements prometheus.Collector.
func (c *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.enabled, c.version, c.served, c.redirects, c.dropped, c.migrations, c.lastRefused,
		c.fenced, c.leader, c.leaseOK, c.revision} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.cmds.ClusterStats()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	if !st.Enabled {
		gauge(c.enabled, 0)
		return
	}
	gauge(c.enabled, 1)
	gauge(c.version, float64(st.Version))
	gauge(c.served, float64(st.Served))
	counter(c.redirects, st.Moved, "moved")
	counter(c.redirects, st.TryAgain, "tryagain")
	counter(c.redirects, st.CrossSlot, "crossslot")
	counter(c.redirects, st.ClusterDown, "clusterdown")
	counter(c.dropped, st.KeysDropped)
	counter(c.migrations, st.Migrated, "success")
	counter(c.migrations, st.MigrateFailed, "fail")
	gauge(c.lastRefused, st.LastWritesRefused.Seconds())
	gauge(c.fenced, b2f(c.cmds.Fenced()))
	if link, ok := c.link(); ok {
		gauge(c.leader, b2f(link.Leader))
		gauge(c.leaseOK, b2f(link.LeaseOK))
		gauge(c.revision, float64(link.Revision))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
