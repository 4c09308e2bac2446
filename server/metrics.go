package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sluicehq/sluice/commands"
	"github.com/sluicehq/sluice/resp"
)

// collector turns the servers' counters into Prometheus metrics at scrape
// time, so serving pays nothing for metrics beyond the counters it keeps.
type collector struct {
	cmds  *commands.Server
	net   *resp.Server
	state *state // its data directory, once recovered

	commands, decisions, policies, latency, keys *prometheus.Desc
	expired                                      *prometheus.Desc
	connected, connections, rejected, errorsDesc *prometheus.Desc
	lagOps, lagSeconds, walSyncs, diskBytes      *prometheus.Desc
	persistenceInfo                              *prometheus.Desc
	usedMemory, maxMemory, queryBuffers, evicted *prometheus.Desc
}

func newCollector(st *state, rs *resp.Server) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("sluice_"+name, help, labels, nil)
	}
	return &collector{
		cmds: st.cmds, net: rs, state: st,
		lagOps:          d("persistence_unsynced_changes", "Changes recorded but not yet known to be on stable storage."),
		lagSeconds:      d("persistence_last_sync_age_seconds", "Seconds since the journal was last synced."),
		walSyncs:        d("persistence_fsyncs_total", "Journal syncs (fdatasync)."),
		diskBytes:       d("persistence_disk_bytes", "Bytes the data directory uses."),
		persistenceInfo: d("persistence_info", "1, with the --fsync mode as a label (alerts on sync lag skip fsync no).", "fsync"),
		commands:        d("commands_total", "Commands executed, by command.", "command"),
		decisions: d("throttle_decisions_total", "Rate-limit decisions (INFO decisionstats), by command, algorithm and decision.",
			"command", "algorithm", "decision"),
		policies:    d("policy_decisions_total", "POLICY.THROTTLE decisions (INFO decisionstats), by policy, algorithm and decision.", "policy", "algorithm", "decision"),
		latency:     d("command_duration_seconds", "Command execution time inside the server, as INFO commandstats times it (one call in 16 is added)."),
		keys:        d("keys", "Keys holding throttle state (including expired ones not yet swept)."),
		expired:     d("expired_keys_total", "Keys reclaimed by the expiry sweep."),
		connected:   d("connected_clients", "Open client connections."),
		connections: d("connections_total", "Client connections accepted."),
		rejected:    d("rejected_connections_total", "Connections refused (maxclients, per-IP cap)."),
		errorsDesc:  d("errors_total", "Errors by kind.", "kind"),

		usedMemory:   d("used_memory_bytes", "Memory --maxmemory counts: the Go heap's objects plus the keyspace's tables mapped off the heap (INFO used_memory)."),
		maxMemory:    d("maxmemory_bytes", "The --maxmemory bound (0: none)."),
		queryBuffers: d("query_buffer_bytes", "Bytes all connections' read buffers hold beyond their first 16 KiB (bounded by --max-query-buffer-total)."),
		evicted:      d("evicted_clients_total", "Connections closed because their read buffer would pass --max-query-buffer-total."),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.commands, c.decisions, c.policies, c.latency, c.keys, c.expired, c.connected, c.connections, c.rejected, c.errorsDesc,
		c.lagOps, c.lagSeconds, c.walSyncs, c.diskBytes, c.usedMemory, c.maxMemory, c.queryBuffers, c.evicted, c.persistenceInfo} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.cmds.Stats()
	ns := c.net.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, cs := range st.Commands {
		counter(c.commands, cs.Calls, cs.Name)
	}
	for _, d := range st.Decisions {
		counter(c.decisions, d.Allowed, d.Command, d.Algorithm, "allowed")
		counter(c.decisions, d.Limited, d.Command, d.Algorithm, "limited")
	}
	for _, d := range st.Policies {
		counter(c.policies, d.Allowed, d.Policy, d.Algorithm, "allowed")
		counter(c.policies, d.Limited, d.Policy, d.Algorithm, "limited")
	}
	bounds, counts, sum := c.cmds.Latency().Snapshot()
	buckets := make(map[float64]uint64, len(bounds))
	var total uint64
	for i, b := range bounds {
		total += counts[i]
		buckets[b] = total
	}
	ch <- prometheus.MustNewConstHistogram(c.latency, total, sum, buckets)
	ch <- prometheus.MustNewConstMetric(c.keys, prometheus.GaugeValue, float64(st.Keys))
	counter(c.expired, st.Expired)
	ch <- prometheus.MustNewConstMetric(c.connected, prometheus.GaugeValue, float64(ns.Connected))
	counter(c.connections, ns.TotalConnections)
	counter(c.rejected, ns.Rejected)
	counter(c.errorsDesc, ns.ProtocolErrors, "protocol")
	counter(c.errorsDesc, ns.PanicsRecovered, "panic")
	counter(c.errorsDesc, st.Rejected, "unknown_command_or_arity")
	counter(c.errorsDesc, st.AuthFailures, "auth_failed")
	counter(c.errorsDesc, st.DeniedCommand, "command_denied")
	counter(c.errorsDesc, st.DeniedKey, "key_denied")
	counter(c.errorsDesc, st.OOMRejected, "oom")
	mem := c.cmds.Memory()
	ch <- prometheus.MustNewConstMetric(c.usedMemory, prometheus.GaugeValue, float64(mem.Used))
	ch <- prometheus.MustNewConstMetric(c.maxMemory, prometheus.GaugeValue, float64(mem.Max))
	ch <- prometheus.MustNewConstMetric(c.queryBuffers, prometheus.GaugeValue, float64(ns.QueryBufferBytes))
	counter(c.evicted, ns.EvictedClients)
	if dur := c.state.dur.Load(); dur != nil {
		ps := dur.store.Stats()
		counter(c.errorsDesc, ps.WriteErrors, "persistence_write")
		ch <- prometheus.MustNewConstMetric(c.lagOps, prometheus.GaugeValue, float64(ps.Recorded-min(ps.Synced, ps.Recorded)))
		if !ps.LastSync.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.lagSeconds, prometheus.GaugeValue, time.Since(ps.LastSync).Seconds())
		}
		counter(c.walSyncs, ps.Fsyncs)
		ch <- prometheus.MustNewConstMetric(c.diskBytes, prometheus.GaugeValue, float64(ps.DiskBytes))
		ch <- prometheus.MustNewConstMetric(c.persistenceInfo, prometheus.GaugeValue, 1, ps.Mode.String())
	}
}

