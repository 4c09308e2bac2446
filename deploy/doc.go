// Package deploy holds what runs beside Sluice rather than in it: the
// Grafana dashboard (grafana/sluice.json), the Prometheus alerting rules
// (prometheus/sluice-alerts.yml, with their promtool unit tests), and the
// deployment files of a cluster with automatic failover on etcd
// (kubernetes/sluice.yaml, compose/compose.yaml). It has no code; its
// tests check that every metric the dashboard and the rules name is one a
// real server serves on /metrics, run promtool on them, and check the
// deployment files against the real binary's flags, a real server's probe
// endpoints and each other (ports, Services, etcd endpoints, the cluster's
// shape).
package deploy
