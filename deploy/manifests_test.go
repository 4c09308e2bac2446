package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

const (
	kubernetesFile = "kubernetes/sluice.yaml"
	composeFile    = "compose/compose.yaml"
)

// pendingFlags are flags the deployment files pass that this branch's
// binary does not define yet: the test checks their values' shape instead
// of asking the binary, and fails once the binary knows one (then remove
// it here). None now: the etcd control plane (issue 20) defined the last.
var pendingFlags = map[string]func(string) error{}

// flag is one --name value (or --name=value) of a command line.
type flag struct{ name, value string }

// parseFlags reads a command line made of --name value and --name=value
// words (Sluice's flags all take a value in these files).
func parseFlags(t *testing.T, where string, args []string) []flag {
	t.Helper()
	var out []flag
	for i := 0; i < len(args); i++ {
		name, ok := strings.CutPrefix(args[i], "--")
		require.True(t, ok, "%s: %q is not a flag (a value without its flag?)", where, args[i])
		if n, v, eq := strings.Cut(name, "="); eq {
			out = append(out, flag{n, v})
			continue
		}
		require.Less(t, i+1, len(args), "%s: --%s has no value", where, name)
		out = append(out, flag{name, args[i+1]})
		i++
	}
	return out
}

// flagValue is the value of the last --name in flags ("" without one).
func flagValue(flags []flag, name string) string {
	v := ""
	for _, f := range flags {
		if f.name == name {
			v = f.value
		}
	}
	return v
}

// binary is cmd/sluice, built once for the package's tests (TestMain
// removes it).
var binary struct {
	once      sync.Once
	dir, path string
	err       error
}

// sluiceBinary builds cmd/sluice, once for all the tests.
func sluiceBinary(t *testing.T) string {
	t.Helper()
	binary.once.Do(func() {
		if binary.dir, binary.err = os.MkdirTemp("", "sluice-deploy-test-"); binary.err != nil {
			return
		}
		binary.path = filepath.Join(binary.dir, "sluice")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", binary.path, "../cmd/sluice").CombinedOutput()
		if err != nil {
			binary.err = fmt.Errorf("go build ../cmd/sluice: %w\n%s", err, out)
		}
	})
	require.NoError(t, binary.err)
	return binary.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binary.dir != "" {
		os.RemoveAll(binary.dir)
	}
	os.Exit(code)
}

// acceptsFlags runs the real binary with args and --version, which parses
// every flag (an unknown one, or a value that does not parse for its type,
// is an error) and exits before serving: nil when it accepts them.
func acceptsFlags(bin string, args []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(append([]string{}, args...), "--version")...)
	cmd.Env = []string{} // no SLUICE_* from the test's environment
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// checkSluiceFlags checks a Sluice container's command line and SLUICE_*
// variables against the real binary: every flag and variable is one it
// knows with a value it parses, except the pending flags, whose values are
// checked for shape, and which the binary must not know yet.
func checkSluiceFlags(t *testing.T, bin, where string, flags []flag, env map[string]string) {
	t.Helper()
	var args []string
	for _, f := range flags {
		if check, ok := pendingFlags[f.name]; ok {
			assert.NoError(t, check(f.value), "%s: --%s %s", where, f.name, f.value)
			continue
		}
		args = append(args, "--"+f.name, f.value)
	}
	for k, v := range env {
		if name, ok := strings.CutPrefix(k, "SLUICE_"); ok {
			args = append(args, "--"+strings.ReplaceAll(strings.ToLower(name), "_", "-"), v)
		}
	}
	assert.NoError(t, acceptsFlags(bin, args), "%s: sluice %s", where, strings.Join(args, " "))
}

// TestPendingFlagsAreStillPending fails once the binary knows a flag of
// pendingFlags, so that the allow-list does not outlive its reason.
func TestPendingFlagsAreStillPending(t *testing.T) {
	bin := sluiceBinary(t)
	for name := range pendingFlags {
		err := acceptsFlags(bin, []string{"--" + name, "x"})
		if err == nil || !strings.Contains(err.Error(), "unknown flag --"+name+" ") {
			t.Errorf("sluice now defines --%s (%v): remove it from pendingFlags in deploy/manifests_test.go", name, err)
		}
	}
}

// probesAnswer checks that every path answers 200 on a real, ready
// server's metrics listener.
func probesAnswer(t *testing.T, paths map[string]bool) {
	t.Helper()
	s := startServer(t)
	for p := range paths {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.MetricsAddr().String()+p, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		assert.Equal(t, http.StatusOK, resp.StatusCode, "probe %s on a ready server: %s", p, body)
	}
}

