package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const statusEpoch = int64(1893456000000000000) // 2030-01-01, on a bucket boundary

// serveWithMetrics starts a server with the metrics listener (and so the
// status page) on free loopback ports, serving until the test ends; it
// returns the server and the page's base URL.
func serveWithMetrics(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	cfg.MetricsAddr = "127.0.0.1:0"
	var logs bytes.Buffer
	s := start(t, cfg, &logs)
	go func() { _ = s.Serve() }()
	base := "http://" + s.metrics.ln.Addr().String()
	require.Eventually(t, func() bool { return readyz(t, s) == http.StatusOK }, 10*time.Second, 5*time.Millisecond)
	return s, base
}

// get fetches url with optional Basic credentials and returns the status
// and body.
func get(t *testing.T, url string, creds ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if len(creds) == 2 {
		req.SetBasicAuth(creds[0], creds[1])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(b)
}

// statusJSON fetches /status.json.
func statusJSON(t *testing.T, base string, creds ...string) statusData {
	t.Helper()
	code, _, body := get(t, base+"/status.json", creds...)
	require.Equal(t, http.StatusOK, code, body)
	var d statusData
	require.NoError(t, json.Unmarshal([]byte(body), &d))
	return d
}

// TestStatusPageUnderLoad fetches the page from a real server while two
// clients send THROTTLE: one hammering a key that is always refused, one
// spreading admitted requests over many keys. The refused key tops the
// page's table and its JSON; the charts carry the refusals, and move on
// when the clock does.
func TestStatusPageUnderLoad(t *testing.T) {
	cfg := testConfig()
	cfg.EnableDebug = true
	s, base := serveWithMetrics(t, cfg)
	c := redis.NewClient(&redis.Options{Addr: s.Addr().String(), PoolSize: 4})
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	require.NoError(t, c.Do(ctx, "DEBUG", "CLOCK", "SET", statusEpoch).Err())

	const abuser = "ip:203.0.113.7"
	load := func(phase string, n int) {
		var wg sync.WaitGroup
		var sent atomic.Int64
		halfway := make(chan struct{})
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range n {
					key, burst := abuser, 0
					if w == 1 {
						key, burst = fmt.Sprintf("user:%s:%d", phase, i), 100
					}
					if err := c.Do(ctx, "THROTTLE", key, burst, 1, 60).Err(); err != nil {
						t.Error(err)
						return
					}
					if sent.Add(1) == int64(n) {
						close(halfway)
					}
				}
			}()
		}
		<-halfway // under load: the page is fetched while both clients still send
		code, hdr, body := get(t, base+"/")
		assert.Equal(t, http.StatusOK, code)
		assert.Equal(t, "text/html; charset=utf-8", hdr.Get("Content-Type"))
		assert.Contains(t, hdr.Get("Content-Security-Policy"), "default-src 'none'")
		assert.Regexp(t, `(?s)<table id="top-limited">.*<td class="key">`+regexp.QuoteMeta(abuser)+`</td>`, body)
		assert.Contains(t, body, "<polyline class=\"limited\"")
		assert.True(t, strings.HasSuffix(body, "</html>\n"), "the whole page rendered")
		wg.Wait()
	}
	load("a", 1500)
	d := statusJSON(t, base)
	require.NotEmpty(t, d.Top.Limited)
	assert.Equal(t, abuser, d.Top.Limited[0].Key)
	assert.InDelta(t, 1499, float64(d.Top.Limited[0].Count), 1499*0.2, "about every request but the first was refused (busy connections are sampled)")
	require.NotEmpty(t, d.Charts)
	all := d.Charts[0]
	assert.Equal(t, "all commands and policies", all.Title)
	assert.Len(t, all.Limited, 30, "5 minutes of 10 s buckets")
	assert.Zero(t, all.Limited[29], "the bucket still filling is not charted")
	assert.Equal(t, "command throttle", d.Charts[1].Title)

	// Ten seconds on, the first bucket is over: its refusals are the
	// charts' last point, a rate over its 10 s.
	require.NoError(t, c.Do(ctx, "DEBUG", "CLOCK", "SET", statusEpoch+int64(10*time.Second)).Err())
	load("b", 500)
	d2 := statusJSON(t, base)
	assert.InDelta(t, float64(d.Top.Limited[0].Count)/10, d2.Charts[0].Limited[29], 1, "the refusals of the first bucket, per second")
	assert.Equal(t, d2.Charts[0].Limited[29], d2.Charts[1].Limited[29], "all of them from THROTTLE")
	assert.Zero(t, d2.Charts[0].Limited[28])
	assert.Equal(t, [2]string{"role", "primary"}, d2.Sections[0].Rows[0], "the replication section")
	assert.Contains(t, d2.Sections[0].Rows, [2]string{"cluster", "disabled"})
	assert.Nil(t, d2.Persistence, "in memory")
}

