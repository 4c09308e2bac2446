package server

import (
	"bytes"
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDocumentedDefaults keeps each field's comment ("Default X.") in step
// with Default, the one definition.
func TestDocumentedDefaults(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "config.go", nil, parser.ParseComments)
	require.NoError(t, err)
	documented := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok || ts.Name.Name != "Config" {
			return true
		}
		for _, field := range ts.Type.(*ast.StructType).Fields.List {
			m := regexp.MustCompile(`Default ("[^"]*"|\S+)\.\s*$`).FindStringSubmatch(field.Doc.Text())
			require.NotNil(t, m, "field %s: no \"Default X.\" at the end of its comment", field.Names[0])
			documented[field.Names[0].Name] = m[1]
		}
		return false
	})
	def := reflect.ValueOf(Default())
	require.Len(t, documented, def.NumField())
	for i := range def.NumField() {
		name := def.Type().Field(i).Name
		want := fmt.Sprint(def.Field(i).Interface())
		if def.Field(i).Kind() == reflect.String {
			want = strconv.Quote(want)
		}
		assert.Equal(t, want, documented[name], "the comment of %s", name)
	}
}

// TestEverySettingOnce: every field of Config is one setting, under a name
// of its own, so that no field lacks a flag.
func TestEverySettingOnce(t *testing.T) {
	var c Config
	fields := map[uintptr]string{}
	v := reflect.ValueOf(&c).Elem()
	for i := range v.NumField() {
		fields[v.Field(i).Addr().Pointer()] = v.Type().Field(i).Name
	}
	delete(fields, reflect.ValueOf(&c.ListenAddr).Pointer()) // for tests and embedders only
	names := map[string]bool{}
	for _, s := range c.Settings() {
		assert.False(t, names[s.Name], "%s twice", s.Name)
		names[s.Name] = true
		assert.NotEmpty(t, s.Usage, s.Name)
		assert.Contains(t, []string{"sluice", "limits", "security", "persistence", "replication", "policies", "observability", "cluster"}, s.Section, s.Name)
		p := reflect.ValueOf(s.Value).Pointer()
		require.Contains(t, fields, p, "%s points at no field of c", s.Name)
		delete(fields, p)
	}
	assert.Empty(t, fields, "fields without a setting")
}

// TestShown is CONFIG GET * of a configuration: Redis's spellings (yes/no,
// timeout in seconds), the password redacted, the fixed answers.
func TestShown(t *testing.T) {
	c := Default()
	c.Bind = "127.0.0.1, ::1"
	c.IdleTimeout = 90 * time.Second
	c.RequirePassFile = "/run/secret"
	c.TLSKeyFile = "/etc/key.pem"
	c.ReplicaAnnounceIP, c.ReplicaAnnouncePort = "203.0.113.7", 16379
	got := map[string]string{}
	var order []string
	for _, s := range c.shown() {
		got[s.Name] = s.Value
		order = append(order, s.Name)
	}
	assert.Equal(t, "127.0.0.1 ::1", got["bind"])
	assert.Equal(t, "6379", got["port"])
	assert.Equal(t, "90", got["timeout"])
	assert.Equal(t, "10s", got["write-timeout"])
	assert.Equal(t, "yes", got["protected-mode"])
	assert.Equal(t, "no", got["enable-debug-command"])
	assert.Equal(t, "<redacted>", got["requirepass"])
	assert.Equal(t, "everysec", got["fsync"])
	assert.Equal(t, "yes", got["journal-load-truncated"])
	assert.Equal(t, "no", got["journal-accept-corruption"])
	assert.Equal(t, "1", got["databases"])
	assert.Equal(t, "203.0.113.7", got["replica-announce-ip"])
	assert.Equal(t, "16379", got["replica-announce-port"])
	assert.NotContains(t, got, "tls-key-file")
	assert.NotContains(t, got, "requirepass-file")
	assert.Equal(t, []string{"bind", "port", "maxclients"}, order[:3])
	assert.Equal(t, "enable-debug-command", order[len(order)-1])
}