// The parts of Kubernetes objects the test reads.
type (
	meta struct {
		Name   string
		Labels map[string]string
	}
	service struct {
		Metadata meta
		Spec     struct {
			ClusterIP                string `yaml:"clusterIP"`
			PublishNotReadyAddresses bool   `yaml:"publishNotReadyAddresses"`
			Selector                 map[string]string
			Ports                    []struct {
				Name       string
				Port       int
				TargetPort string `yaml:"targetPort"`
			}
		}
	}
	statefulSet struct {
		Metadata meta
		Spec     struct {
			ServiceName         string `yaml:"serviceName"`
			Replicas            int
			PodManagementPolicy string `yaml:"podManagementPolicy"`
			Selector            struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			}
			Template struct {
				Metadata meta
				Spec     struct{ Containers []container }
			}
			VolumeClaimTemplates []struct{ Metadata meta } `yaml:"volumeClaimTemplates"`
		}
	}
	container struct {
		Name, Image   string
		Command, Args []string
		Env           []struct {
			Name, Value string
			ValueFrom   *struct {
				FieldRef *struct {
					FieldPath string `yaml:"fieldPath"`
				} `yaml:"fieldRef"`
				SecretKeyRef *struct{ Name, Key string } `yaml:"secretKeyRef"`
			} `yaml:"valueFrom"`
		}
		Ports []struct {
			Name          string
			ContainerPort int `yaml:"containerPort"`
		}
		ReadinessProbe *probe `yaml:"readinessProbe"`
		LivenessProbe  *probe `yaml:"livenessProbe"`
		VolumeMounts   []struct {
			Name      string
			MountPath string `yaml:"mountPath"`
		} `yaml:"volumeMounts"`
	}
	probe struct {
		HTTPGet *struct {
			Path string
			Port string
		} `yaml:"httpGet"`
		TCPSocket *struct{ Port string } `yaml:"tcpSocket"`
	}
)

// port is the container port named name, 0 when there is none.
func (c *container) port(name string) int {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

// kubeObjects reads the manifest's documents: the Services and the
// StatefulSets by name, and every kind seen.
func kubeObjects(t *testing.T) (map[string]service, map[string]statefulSet, map[string]int) {
	t.Helper()
	b, err := os.ReadFile(kubernetesFile)
	require.NoError(t, err)
	svcs, sets, kinds := map[string]service{}, map[string]statefulSet{}, map[string]int{}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else {
			require.NoError(t, err)
		}
		var head struct {
			APIVersion string `yaml:"apiVersion"`
			Kind       string
			Metadata   meta
		}
		require.NoError(t, doc.Decode(&head))
		require.NotEmpty(t, head.Kind, "a document without kind")
		require.NotEmpty(t, head.Metadata.Name, "a %s without a name", head.Kind)
		kinds[head.APIVersion+" "+head.Kind]++
		switch head.Kind {
		case "Service":
			var s service
			require.NoError(t, doc.Decode(&s))
			svcs[s.Metadata.Name] = s
		case "StatefulSet":
			var s statefulSet
			require.NoError(t, doc.Decode(&s))
			sets[s.Metadata.Name] = s
		}
	}
	return svcs, sets, kinds
}

// envRef is Kubernetes's $(VAR) reference in args.
var envRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// expand replaces the $(VAR)s of args by examples of what Kubernetes puts
// there, after checking that each VAR is defined in c's env (Kubernetes
// leaves an undefined reference as it is).
func expand(t *testing.T, c *container, args []string, examples map[string]string) []string {
	t.Helper()
	defined := map[string]bool{}
	for _, e := range c.Env {
		defined[e.Name] = true
	}
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = envRef.ReplaceAllStringFunc(a, func(ref string) string {
			name := envRef.FindStringSubmatch(ref)[1]
			assert.True(t, defined[name], "container %s: %s refers to $(%s), which its env does not define", c.Name, a, name)
			return examples[name]
		})
	}
	return out
}

