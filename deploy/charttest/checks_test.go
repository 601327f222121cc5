package charttest

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const (
	healthPath = "/admin/health"
	// At shutdown the edge tells every stream retry: 3 s plus up to 10 s of jitter (edge.Config's Retry
	// and ShutdownRetryMax, which are not settings of the binary). TestBinaryDrains measures it against
	// these figures, which docs/kubernetes.md uses.
	minReconnectDelay = 3 * time.Second
	maxReconnectDelay = 13 * time.Second
	// Memory per idle stream: up to 4.2 KiB of process RSS (docs/performance.md) plus about 4.8 KiB of
	// kernel socket memory.
	measuredBytesPerStream = 9216
)

// envVar is one variable the edge container gets, and where it comes from.
type envVar struct {
	Value    string // literal, or resolved from the rendered ConfigMap or Secret
	Secret   string // secretKeyRef: the Secret's name and key
	Key      string
	Optional bool
	Field    string // fieldRef
	Known    bool   // Value is known (literal, or resolved from a rendered object)
}

// checker collects what is wrong with one rendering.
type checker struct {
	r        *rendered
	problems []string
	notes    []string
}

func (c *checker) fail(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

func (c *checker) note(format string, args ...any) {
	c.notes = append(c.notes, fmt.Sprintf(format, args...))
}

// check runs every check of one rendering and returns the problems and the notes.
func check(r *rendered) ([]string, []string) {
	c := &checker{r: r}
	if len(r.Deployments) != 1 {
		c.fail("want one Deployment, got %d", len(r.Deployments))
		return c.problems, c.notes
	}
	d := r.Deployments[0]
	edge := container(d, "edge")
	if edge == nil {
		c.fail("the Deployment has no container named edge")
		return c.problems, c.notes
	}
	env := c.env(d, edge)
	c.checkEnv(env)
	c.checkPortAndProbes(d, edge, env)
	c.checkDrain(d, edge, env)
	c.checkSecurity(d, edge)
	c.checkSizing(d, edge)
	c.checkReplicas(d)
	c.checkService(d)
	c.checkIngress(env)
	c.checkMonitoring(env)
	c.checkDashboards()
	return c.problems, c.notes
}

func container(d *appsv1.Deployment, name string) *corev1.Container {
	for i := range d.Spec.Template.Spec.Containers {
		if d.Spec.Template.Spec.Containers[i].Name == name {
			return &d.Spec.Template.Spec.Containers[i]
		}
	}
	return nil
}

// env resolves the edge container's environment: envFrom ConfigMaps and Secrets must be rendered (or
// be the existing Secret the values name), and a secretKeyRef to a rendered Secret must find its key.
func (c *checker) env(d *appsv1.Deployment, ct *corev1.Container) map[string]envVar {
	existing := valueString(c.r.Values, "auth.existingSecret")
	env := map[string]envVar{}
	for _, from := range ct.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm := c.r.ConfigMaps[from.ConfigMapRef.Name]
			if cm == nil {
				c.fail("envFrom names ConfigMap %q, which the chart does not render", from.ConfigMapRef.Name)
				continue
			}
			for k, v := range cm.Data {
				env[from.Prefix+k] = envVar{Value: v, Known: true}
			}
		case from.SecretRef != nil:
			c.fail("envFrom a Secret hides which variables the edge gets: use secretKeyRef per variable")
		}
	}
	for _, e := range ct.Env {
		if _, dup := env[e.Name]; dup {
			c.fail("%s is set twice (env and the ConfigMap)", e.Name)
		}
		v := envVar{Value: e.Value, Known: e.ValueFrom == nil}
		if e.ValueFrom != nil {
			switch {
			case e.ValueFrom.SecretKeyRef != nil:
				ref := e.ValueFrom.SecretKeyRef
				v.Secret, v.Key, v.Optional = ref.Name, ref.Key, ref.Optional != nil && *ref.Optional
				if s := c.r.Secrets[ref.Name]; s != nil {
					if b, ok := s.Data[ref.Key]; ok {
						v.Value, v.Known = string(b), true
					} else if !v.Optional {
						c.fail("%s refers to key %s of Secret %s, which has no such key", e.Name, ref.Key, ref.Name)
					}
				} else if ref.Name != existing || existing == "" {
					c.fail("%s refers to Secret %q, neither rendered nor auth.existingSecret", e.Name, ref.Name)
				}
			case e.ValueFrom.FieldRef != nil:
				v.Field = e.ValueFrom.FieldRef.FieldPath
			case e.ValueFrom.ConfigMapKeyRef != nil:
				ref := e.ValueFrom.ConfigMapKeyRef
				if cm := c.r.ConfigMaps[ref.Name]; cm == nil {
					c.fail("%s refers to ConfigMap %q, which the chart does not render", e.Name, ref.Name)
				} else {
					v.Value, v.Known = cm.Data[ref.Key], true
				}
			default:
				c.fail("%s comes from a source this test does not resolve", e.Name)
			}
		}
		env[e.Name] = v
	}
	for _, ct := range d.Spec.Template.Spec.InitContainers {
		if len(ct.Env) > 0 || len(ct.EnvFrom) > 0 {
			c.fail("init container %s gets an environment: only the edge reads settings", ct.Name)
		}
	}
	return env
}

