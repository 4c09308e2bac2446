// Package deploy holds what runs beside Sluice rather than in it: the
// Grafana dashboard (grafana/sluice.json) and the Prometheus alerting rules
// (prometheus/sluice-alerts.yml, with their promtool unit tests). It has no
// code; its tests check that every metric the dashboard and the rules name
// is one a real server serves on /metrics, and run promtool on them.
package deploy