// headlessFor checks that the StatefulSet's serviceName is a headless
// Service selecting its pods, publishing them before they are ready.
func headlessFor(t *testing.T, svcs map[string]service, set statefulSet) service {
	t.Helper()
	svc, ok := svcs[set.Spec.ServiceName]
	require.True(t, ok, "StatefulSet %s: its serviceName %q is no Service of the file", set.Metadata.Name, set.Spec.ServiceName)
	assert.Equal(t, "None", svc.Spec.ClusterIP, "Service %s is headless (a stable name per pod)", svc.Metadata.Name)
	assert.True(t, svc.Spec.PublishNotReadyAddresses, "Service %s publishes pods before they are ready (peers find each other first)", svc.Metadata.Name)
	require.NotEmpty(t, svc.Spec.Selector)
	for k, v := range svc.Spec.Selector {
		assert.Equal(t, v, set.Spec.Template.Metadata.Labels[k], "Service %s selects StatefulSet %s's pods", svc.Metadata.Name, set.Metadata.Name)
	}
	assert.Equal(t, set.Spec.Selector.MatchLabels, set.Spec.Template.Metadata.Labels, "StatefulSet %s's selector", set.Metadata.Name)
	return svc
}

// checkServicePorts checks that every port of svc targets a named port
// of c with the same number.
func checkServicePorts(t *testing.T, svc service, c *container) {
	t.Helper()
	require.NotEmpty(t, svc.Spec.Ports)
	for _, p := range svc.Spec.Ports {
		assert.Equal(t, p.Port, c.port(p.TargetPort), "Service %s port %s targets container %s's port %q of the same number",
			svc.Metadata.Name, p.Name, c.Name, p.TargetPort)
	}
}

// etcdMember is what an etcd container's flags say of its cluster.
type etcdMember struct {
	clientPort int
	flags      []flag
}

func etcdFlags(t *testing.T, where string, c []string) etcdMember {
	t.Helper()
	require.NotEmpty(t, c)
	require.Equal(t, "etcd", c[0], "%s runs etcd", where)
	flags := parseFlags(t, where, c[1:])
	u, err := url.Parse(flagValue(flags, "listen-client-urls"))
	require.NoError(t, err, "%s: --listen-client-urls", where)
	port, err := strconv.Atoi(u.Port())
	require.NoError(t, err, "%s: --listen-client-urls has a port", where)
	return etcdMember{clientPort: port, flags: flags}
}

// clusterShape checks the command lines of a cluster's nodes (one for all
// the pods of a StatefulSet): the same cluster name, shape, etcd endpoints
// and ports on all, and a shape of exactly nodes nodes.
func clusterShape(t *testing.T, where string, nodes int, all [][]flag) {
	t.Helper()
	require.NotEmpty(t, all)
	for _, name := range []string{"cluster-etcd", "cluster-name", "cluster-lease-ttl", "cluster-primaries", "cluster-replicas", "cluster-partition-policy", "port", "metrics-addr", "data-dir"} {
		for _, f := range all {
			assert.Equal(t, flagValue(all[0], name), flagValue(f, name), "%s: --%s is the same on every node", where, name)
		}
	}
	f := all[0]
	assert.Equal(t, "yes", flagValue(f, "cluster-enabled"), where)
	primaries, err := strconv.Atoi(flagValue(f, "cluster-primaries"))
	require.NoError(t, err, where)
	replicas, err := strconv.Atoi(flagValue(f, "cluster-replicas"))
	require.NoError(t, err, where)
	assert.Equal(t, nodes, primaries*(1+replicas), "%s: --cluster-primaries x (1 + --cluster-replicas) is the number of nodes", where)
	assert.NotEmpty(t, flagValue(f, "data-dir"), "%s: a data directory keeps each node's id, map and state", where)
}

