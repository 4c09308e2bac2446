package server

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/sluicehq/sluice/acl"
	"github.com/sluicehq/sluice/commands"
	"github.com/sluicehq/sluice/resp"
	"github.com/sluicehq/sluice/topkeys"
)

// The status page: what the server is doing, readable in a browser without
// JavaScript and without anything fetched from elsewhere (its template and
// style are embedded). It shows keys, so it is protected like the data:
// served to loopback clients only while no password is set, and otherwise
// only to clients that give a user's name and password (HTTP Basic), who
// then see the keys their ACL key patterns allow.

//go:embed status/page.html status/style.css
var statusAssets embed.FS

var statusTemplate = template.Must(template.New("page.html").Funcs(template.FuncMap{
	"bytes": humanBytes,
	"rate":  func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) },
}).ParseFS(statusAssets, "status/page.html"))

var statusStyle = func() template.CSS {
	b, err := statusAssets.ReadFile("status/style.css")
	if err != nil {
		panic(err)
	}
	return template.CSS(b) // our own file, embedded: trusted
}()

// Status page defaults.
const (
	statusWindow     = 60 // seconds of top keys
	statusTopKeys    = 20 // rows of top limited keys
	statusRefresh    = 5  // seconds between reloads (the <meta> refresh)
	statusMaxRefresh = 3600
	statusChartSpan  = 5 * time.Minute
)

// StatusSection is one titled table of the status page. Replication and
// cluster mode add theirs through statusPage.sections when they land.
type StatusSection struct {
	Title string      `json:"title"`
	Rows  [][2]string `json:"rows"`
}

// statusPage serves the status page at / and its data at /status.json.
type statusPage struct {
	cmds     *commands.Server
	net      *resp.Server
	st       *state // its dur is nil in memory and until recovery opened the data directory
	log      *slog.Logger
	auth     bool // a password is set: ask for one
	started  time.Time
	isLocal  func(remoteAddr string) bool
	sections []func() StatusSection // more sections (replication, cluster)
}

// statusPage returns the status page's handler, or nil when it is off.
func (s *Server) statusPage() http.Handler {
	if !s.cfg.StatusPage {
		return nil
	}
	return &statusPage{
		cmds: s.state.cmds, net: s.net, st: s.state, log: s.log,
		auth: s.net.AuthRequired, started: time.Now(), isLocal: isLoopbackAddr,
		sections: []func() StatusSection{s.replicationSection},
	}
}

// replicationSection shows this node's replication links and, in cluster
// mode, its place in the cluster.
func (s *Server) replicationSection() StatusSection {
	rs := s.state.repl.Status()
	role := "primary"
	if rs.Replica {
		role = fmt.Sprintf("replica of %s:%d (link %s)", rs.PrimaryHost, rs.PrimaryPort, rs.LinkState)
	}
	rows := [][2]string{{"role", role}, {"replication offset", strconv.FormatInt(rs.Offset, 10)}}
	if len(rs.Replicas) == 0 {
		rows = append(rows, [2]string{"replicas", "none"})
	}
	for _, r := range rs.Replicas {
		rows = append(rows, [2]string{"replica " + net.JoinHostPort(r.IP, strconv.Itoa(r.Port)),
			fmt.Sprintf("%s, %d bytes behind, last ack %v ago", r.State, r.LagBytes, r.Lag.Round(time.Millisecond))})
	}
	if st := s.state.cluster; st == nil {
		rows = append(rows, [2]string{"cluster", "disabled"})
	} else {
		v := st.View()
		rows = append(rows, [2]string{"cluster", fmt.Sprintf("node %s, topology version %d", v.ID, v.Version())})
	}
	return StatusSection{Title: "Replication and cluster", Rows: rows}
}

// isLoopbackAddr reports whether a "host:port" is on a loopback interface.
func isLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// authorize admits the request or answers it: it returns the user whose
// keys the page may show (nil: every key) and whether to go on.
func (p *statusPage) authorize(w http.ResponseWriter, r *http.Request) (*acl.User, bool) {
	if !p.auth {
		if !p.isLocal(r.RemoteAddr) {
			http.Error(w, "403 forbidden: the status page shows keys, so without a password it is served to loopback "+
				"clients only; set --requirepass or ACL users (--aclfile) to serve it to others with HTTP Basic "+
				"authentication, or --status-page=false to turn it off", http.StatusForbidden)
			return nil, false
		}
		return nil, true
	}
	name, pw, ok := r.BasicAuth()
	if ok && name == "" {
		name = "default"
	}
	var u *acl.User
	if ok {
		u = p.cmds.Authenticate(r.RemoteAddr, name, pw)
	}
	if u == nil { // counted with AUTH's failures (INFO, metrics); not logged, which a guesser could flood
		w.Header().Set("WWW-Authenticate", `Basic realm="sluice", charset="UTF-8"`)
		http.Error(w, "401 unauthorized: give a Sluice user's name and password (the default user's password for "+
			"--requirepass)", http.StatusUnauthorized)
		return nil, false
	}
	return u, true
}

