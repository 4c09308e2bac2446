package main

import (
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseConfigDefaults(t *testing.T) {
	cfg, err := parseConfig(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Peers, []string{"sluice"}) {
		t.Errorf("peers %v", cfg.Peers)
	}
	var names []string
	for _, w := range cfg.Workloads {
		names = append(names, w.Name)
	}
	if !slices.Equal(names, []string{"uniform", "uniform/p16", "hot", "zipf"}) {
		t.Errorf("workloads %v", names)
	}
	if cfg.Workloads[1].Pipeline != 16 || cfg.Workloads[0].Pipeline != 1 || cfg.Workloads[0].Conns != 50 {
		t.Errorf("workload options %+v", cfg.Workloads)
	}
	if cfg.Limit != (Limit{15, 30, 60, 1}) || cfg.Duration != 5*time.Second {
		t.Errorf("limit %v duration %v", cfg.Limit, cfg.Duration)
	}
	// The default full run must stay within about two minutes with the
	// three --compare redis peers.
	perRun := cfg.Duration + cfg.Warmup
	if total := time.Duration(3*len(cfg.Workloads)) * perRun; total > 100*time.Second {
		t.Errorf("default run takes %v of load alone", total)
	}
}

func TestResolvePeers(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--compare", "redis"}, []string{"sluice", "redis-lua", "redis-set"}},
		{[]string{"--compare", "redis", "--peers", "sluice,sluice-always"},
			[]string{"sluice", "sluice-always", "redis-lua", "redis-set", "redis-set-always"}},
		{[]string{"--peers", "sluice-everysec"}, []string{"sluice-everysec"}},
		{[]string{"--redis-cell-module", "/x.so"}, []string{"sluice", "redis-cell"}},
		{[]string{"--peers", "redis-set,redis-set", "--compare", "redis"}, []string{"redis-set", "redis-lua"}},
	} {
		cfg, err := parseConfig(c.args, io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		if !slices.Equal(cfg.Peers, c.want) {
			t.Errorf("%v: peers %v, want %v", c.args, cfg.Peers, c.want)
		}
	}
}

func TestParseWorkloads(t *testing.T) {
	w, err := parseWorkloads("hot/c1, zipf/p8/c10", 50, 1, 100, 1000)
	if err != nil {
		t.Fatal(err)
	}
	want := []Workload{
		{Name: "hot/c1", Dist: distHot, Keys: 1, Conns: 1, Pipeline: 1},
		{Name: "zipf/p8/c10", Dist: distZipf, Keys: 1000, Conns: 10, Pipeline: 8},
	}
	if !slices.Equal(w, want) {
		t.Fatalf("got %+v, want %+v", w, want)
	}
	for _, bad := range []string{"gauss", "hot/p0", "hot/x3", "hot/p", "uniform/pp"} {
		if _, err := parseWorkloads(bad, 50, 1, 100, 1000); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseLimit(t *testing.T) {
	for in, want := range map[string]Limit{
		"15 30 60 1": {15, 30, 60, 1}, "15,30,60": {15, 30, 60, 1}, "0 1 1 0": {0, 1, 1, 0},
	} {
		got, err := parseLimit(in)
		if err != nil || got != want {
			t.Errorf("parseLimit(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "1 2", "1 2 3 4 5", "-1 1 1", "1 0 1", "1 1 0", "a b c"} {
		if _, err := parseLimit(bad); err == nil {
			t.Errorf("parseLimit(%q) accepted", bad)
		}
	}
}

// TestValidateReportsEverything checks that several problems are reported at
// once rather than one per attempt.
func TestValidateReportsEverything(t *testing.T) {
	_, err := parseConfig([]string{"--peers", "nope", "--conns", "0", "--pin", "maybe", "--duration", "0", "--perf", "sometimes"}, io.Discard)
	if err == nil {
		t.Fatal("invalid configuration accepted")
	}
	for _, want := range []string{`unknown peer "nope"`, "--conns", "--pin", "--duration", "--perf"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestParseCPUList(t *testing.T) {
	got, err := parseCPUList("0-2,5,7-8")
	if err != nil || !slices.Equal(got, []int{0, 1, 2, 5, 7, 8}) {
		t.Fatalf("got %v, %v", got, err)
	}
	if _, err := parseCPUList("0-x"); err == nil {
		t.Fatal("bad list accepted")
	}
	if cpuList([]int{1, 3}) != "1,3" {
		t.Fatal("cpuList")
	}
}

func TestMedians(t *testing.T) {
	cfg := &Config{Workloads: []Workload{{Name: "hot"}, {Name: "zipf"}}, Peers: []string{"sluice", "redis-lua"}}
	r := func(wl, peer string, ops float64) Result { return Result{Workload: wl, Peer: peer, OpsPerSec: ops} }
	runs := map[runKey][]Result{
		{"hot", "sluice"}:    {r("hot", "sluice", 30), r("hot", "sluice", 10), r("hot", "sluice", 20)},
		{"hot", "redis-lua"}: {r("hot", "redis-lua", 5), r("hot", "redis-lua", 7)},
		{"zipf", "sluice"}:   {r("zipf", "sluice", 9)},
	}
	got := medians(cfg, runs)
	if len(got) != 3 {
		t.Fatalf("got %d results, want 3 (a pair without runs is left out)", len(got))
	}
	if got[0].Peer != "sluice" || got[0].OpsPerSec != 20 || !slices.Equal(got[0].RunsOpsPerSec, []float64{30, 10, 20}) {
		t.Errorf("hot/sluice: %+v", got[0])
	}
	if got[1].Peer != "redis-lua" || got[1].OpsPerSec != 5 {
		t.Errorf("hot/redis-lua: lower middle of two runs, got %+v", got[1])
	}
	if got[2].Workload != "zipf" || got[2].RunsOpsPerSec != nil {
		t.Errorf("zipf/sluice: a single run carries no run list, got %+v", got[2])
	}
}