// metricsServer serves /metrics, /healthz (the process is up) and /readyz
// (it accepts commands: false until the listeners are up and once
// shutdown begins; with ?role=primary or ?role=replica, and it serves in
// that role now, see state.servesAs).
type metricsServer struct {
	http  *http.Server
	ln    net.Listener
	ready atomic.Bool
}

// startMetrics serves the metrics listener at addr; status, when not nil,
// serves the status page (status.go) at / and /status.json; servesAs
// answers /readyz?role=.
func startMetrics(addr string, reg *prometheus.Registry, log *slog.Logger, profiling bool, status http.Handler,
	servesAs func(role string) (reason string, ok bool)) (*metricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	m := &metricsServer{ln: ln}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError)}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !m.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		role := r.URL.Query().Get("role")
		if role == "" {
			_, _ = w.Write([]byte("ready\n"))
			return
		}
		reason, ok := servesAs(role)
		switch {
		case !ok:
			http.Error(w, fmt.Sprintf("unknown role %q: want primary or replica", role), http.StatusBadRequest)
		case reason != "":
			http.Error(w, reason, http.StatusServiceUnavailable)
		default:
			_, _ = w.Write([]byte("ready: " + role + "\n"))
		}
	})
	if status != nil {
		mux.Handle("GET /{$}", status)
		mux.Handle("GET /status.json", status)
	}
	if profiling {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		// Not pprof.Cmdline: the command line can hold --requirepass, and
		// no redaction list stays complete as flags are added.
		mux.HandleFunc("/debug/pprof/cmdline", func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "not served: the command line can hold secrets", http.StatusNotFound)
		})
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	m.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := m.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener failed", slog.Any("err", err))
		}
	}()
	return m, nil
}

// MetricsAddr is the metrics listener's address (with MetricsAddr port 0,
// the port it found), or nil without one.
func (s *Server) MetricsAddr() net.Addr {
	if s.metrics == nil {
		return nil
	}
	return s.metrics.ln.Addr()
}

func (m *metricsServer) shutdown(ctx context.Context) {
	if m != nil {
		_ = m.http.Shutdown(ctx)
	}
}

func (m *metricsServer) setReady(v bool) {
	if m != nil {
		m.ready.Store(v)
	}
}

func newRegistry(st *state, rs *resp.Server) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(st, rs), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}