func (p *statusPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u, ok := p.authorize(w, r)
	if !ok {
		return
	}
	refresh := statusRefresh
	if v := r.URL.Query().Get("refresh"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > statusMaxRefresh {
			http.Error(w, "400 bad request: refresh must be 0 (off) to 3600 seconds", http.StatusBadRequest)
			return
		}
		refresh = n
	}
	d := p.collect(u)
	d.Refresh = refresh
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if r.URL.Path == "/status.json" {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(d)
		return
	}
	// Nothing is loaded from anywhere, not even from this host.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
	var page bytes.Buffer // rendered whole first: a failure is a 500, not half a page
	if err := statusTemplate.Execute(&page, d); err != nil {
		p.log.Error("status page: rendering failed", slog.Any("err", err))
		http.Error(w, "500 internal server error: the status page failed to render (see the server log)", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(page.Bytes())
}

// statusData is everything the page shows, also served as JSON.
type statusData struct {
	Version     string             `json:"version"`
	Now         time.Time          `json:"now"` // the server clock
	Uptime      string             `json:"uptime"`
	User        string             `json:"user,omitempty"`
	Clients     resp.Stats         `json:"clients"`
	Memory      commands.Memory    `json:"memory"`
	MemoryPct   float64            `json:"memory_percent,omitempty"` // of maxmemory
	Keys        int                `json:"keys"`
	Allowed     uint64             `json:"allowed_total"`
	Limited     uint64             `json:"limited_total"`
	Persistence *statusPersistence `json:"persistence"` // nil in memory
	Sections    []StatusSection    `json:"sections"`
	Top         statusTop          `json:"top"`
	Charts      []statusChart      `json:"charts"`
	ChartSpan   string             `json:"chart_span"`
	Refresh     int                `json:"-"`
	Style       template.CSS       `json:"-"`
}

// statusPersistence is the durable copy's state.
type statusPersistence struct {
	Dir           string  `json:"dir"`
	Mode          string  `json:"fsync"`
	Unsynced      uint64  `json:"unsynced_changes"`
	LastSyncAge   float64 `json:"last_sync_age_seconds"` // -1 before the first sync
	WriteErrors   uint64  `json:"write_errors"`
	DiskBytes     int64   `json:"disk_bytes"`
	Failed        string  `json:"failed,omitempty"` // why it stopped writing
	LastSyncShown string  `json:"-"`
}

// statusTop is the top keys.
type statusTop struct {
	Window   int         `json:"window_seconds"`
	Limited  []statusKey `json:"limited"`
	Allowed  []statusKey `json:"allowed"`
	MaxError uint64      `json:"max_error"` // of the limited counts
	Note     string      `json:"note,omitempty"`
}

// statusKey is one row of the top keys.
type statusKey struct {
	Key       string  `json:"key"`
	Count     uint64  `json:"count"`
	PerSecond float64 `json:"per_second"`
	Truncated bool    `json:"truncated,omitempty"`
}

// collect gathers the page's data for user u (nil: every key).
func (p *statusPage) collect(u *acl.User) statusData {
	now := p.cmds.Clock().Now()
	st := p.cmds.Stats()
	d := statusData{
		Version: commands.Version,
		Now:     time.Unix(0, now).UTC(),
		Uptime:  time.Since(p.started).Round(time.Second).String(),
		Clients: p.net.Stats(),
		Memory:  p.cmds.Memory(),
		Keys:    st.Keys,
		Allowed: st.Allowed,
		Limited: st.Limited,
		Style:   statusStyle,
	}
	if u != nil {
		d.User = u.Name
	}
	if d.Memory.Max > 0 {
		d.MemoryPct = 100 * float64(d.Memory.Used) / float64(d.Memory.Max)
	}
	if dur := p.st.dur.Load(); dur != nil {
		ps := dur.store.Stats()
		sp := &statusPersistence{Dir: ps.Dir, Mode: ps.Mode.String(), Unsynced: ps.Recorded - min(ps.Synced, ps.Recorded),
			LastSyncAge: -1, WriteErrors: ps.WriteErrors, DiskBytes: int64(ps.DiskBytes), LastSyncShown: "never"}
		if !ps.LastSync.IsZero() {
			age := time.Since(ps.LastSync)
			sp.LastSyncAge, sp.LastSyncShown = age.Seconds(), age.Round(time.Millisecond).String()+" ago"
		}
		if ps.Err != nil {
			sp.Failed = ps.Err.Error()
		}
		d.Persistence = sp
	}
	for _, f := range p.sections {
		d.Sections = append(d.Sections, f())
	}
	d.Top = p.top(u, now)
	if r := p.cmds.TopKeys(); r != nil {
		d.Charts, d.ChartSpan = charts(r.Rates(now, statusChartSpan)), strconv.Itoa(int(statusChartSpan.Minutes()))+" min"
	}
	return d
}

// top reads the top limited and allowed keys u may see.
func (p *statusPage) top(u *acl.User, now int64) statusTop {
	t := statusTop{Window: statusWindow}
	rows := func(o topkeys.Outcome, n int) ([]statusKey, topkeys.Result, error) {
		res, err := p.cmds.TopKeysFor(u, topkeys.Query{Now: now, Window: statusWindow * time.Second, Outcome: o, Count: n})
		if err != nil {
			return nil, res, err
		}
		secs := max(float64(res.To-res.From)/1e9, 1)
		out := make([]statusKey, 0, len(res.Entries))
		for _, e := range res.Entries {
			out = append(out, statusKey{Key: e.Key, Count: e.Count, PerSecond: float64(e.Count) / secs, Truncated: e.Truncated})
		}
		return out, res, nil
	}
	var res topkeys.Result
	var err error
	if t.Limited, res, err = rows(topkeys.Limited, statusTopKeys); err != nil {
		t.Note = err.Error()
		return t
	}
	t.MaxError = res.MaxError
	t.Allowed, _, _ = rows(topkeys.Allowed, statusTopKeys/2)
	return t
}

// humanBytes spells a byte count with a binary unit: 1.5 MiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return strconv.FormatFloat(float64(n)/float64(div), 'f', 1, 64) + " " + string("KMGTPE"[exp]) + "iB"
}