// TestStatusPageLoadsNothingElse: every URL the page names is on the
// server itself (relative), so it works on an air-gapped host.
func TestStatusPageLoadsNothingElse(t *testing.T) {
	cfg := testConfig()
	cfg.DataDir = t.TempDir()
	s, base := serveWithMetrics(t, cfg)
	c := redis.NewClient(&redis.Options{Addr: s.Addr().String()})
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.Do(context.Background(), "THROTTLE", "k", 0, 1, 60).Err())
	code, _, body := get(t, base+"/")
	require.Equal(t, http.StatusOK, code)
	for _, m := range regexp.MustCompile(`(?i)(?:src|href|action)\s*=\s*"([^"]*)"`).FindAllStringSubmatch(body, -1) {
		assert.False(t, strings.Contains(m[1], "//") || strings.Contains(m[1], ":"), "the page names %q", m[1])
	}
	assert.NotContains(t, body, "@import")
	assert.NotContains(t, body, "url(")
	assert.Contains(t, body, "fsync everysec", "the persistence card")
	assert.True(t, strings.HasSuffix(body, "</html>\n"), "the whole page rendered")
	assert.Less(t, len(body), 64<<10, "small")
	d := statusJSON(t, base)
	require.NotNil(t, d.Persistence)
	assert.Equal(t, cfg.DataDir, d.Persistence.Dir)
}

// TestStatusPageProtection: without a password the page is served to
// loopback clients only; with one, only to clients giving a user's
// credentials, each seeing the keys its ACL key patterns allow; it can be
// turned off.
func TestStatusPageProtection(t *testing.T) {
	t.Run("no password: loopback only", func(t *testing.T) {
		s, base := serveWithMetrics(t, testConfig())
		code, _, _ := get(t, base+"/")
		assert.Equal(t, http.StatusOK, code)
		h := s.statusPage()
		for addr, want := range map[string]int{"192.0.2.10:5555": http.StatusForbidden, "[2001:db8::1]:80": http.StatusForbidden,
			"127.0.0.1:5555": http.StatusOK, "[::1]:80": http.StatusOK} {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.RemoteAddr = addr
			h.ServeHTTP(rec, req)
			assert.Equal(t, want, rec.Code, addr)
		}
	})
	t.Run("requirepass: HTTP Basic", func(t *testing.T) {
		cfg := testConfig()
		cfg.RequirePass = "s3cret"
		_, base := serveWithMetrics(t, cfg)
		code, hdr, _ := get(t, base+"/")
		assert.Equal(t, http.StatusUnauthorized, code, "loopback too must authenticate")
		assert.Contains(t, hdr.Get("WWW-Authenticate"), "Basic")
		code, _, _ = get(t, base+"/", "default", "wrong")
		assert.Equal(t, http.StatusUnauthorized, code)
		code, _, _ = get(t, base+"/status.json")
		assert.Equal(t, http.StatusUnauthorized, code)
		code, _, body := get(t, base+"/", "default", "s3cret")
		assert.Equal(t, http.StatusOK, code)
		assert.Contains(t, body, "signed in as <b>default</b>")
		code, _, _ = get(t, base+"/", "", "s3cret")
		assert.Equal(t, http.StatusOK, code, "an empty user name is the default user")
		code, _, _ = get(t, base+"/metrics")
		assert.Equal(t, http.StatusOK, code, "/metrics shows no keys and stays open to scrapers")
	})
	t.Run("ACL users see their own keys", func(t *testing.T) {
		acl := filepath.Join(t.TempDir(), "users.acl")
		require.NoError(t, os.WriteFile(acl, []byte("user default on >adminpw ~* +@all\n"+
			"user t1 on >p1 ~t1:* +@throttle +@connection\n"+
			"user watcher on >pw ~* +@connection\n"), 0o600))
		cfg := testConfig()
		cfg.ACLFile = acl
		s, base := serveWithMetrics(t, cfg)
		c := redis.NewClient(&redis.Options{Addr: s.Addr().String(), Password: "adminpw"})
		t.Cleanup(func() { _ = c.Close() })
		for _, k := range []string{"t1:a", "t2:b", "t2:b"} {
			for range 2 {
				require.NoError(t, c.Do(context.Background(), "THROTTLE", k, 0, 1, 60).Err())
			}
		}
		keys := func(d statusData) []string {
			var out []string
			for _, k := range d.Top.Limited {
				out = append(out, k.Key)
			}
			return out
		}
		assert.Equal(t, []string{"t2:b", "t1:a"}, keys(statusJSON(t, base, "default", "adminpw")))
		assert.Equal(t, []string{"t1:a"}, keys(statusJSON(t, base, "t1", "p1")))
		d := statusJSON(t, base, "watcher", "pw")
		assert.Empty(t, d.Top.Limited)
		assert.Equal(t, "the user may not run THROTTLE.TOP", d.Top.Note)
		code, _, _ := get(t, base+"/", "t1", "p2")
		assert.Equal(t, http.StatusUnauthorized, code)
	})
	t.Run("off", func(t *testing.T) {
		cfg := testConfig()
		cfg.StatusPage = false
		_, base := serveWithMetrics(t, cfg)
		code, _, _ := get(t, base+"/")
		assert.Equal(t, http.StatusNotFound, code)
		code, _, _ = get(t, base+"/metrics")
		assert.Equal(t, http.StatusOK, code)
	})
	t.Run("top keys off", func(t *testing.T) {
		cfg := testConfig()
		cfg.TopKeys = false
		_, base := serveWithMetrics(t, cfg)
		d := statusJSON(t, base)
		assert.Equal(t, "top keys are not recorded (top-keys is off)", d.Top.Note)
		assert.Empty(t, d.Charts)
	})
	t.Run("bad refresh", func(t *testing.T) {
		_, base := serveWithMetrics(t, testConfig())
		code, _, _ := get(t, base+"/?refresh=-1")
		assert.Equal(t, http.StatusBadRequest, code)
		code, _, body := get(t, base+"/?refresh=0")
		assert.Equal(t, http.StatusOK, code)
		assert.NotContains(t, body, `http-equiv="refresh"`)
	})
}