// TestKubernetesManifest checks deploy/kubernetes/sluice.yaml: six Sluice
// pods started in parallel behind a headless Service, flags and
// variables the binary knows, ports that match the Services and the
// flags, probes that answer on a real server, a data volume at
// --data-dir, announced names that resolve to each pod, and etcd
// endpoints that name every member of the etcd StatefulSet at its client
// port.
func TestKubernetesManifest(t *testing.T) {
	bin := sluiceBinary(t)
	svcs, sets, kinds := kubeObjects(t)
	assert.Equal(t, map[string]int{"v1 Service": 2, "apps/v1 StatefulSet": 2, "policy/v1 PodDisruptionBudget": 2}, kinds)

	var sl, et *statefulSet
	for name := range sets {
		set := sets[name]
		require.Len(t, set.Spec.Template.Spec.Containers, 1, "StatefulSet %s", name)
		c := set.Spec.Template.Spec.Containers[0]
		switch {
		case strings.HasPrefix(c.Image, "sluice"):
			sl = &set
		case len(c.Command) > 0 && c.Command[0] == "etcd":
			et = &set
		}
	}
	require.NotNil(t, sl, "a StatefulSet runs the sluice image")
	require.NotNil(t, et, "a StatefulSet runs etcd")

	// etcd: members that know each other, behind their headless Service.
	etcdSvc := headlessFor(t, svcs, *et)
	ec := &et.Spec.Template.Spec.Containers[0]
	checkServicePorts(t, etcdSvc, ec)
	em := etcdFlags(t, "etcd", expand(t, ec, append(append([]string{}, ec.Command...), ec.Args...), map[string]string{"POD_NAME": et.Metadata.Name + "-0"}))
	assert.Equal(t, em.clientPort, ec.port("client"), "etcd listens for clients on its container port client")
	var initial []string
	for i := range et.Spec.Replicas {
		pod := fmt.Sprintf("%s-%d", et.Metadata.Name, i)
		initial = append(initial, fmt.Sprintf("%s=http://%s.%s:%d", pod, pod, et.Spec.ServiceName, ec.port("peer")))
	}
	assert.Equal(t, strings.Join(initial, ","), flagValue(em.flags, "initial-cluster"), "etcd's initial cluster is every member of its StatefulSet")
	assert.Equal(t, 1, et.Spec.Replicas%2, "an odd number of etcd members")

	// Sluice.
	assert.Equal(t, 6, sl.Spec.Replicas)
	assert.Equal(t, "Parallel", sl.Spec.PodManagementPolicy, "nodes start together (the controller forms the cluster)")
	slSvc := headlessFor(t, svcs, *sl)
	c := &sl.Spec.Template.Spec.Containers[0]
	checkServicePorts(t, slSvc, c)
	podName := sl.Metadata.Name + "-0"
	args := expand(t, c, c.Args, map[string]string{"POD_NAME": podName, "POD_NAMESPACE": "default", "POD_IP": "10.1.2.3"})
	flags := parseFlags(t, "sluice container", args)
	env := map[string]string{}
	fieldRefs := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			fieldRefs[e.Name] = e.ValueFrom.FieldRef.FieldPath
		}
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			env[e.Name] = "from-a-secret"
		}
	}
	checkSluiceFlags(t, bin, "kubernetes", flags, env)
	clusterShape(t, "kubernetes", sl.Spec.Replicas, [][]flag{flags})

	assert.Equal(t, strconv.Itoa(c.port("redis")), flagValue(flags, "port"), "--port is the container port redis")
	_, mport, err := net.SplitHostPort(flagValue(flags, "metrics-addr"))
	require.NoError(t, err)
	assert.Equal(t, strconv.Itoa(c.port("metrics")), mport, "--metrics-addr's port is the container port metrics")
	// The announced name is the pod's own DNS name under the headless Service.
	raw := parseFlags(t, "sluice container", c.Args)
	assert.Equal(t, "$(POD_NAME)."+sl.Spec.ServiceName+".$(POD_NAMESPACE).svc", flagValue(raw, "cluster-announce-hostname"))
	assert.Equal(t, "$(POD_IP)", flagValue(raw, "cluster-announce-ip"))
	assert.Equal(t, map[string]string{"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace", "POD_IP": "status.podIP"}, fieldRefs)

	// Probes: readiness /readyz, liveness /healthz, on the metrics port, answering on a real server.
	require.NotNil(t, c.ReadinessProbe)
	require.NotNil(t, c.LivenessProbe)
	paths := map[string]bool{}
	for want, p := range map[string]*probe{"/readyz": c.ReadinessProbe, "/healthz": c.LivenessProbe} {
		require.NotNil(t, p.HTTPGet, "%s probe over HTTP", want)
		u, err := url.Parse(p.HTTPGet.Path)
		require.NoError(t, err)
		assert.Equal(t, want, u.Path)
		assert.Equal(t, "metrics", p.HTTPGet.Port)
		paths[p.HTTPGet.Path] = true
	}
	probesAnswer(t, paths)

	// The data directory is the volume of each pod's claim.
	require.Len(t, sl.Spec.VolumeClaimTemplates, 1)
	claim := sl.Spec.VolumeClaimTemplates[0].Metadata.Name
	mounted := ""
	for _, m := range c.VolumeMounts {
		if m.Name == claim {
			mounted = m.MountPath
		}
	}
	assert.Equal(t, flagValue(flags, "data-dir"), mounted, "--data-dir is where the claim %s is mounted", claim)

	// etcd endpoints: every member, by its stable name, at the client port.
	var want []string
	for i := range et.Spec.Replicas {
		want = append(want, fmt.Sprintf("http://%s-%d.%s:%d", et.Metadata.Name, i, et.Spec.ServiceName, em.clientPort))
	}
	assert.Equal(t, strings.Join(want, ","), flagValue(flags, "cluster-etcd"))
	for _, p := range etcdSvc.Spec.Ports {
		if p.Name == "client" {
			assert.Equal(t, em.clientPort, p.Port, "the etcd Service's client port")
		}
	}
}