func TestValidateReportsEveryProblem(t *testing.T) {
	require.NoError(t, Default().Validate())
	assert.Error(t, Config{}.Validate(), "the zero Config is not a configuration")

	c := Default()
	c.Port = 70000
	c.Bind = " , "
	c.Shards = 0
	c.MaxQueryBuffer = int(c.MaxBulkLen)
	c.IdleTimeout = -time.Second
	c.RequirePass, c.RequirePassFile = "a", "b"
	c.TLSPort, c.TLSAuthClients = 6380, "maybe"
	c.Pprof = true
	c.FoldBytes = 1
	c.Fsync = "sometimes"
	c.ReplicaAnnounceIP, c.ReplicaAnnouncePort = "replica-1", 65536
	err := c.Validate()
	require.Error(t, err)
	want := []string{
		"--port 70000", "--bind: no address", "--shards 0", "--client-query-buffer-limit 1048576: must exceed",
		"--timeout -1s", "--requirepass and --requirepass-file", "--tls-port needs --tls-cert-file",
		`--tls-auth-clients "maybe"`, "needs --tls-ca-cert-file", "--pprof needs --metrics-addr", "--fold-bytes 1", `--fsync: fsync mode "sometimes"`,
		`--replica-announce-ip "replica-1": must be an IP address`, "--replica-announce-port 65536: must be 0..65535",
	}
	for _, w := range want {
		assert.Contains(t, err.Error(), w)
	}
	assert.Len(t, strings.Split(err.Error(), "\n"), len(want))
}

func TestValidateClusterEtcd(t *testing.T) {
	c := Default()
	c.ClusterEtcd = "http://127.0.0.1:2379"
	c.Bind = "0.0.0.0"
	c.ClusterName = "a/b"
	c.ClusterLeaseTTL = 1500 * time.Millisecond
	c.ClusterPrimaries = 0
	c.ClusterReplicas = -1
	c.ClusterPartitionPolicy = "hope"
	err := c.Validate()
	require.Error(t, err)
	want := []string{
		"--cluster-etcd needs --cluster-enabled yes", `--cluster-name "a/b"`, "--cluster-lease-ttl 1.5s: must be whole seconds",
		"--cluster-primaries 0", "--cluster-replicas -1", `--cluster-partition-policy "hope": must be serve or fence`,
	}
	for _, w := range want {
		assert.Contains(t, err.Error(), w)
	}
	assert.Len(t, strings.Split(err.Error(), "\n"), len(want))

	c = Default()
	c.ClusterEnabled, c.ClusterEtcd, c.Bind = true, "http://127.0.0.1:2379", "0.0.0.0"
	assert.ErrorContains(t, c.Validate(), "--cluster-etcd needs --cluster-announce-ip", "a wildcard bind names no address to register")
	c.ClusterAnnounceHostname = "node-0.sluice"
	require.NoError(t, c.Validate())
	host, err := c.clusterHost()
	require.NoError(t, err)
	assert.Equal(t, "node-0.sluice", host)
	c.ClusterAnnounceIP = "10.0.0.7"
	host, _ = c.clusterHost()
	assert.Equal(t, "10.0.0.7", host, "the announced IP comes first")
	c = Default()
	c.ClusterEnabled, c.ClusterEtcd = true, " http://a:2379, http://b:2379 ,"
	require.NoError(t, c.Validate())
	host, _ = c.clusterHost()
	assert.Equal(t, "127.0.0.1", host, "a --bind naming one host")
	assert.Equal(t, []string{"http://a:2379", "http://b:2379"}, c.etcdEndpoints())

	c.Port, c.TLSPort, c.TLSCertFile, c.TLSKeyFile, c.TLSAuthClients = 0, 6380, "cert.pem", "key.pem", "no"
	assert.EqualError(t, c.Validate(), "--cluster-etcd with --port 0 (TLS only) needs --tls-replication: the nodes dial each other's TLS port")
	c.TLSReplication = true
	require.NoError(t, c.Validate())
}

// TestSlowlogSettings: the slow log's settings under Redis's names, their
// bounds, and the server wired to them (a command logged with 0).
func TestSlowlogSettings(t *testing.T) {
	c := Default()
	got := map[string]string{}
	for _, s := range c.shown() {
		got[s.Name] = s.Value
	}
	assert.Equal(t, "10000", got["slowlog-log-slower-than"])
	assert.Equal(t, "128", got["slowlog-max-len"])

	c.SlowlogLogSlowerThan, c.SlowlogMaxLen = -2, -1
	err := c.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--slowlog-log-slower-than -2")
	assert.Contains(t, err.Error(), "--slowlog-max-len -1")

	cfg := testConfig()
	cfg.SlowlogLogSlowerThan, cfg.SlowlogMaxLen = 0, 2
	s := start(t, cfg, &bytes.Buffer{})
	go func() { _ = s.Serve() }()
	rc := redis.NewClient(&redis.Options{Addr: s.Addr().String(), MaxRetries: -1})
	t.Cleanup(func() { _ = rc.Close() })
	ctx := context.Background()
	shown, err := rc.ConfigGet(ctx, "slowlog-*").Result()
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"slowlog-log-slower-than": "0", "slowlog-max-len": "2"}, shown)
	for range 3 {
		require.NoError(t, rc.Ping(ctx).Err())
	}
	n, err := rc.Do(ctx, "SLOWLOG", "LEN").Int64()
	require.NoError(t, err)
	assert.Equal(t, int64(2), n, "every command logged, two kept")
}