// checkEnv: every variable is a setting of the binary (a flag in `edge -h`), or a variable of the
// OpenTelemetry SDK that the binary contains.
func (c *checker) checkEnv(env map[string]envVar) {
	for _, name := range slices.Sorted(maps.Keys(env)) {
		if _, ok := flags[name]; ok {
			continue
		}
		switch {
		case strings.HasPrefix(name, "OTEL_"):
			if !bytes.Contains(edgeBytes, []byte(name)) {
				c.fail("%s is not a variable the edge binary reads (not a flag, not in the binary's OTel SDK)", name)
			}
		default:
			c.fail("%s is not a setting of the edge binary (edge -h lists no flag %s)", name, strings.ToLower(strings.ReplaceAll(name, "_", "-")))
		}
	}
}

// setting is the value the edge runs with: the environment's, else the flag's default.
func setting(env map[string]envVar, name string) string {
	if v, ok := env[name]; ok && v.Known {
		return v.Value
	}
	return flags[name].Default
}

// containerPort resolves a probe's port (a number or a port name) to the edge container's port.
func containerPort(ct *corev1.Container, p intstr.IntOrString) (int32, bool) {
	for _, cp := range ct.Ports {
		if (p.Type == intstr.String && p.StrVal == cp.Name) || (p.Type == intstr.Int && p.IntVal == cp.ContainerPort) {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

func (c *checker) checkPortAndProbes(d *appsv1.Deployment, ct *corev1.Container, env map[string]envVar) {
	listen, err := strconv.Atoi(setting(env, "PORT"))
	if err != nil {
		c.fail("PORT %q is not a number", setting(env, "PORT"))
	}
	var http *corev1.ContainerPort
	for i := range ct.Ports {
		if ct.Ports[i].Name == "http" {
			http = &ct.Ports[i]
		}
	}
	if http == nil {
		c.fail("the edge container has no port named http")
	} else if int(http.ContainerPort) != listen {
		c.fail("containerPort %d, but the edge listens on PORT %d", http.ContainerPort, listen)
	}
	if h := setting(env, "HOST"); h != "0.0.0.0" && h != "" && h != "::" {
		c.fail("HOST %q: probes and the Service reach the pod's address, the edge must listen on every address", h)
	} else if h == "" && (setting(env, "ADMIN_TOKEN") == "" || setting(env, "TOKEN_SECRET") == "") {
		c.fail("HOST is not set and the secrets may be missing: the edge would listen on loopback only")
	}

	probe := func(name string, p *corev1.Probe) {
		if p == nil {
			c.fail("the edge container has no %s probe", name)
			return
		}
		var port intstr.IntOrString
		switch {
		case p.HTTPGet != nil:
			port = p.HTTPGet.Port
		case p.TCPSocket != nil:
			port = p.TCPSocket.Port
		default:
			c.fail("%s probe: neither httpGet nor tcpSocket", name)
			return
		}
		if n, ok := containerPort(ct, port); !ok || int(n) != listen {
			c.fail("%s probe port %s is not the port the edge listens on (%d)", name, port.String(), listen)
		}
	}
	probe("readiness", ct.ReadinessProbe)
	probe("liveness", ct.LivenessProbe)
	probe("startup", ct.StartupProbe)
	if p := ct.ReadinessProbe; p != nil {
		if p.HTTPGet == nil || p.HTTPGet.Path != healthPath {
			c.fail("readiness must be GET %s (503 while draining)", healthPath)
		} else if p.HTTPGet.Scheme != "" && p.HTTPGet.Scheme != corev1.URISchemeHTTP {
			c.fail("readiness scheme %s: the edge serves plain HTTP", p.HTTPGet.Scheme)
		}
	}
	if p := ct.LivenessProbe; p != nil && p.HTTPGet != nil && p.HTTPGet.Path == healthPath {
		c.fail("liveness on %s would restart pods that drain or lose Redis, with their streams", healthPath)
	}
}

func (c *checker) checkDrain(d *appsv1.Deployment, ct *corev1.Container, env map[string]envVar) {
	drain, err := time.ParseDuration(setting(env, "DRAIN_TIMEOUT"))
	if err != nil {
		c.fail("DRAIN_TIMEOUT %q: %v", setting(env, "DRAIN_TIMEOUT"), err)
	}
	var sleep time.Duration
	if ct.Lifecycle == nil || ct.Lifecycle.PreStop == nil {
		c.fail("the edge container has no preStop")
	} else if s := ct.Lifecycle.PreStop.Sleep; s == nil || s.Seconds <= 0 {
		c.fail("preStop must be a sleep of a few seconds (the image has no shell)")
	} else {
		sleep = time.Duration(s.Seconds) * time.Second
	}
	spec := d.Spec.Template.Spec
	if spec.TerminationGracePeriodSeconds == nil {
		c.fail("terminationGracePeriodSeconds is not set (the default 30s says nothing of DRAIN_TIMEOUT)")
	} else if grace := time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second; grace <= sleep+drain {
		c.fail("terminationGracePeriodSeconds %s is not above preStop %s + DRAIN_TIMEOUT %s", grace, sleep, drain)
	}
	st := d.Spec.Strategy
	if st.Type != appsv1.RollingUpdateDeploymentStrategyType || st.RollingUpdate == nil {
		c.fail("strategy must be RollingUpdate with maxSurge 1 and maxUnavailable 0")
	} else {
		if u := st.RollingUpdate.MaxUnavailable; u == nil || u.String() != "0" {
			c.fail("maxUnavailable must be 0: a pod's streams leave only once its replacement is available")
		}
		if s := st.RollingUpdate.MaxSurge; s == nil || s.String() != "1" {
			c.fail("maxSurge must be 1: one pod's streams reconnect at a time")
		}
	}
	if need := sleep + maxReconnectDelay; time.Duration(d.Spec.MinReadySeconds)*time.Second < need {
		c.fail("minReadySeconds %d: the next pod may drain before the last one's clients are back (preStop %s + retry up to %s)", d.Spec.MinReadySeconds, sleep, maxReconnectDelay)
	}
}

func (c *checker) checkSecurity(d *appsv1.Deployment, ct *corev1.Container) {
	pod := d.Spec.Template.Spec.SecurityContext
	if pod == nil {
		pod = &corev1.PodSecurityContext{}
	}
	sc := ct.SecurityContext
	if sc == nil {
		c.fail("the edge container has no securityContext")
		return
	}
	nonRoot := pod.RunAsNonRoot
	if sc.RunAsNonRoot != nil {
		nonRoot = sc.RunAsNonRoot
	}
	if nonRoot == nil || !*nonRoot {
		c.fail("runAsNonRoot is not true for the edge")
	}
	uid := pod.RunAsUser
	if sc.RunAsUser != nil {
		uid = sc.RunAsUser
	}
	if uid == nil || *uid == 0 {
		c.fail("the edge's runAsUser must be a non-zero uid (the image's nonroot user is 65532)")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		c.fail("readOnlyRootFilesystem is not true for the edge")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		c.fail("allowPrivilegeEscalation is not false for the edge")
	}
	if sc.Privileged != nil && *sc.Privileged {
		c.fail("the edge runs privileged")
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
		c.fail("the edge must drop ALL capabilities and add none")
	}
	if pod.SeccompProfile == nil && sc.SeccompProfile == nil {
		c.fail("no seccomp profile")
	}
	for _, s := range pod.Sysctls {
		if strings.HasPrefix(s.Name, "fs.") || s.Name == "net.ipv4.tcp_mem" {
			c.fail("pod sysctl %s is node-wide, the kubelet refuses it in a pod", s.Name)
		}
	}
	for _, ic := range d.Spec.Template.Spec.InitContainers {
		priv := ic.SecurityContext != nil && ic.SecurityContext.Privileged != nil && *ic.SecurityContext.Privileged
		if !priv {
			continue
		}
		if ic.Name != "node-sysctls" || value(c.r.Values, "tuning.nodeSysctls.enabled") != true {
			c.fail("init container %s is privileged without tuning.nodeSysctls.enabled", ic.Name)
		}
		for _, a := range ic.Command[2:] {
			if !strings.HasPrefix(a, "fs.") {
				c.fail("the privileged init container writes %s: only fs.* sysctls are node-wide and needed", a)
			}
		}
	}
}

// checkSizing: the memory request holds the streams the pod is sized for at the measured cost.
func (c *checker) checkSizing(d *appsv1.Deployment, ct *corev1.Container) {
	req, ok := ct.Resources.Requests[corev1.ResourceMemory]
	if !ok {
		c.fail("the edge has no memory request")
		return
	}
	streams := valueInt(c.r.Values, "tuning.streamsPerPod")
	if need := streams * measuredBytesPerStream; req.Value() < need {
		c.fail("memory request %s is below %d streams x %d B measured", req.String(), streams, measuredBytesPerStream)
	}
	if lim, ok := ct.Resources.Limits[corev1.ResourceMemory]; ok && lim.Cmp(req) < 0 {
		c.fail("memory limit %s below the request %s", lim.String(), req.String())
	}
	if nofile := valueInt(c.r.Values, "tuning.nofile"); nofile < streams {
		c.fail("tuning.nofile %d is below tuning.streamsPerPod %d: every stream is an open file", nofile, streams)
	}
}

func (c *checker) checkReplicas(d *appsv1.Deployment) {
	memory := valueString(c.r.Values, "redis.mode") == ""
	if len(c.r.HPAs) > 0 {
		if d.Spec.Replicas != nil {
			c.fail("with an HPA the Deployment must not set replicas (every upgrade would reset the scale)")
		}
		for _, h := range c.r.HPAs {
			if h.Spec.ScaleTargetRef.Kind != "Deployment" || h.Spec.ScaleTargetRef.Name != d.Name || h.Spec.ScaleTargetRef.APIVersion != "apps/v1" {
				c.fail("HPA %s scales %s %s, not the Deployment %s", h.Name, h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name, d.Name)
			}
			if h.Spec.Behavior == nil || h.Spec.Behavior.ScaleDown == nil {
				c.fail("HPA %s has no scale-down behaviour: scaling down drains pods, it must be gradual", h.Name)
			}
		}
	}
	if memory && (len(c.r.HPAs) > 0 || d.Spec.Replicas == nil || *d.Spec.Replicas != 1) {
		c.fail("without Redis there must be exactly one pod")
	}
	if !memory && d.Spec.Replicas != nil && *d.Spec.Replicas < 2 {
		c.note("with Redis and %d replica", *d.Spec.Replicas)
	}
	podLabels := d.Spec.Template.Labels
	if !subset(d.Spec.Selector.MatchLabels, podLabels) {
		c.fail("the Deployment's selector does not select its pods")
	}
	for _, p := range c.r.PDBs {
		if p.Spec.Selector == nil || !subset(p.Spec.Selector.MatchLabels, podLabels) {
			c.fail("PDB %s does not select the pods", p.Name)
		}
		if p.Spec.MaxUnavailable == nil || p.Spec.MaxUnavailable.String() != "1" {
			c.fail("PDB %s: maxUnavailable must be 1 (one pod's streams at a time)", p.Name)
		}
	}
}

func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func (c *checker) service() *corev1.Service {
	if len(c.r.Services) != 1 {
		c.fail("want one Service, got %d", len(c.r.Services))
		return nil
	}
	return c.r.Services[0]
}

func (c *checker) checkService(d *appsv1.Deployment) {
	s := c.service()
	if s == nil {
		return
	}
	if !subset(s.Spec.Selector, d.Spec.Template.Labels) {
		c.fail("the Service does not select the pods")
	}
	edge := container(d, "edge")
	for _, p := range s.Spec.Ports {
		if _, ok := containerPort(edge, p.TargetPort); !ok {
			c.fail("Service port %s targets %s, which the edge container does not expose", p.Name, p.TargetPort.String())
		}
	}
}

func servicePort(s *corev1.Service, name string, number int32) bool {
	for _, p := range s.Spec.Ports {
		if (name != "" && p.Name == name) || (name == "" && p.Port == number) {
			return true
		}
	}
	return false
}

func (c *checker) checkIngress(env map[string]envVar) {
	heartbeat, err := time.ParseDuration(setting(env, "HEARTBEAT_INTERVAL"))
	if err != nil {
		c.fail("HEARTBEAT_INTERVAL %q: %v", setting(env, "HEARTBEAT_INTERVAL"), err)
	}
	for _, g := range c.r.Ingresses {
		s := c.service()
		for _, rule := range g.Spec.Rules {
			if rule.HTTP == nil {
				c.fail("Ingress %s: a rule without paths", g.Name)
				continue
			}
			for _, p := range rule.HTTP.Paths {
				b := p.Backend.Service
				if b == nil || s == nil || b.Name != s.Name || !servicePort(s, b.Port.Name, b.Port.Number) {
					c.fail("Ingress %s path %s does not reach the Service's port", g.Name, p.Path)
				}
			}
		}
		a := g.Annotations
		if a["nginx.ingress.kubernetes.io/proxy-buffering"] != "off" {
			c.fail("Ingress %s buffers responses: streams would not flush", g.Name)
		}
		for _, k := range []string{"proxy-read-timeout", "proxy-send-timeout"} {
			secs, err := strconv.Atoi(a["nginx.ingress.kubernetes.io/"+k])
			if err != nil || time.Duration(secs)*time.Second < 2*heartbeat {
				c.fail("Ingress %s %s %q: must outlast two heartbeats (%s)", g.Name, k, a["nginx.ingress.kubernetes.io/"+k], 2*heartbeat)
			}
		}
	}
}

func (c *checker) checkMonitoring(env map[string]envVar) {
	for _, m := range c.r.ServiceMonitors {
		s := c.service()
		if s == nil {
			return
		}
		if !subset(m.Spec.Selector.MatchLabels, s.Labels) {
			c.fail("ServiceMonitor %s does not select the Service", m.Name)
		}
		for _, e := range m.Spec.Endpoints {
			if !servicePort(s, e.Port, 0) {
				c.fail("ServiceMonitor %s scrapes port %q, which the Service does not have", m.Name, e.Port)
			}
			if e.Path != "/metrics" {
				c.fail("ServiceMonitor %s scrapes %q, not /metrics", m.Name, e.Path)
			}
			// A secured edge (ADMIN_TOKEN and TOKEN_SECRET set) takes METRICS_TOKEN on /metrics, or the
			// admin token when it has no METRICS_TOKEN.
			key := "METRICS_TOKEN"
			if tok := env[key]; tok.Secret == "" || (tok.Optional && !tok.Known && value(c.r.Values, "auth.existingSecretHasMetricsToken") != true) {
				key = "ADMIN_TOKEN"
			}
			tok := env[key]
			switch {
			case e.Authorization == nil || e.Authorization.Credentials == nil:
				c.fail("ServiceMonitor %s sends no token, and the secured edge answers 401 on /metrics", m.Name)
			case e.Authorization.Credentials.Name != tok.Secret || e.Authorization.Credentials.Key != tok.Key:
				c.fail("ServiceMonitor %s sends %s/%s, the edge checks %s (%s/%s)", m.Name, e.Authorization.Credentials.Name, e.Authorization.Credentials.Key, key, tok.Secret, tok.Key)
			}
		}
	}
}

// checkDashboards: a dashboards ConfigMap carries the sidecar label and exactly the repository's
// dashboards/*.json, byte for byte.
func (c *checker) checkDashboards() {
	want := repoDashboards()
	for _, cm := range c.r.ConfigMaps {
		if !strings.HasSuffix(cm.Name, "-dashboards") {
			continue
		}
		label := valueString(c.r.Values, "dashboards.label")
		if cm.Labels[label] != valueString(c.r.Values, "dashboards.labelValue") || label == "" {
			c.fail("ConfigMap %s lacks the Grafana sidecar label", cm.Name)
		}
		if got := slices.Sorted(maps.Keys(cm.Data)); !slices.Equal(got, slices.Sorted(maps.Keys(want))) {
			c.fail("ConfigMap %s holds %v, dashboards/ has %v", cm.Name, got, slices.Sorted(maps.Keys(want)))
		}
		for k, v := range want {
			if cm.Data[k] != v {
				c.fail("ConfigMap %s: %s differs from dashboards/%s", cm.Name, k, k)
			}
		}
	}
	if value(c.r.Values, "dashboards.enabled") == true {
		if _, ok := c.r.ConfigMaps["sseedge-dashboards"]; !ok {
			c.fail("dashboards.enabled renders no sseedge-dashboards ConfigMap")
		}
	}
}

func repoDashboards() map[string]string {
	files, _ := filepath.Glob(filepath.Join(repoRoot, "dashboards", "*.json"))
	out := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err == nil {
			out[filepath.Base(f)] = string(b)
		}
	}
	return out
}