// composeFileT is the part of a compose file the test reads.
type composeFileT struct {
	Services map[string]struct {
		Image       string
		Build       any
		Command     []string
		Environment map[string]string
		Volumes     []string
		Networks    map[string]struct {
			IPv4Address string `yaml:"ipv4_address"`
		}
	}
	Networks map[string]struct {
		IPAM struct {
			Config []struct{ Subnet string }
		} `yaml:"ipam"`
	}
	Volumes map[string]any
}

// TestComposeFile checks deploy/compose/compose.yaml: six Sluice services
// built from the repository, with flags and variables the binary knows,
// each announcing its own fixed address on the network (inside its subnet)
// and its service name, each with its own data volume, all pointing at the
// etcd service's client port.
func TestComposeFile(t *testing.T) {
	bin := sluiceBinary(t)
	b, err := os.ReadFile(composeFile)
	require.NoError(t, err)
	var f composeFileT
	require.NoError(t, yaml.Unmarshal(b, &f))

	etcd := map[string]etcdMember{}
	var nodes [][]flag
	ips, volumes := map[string]string{}, map[string]string{}
	for name, s := range f.Services {
		if len(s.Command) > 0 && s.Command[0] == "etcd" {
			etcd[name] = etcdFlags(t, name, s.Command)
			continue
		}
		require.True(t, strings.HasPrefix(s.Image, "sluice"), "service %s runs etcd or sluice", name)
		require.NotNil(t, s.Build, "service %s builds the image from the repository", name)
		flags := parseFlags(t, name, s.Command)
		env := map[string]string{}
		for k, v := range s.Environment {
			env[k] = regexp.MustCompile(`\$\{[^}]*\}`).ReplaceAllString(v, "x") // compose's interpolation
		}
		checkSluiceFlags(t, bin, name, flags, env)
		nodes = append(nodes, flags)

		assert.Equal(t, name, flagValue(flags, "cluster-announce-hostname"), "%s announces its service name", name)
		require.Len(t, s.Networks, 1, name)
		for network, n := range s.Networks {
			ip := flagValue(flags, "cluster-announce-ip")
			assert.Equal(t, n.IPv4Address, ip, "%s announces its address on %s", name, network)
			require.Len(t, f.Networks[network].IPAM.Config, 1, "network %s has one subnet", network)
			subnet, err := netip.ParsePrefix(f.Networks[network].IPAM.Config[0].Subnet)
			require.NoError(t, err)
			addr, err := netip.ParseAddr(ip)
			require.NoError(t, err, name)
			assert.True(t, subnet.Contains(addr), "%s: %s is in %s", name, ip, subnet)
			assert.Empty(t, ips[ip], "%s and %s share %s", name, ips[ip], ip)
			ips[ip] = name
		}
		mounted := false
		for _, v := range s.Volumes {
			vol, path, _ := strings.Cut(v, ":")
			if path == flagValue(flags, "data-dir") {
				mounted = true
				assert.Contains(t, f.Volumes, vol, "%s's volume is declared", name)
				assert.Empty(t, volumes[vol], "%s and %s share the volume %s", name, volumes[vol], vol)
				volumes[vol] = name
			}
		}
		assert.True(t, mounted, "%s mounts a volume at --data-dir", name)
	}
	require.Len(t, nodes, 6, "six Sluice services")
	clusterShape(t, "compose", len(nodes), nodes)
	for _, e := range strings.Split(flagValue(nodes[0], "cluster-etcd"), ",") {
		u, err := url.Parse(e)
		require.NoError(t, err)
		m, ok := etcd[u.Hostname()]
		require.True(t, ok, "etcd endpoint %s names an etcd service", e)
		assert.Equal(t, strconv.Itoa(m.clientPort), u.Port(), "etcd endpoint %s is its client port", e)
		adv := flagValue(m.flags, "advertise-client-urls")
		assert.Equal(t, e, adv, "etcd endpoint %s is what etcd advertises", e)
	}
}
