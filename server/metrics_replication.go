package server

import (
	"net"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluicehq/sluice/replication"
)

// replicationCollector turns the replication node's state into Prometheus
// metrics at scrape time.
type replicationCollector struct {
	repl                                                          *replication.Node
	replica, offset, replicas, lagBytes, ackAge, served, received *prometheus.Desc
	backlog, linkUp, lastIO, clockOffset, lag                     *prometheus.Desc
}

func newReplicationCollector(repl *replication.Node) *replicationCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("sluice_replication_"+name, help, labels, nil)
	}
	return &replicationCollector{
		repl:        repl,
		replica:     d("is_replica", "1 when this server follows a primary (role:slave), 0 on a primary."),
		offset:      d("offset_bytes", "The replication stream's offset: master_repl_offset on a primary, slave_repl_offset on a replica."),
		replicas:    d("connected_replicas", "Replicas connected to this server."),
		lagBytes:    d("replica_lag_bytes", "Bytes of the stream a replica has not acknowledged yet (acknowledgements come every second).", "replica"),
		ackAge:      d("replica_ack_age_seconds", "Seconds since a replica last acknowledged (INFO's lag).", "replica"),
		served:      d("resyncs_served_total", "Resyncs served to replicas, by kind: full, partial, partial_refused (asked to continue, got a full one).", "kind"),
		received:    d("resyncs_received_total", "Resyncs received from primaries, by kind: full, partial.", "kind"),
		backlog:     d("backlog_bytes", "Bytes of the stream held in the backlog (repl_backlog_histlen)."),
		linkUp:      d("link_up", "On a replica: 1 while the link to the primary streams."),
		lastIO:      d("primary_last_io_seconds", "On a replica: seconds since the primary last sent anything."),
		clockOffset: d("clock_offset_seconds", "On a replica: its wall clock minus the primary's, at the last heartbeat."),
		lag: d("lag_seconds", "On a replica: how far its data trails the primary's (INFO's master_repl_lag_ms), from the heartbeats: "+
			"the age of the newest one applied when it was applied, or the time since the next was due. The clock offset adds to it."),
	}
}

// Describe implements prometheus.Collector.
func (c *replicationCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.replica, c.offset, c.replicas, c.lagBytes, c.ackAge, c.served, c.received,
		c.backlog, c.linkUp, c.lastIO, c.clockOffset, c.lag} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *replicationCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.repl.Status()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	flag := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	gauge(c.replica, flag(st.Replica))
	gauge(c.offset, float64(st.Offset))
	gauge(c.replicas, float64(len(st.Replicas)))
	for _, rs := range st.Replicas {
		name := net.JoinHostPort(rs.IP, strconv.Itoa(rs.Port))
		gauge(c.lagBytes, float64(rs.LagBytes), name)
		gauge(c.ackAge, rs.Lag.Seconds(), name)
	}
	counter(c.served, st.SyncFull, "full")
	counter(c.served, st.SyncPartialOK, "partial")
	counter(c.served, st.SyncPartialErr, "partial_refused")
	counter(c.received, st.LinkFullSyncs, "full")
	counter(c.received, st.LinkPartials, "partial")
	gauge(c.backlog, float64(st.Backlog.End-st.Backlog.First))
	if st.Replica {
		gauge(c.linkUp, flag(st.LinkState == "connected"))
		if st.LastIO >= 0 {
			gauge(c.lastIO, st.LastIO.Seconds())
		}
		if st.ClockKnown {
			gauge(c.clockOffset, st.ClockOffset.Seconds())
		}
		if st.LagKnown {
			gauge(c.lag, st.Lag.Seconds())
		}
	}
}
