package charttest

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestChart lints and renders the chart with each values file, decodes every object strictly and
// checks the rendering against the binary.
func TestChart(t *testing.T) {
	for _, file := range valueCases(t) {
		t.Run(caseName(file), func(t *testing.T) {
			r := render(t, file)
			problems, notes := check(r)
			for _, n := range notes {
				t.Log(n)
			}
			for _, p := range problems {
				t.Error(p)
			}
		})
	}
}

// TestChartDefaultsAreTheBinarys: the chart's own defaults for the settings it derives are the
// binary's defaults, so the chart does not quietly run a different edge than `edge -h` documents.
func TestChartDefaultsAreTheBinarys(t *testing.T) {
	vals, err := mergedValues("")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ env, chart string }{
		{"PORT", valueString(vals, "port")},
		{"DRAIN_TIMEOUT", valueString(vals, "drain.timeoutSeconds") + "s"},
	} {
		if got := flags[c.env].Default; got != c.chart {
			t.Errorf("%s: the binary's default is %q, the chart's %q", c.env, got, c.chart)
		}
	}
	for k, v := range value(vals, "config").(map[string]any) {
		if _, ok := flags[k]; !ok {
			t.Errorf("config.%s is not a setting of the binary", k)
		}
		_ = v
	}
}

// TestRenderRefusals: values that would give a broken cluster fail the render with a message.
func TestRenderRefusals(t *testing.T) {
	for _, c := range []struct {
		name string
		set  []string
		want string
	}{
		{"several pods in memory", []string{"replicaCount=3"}, "needs Redis"},
		{"autoscaling in memory", []string{"autoscaling.enabled=true"}, "needs Redis"},
		{"unknown redis mode", []string{"redis.mode=replicated"}, "redis.mode"},
		{"standalone without an address", []string{"redis.mode=standalone"}, "needs redis.addr"},
		{"sentinel without a master", []string{"redis.mode=sentinel", "redis.sentinel.addrs[0]=s:26379"}, "redis.sentinel.master"},
		{"password in a URL", []string{"redis.mode=standalone", "redis.addr=redis://u:secret@r:6379"}, "redis.password"},
		{"PORT through config", []string{"config.PORT=9000"}, "set by the chart"},
		{"REDIS_ADDR through config", []string{"config.REDIS_ADDR=r:6379"}, "set by the chart"},
		{"a config key that is no env name", []string{"config.heartbeat-interval=5s"}, "environment variable names"},
		{"net sysctl on the node", []string{"tuning.nodeSysctls.values.net\\.core\\.somaxconn=1024"}, "network namespace"},
		{"client certificate without key", []string{"redis.mode=standalone", "redis.addr=r:6379", "redis.tls.existingSecret=t", "redis.tls.certKey=tls.crt"}, "keyKey"},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"template", "sseedge", chartDir}
			for _, s := range c.set {
				args = append(args, "--set", s)
			}
			_, err := helm(args...)
			if err == nil {
				t.Fatalf("rendered with %v", c.set)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("refused, but not saying %q: %v", c.want, err)
			}
		})
	}
}

// TestDashboardCopies: helm reads only files inside the chart, so the chart carries copies of
// dashboards/*.json; they must equal the originals byte for byte.
func TestDashboardCopies(t *testing.T) {
	want := repoDashboards()
	if len(want) == 0 {
		t.Fatal("no dashboards in dashboards/")
	}
	copies, _ := filepath.Glob(filepath.Join(chartDir, "dashboards", "*.json"))
	if len(copies) != len(want) {
		t.Errorf("the chart has %d dashboards, dashboards/ has %d", len(copies), len(want))
	}
	for name, orig := range want {
		got, err := os.ReadFile(filepath.Join(chartDir, "dashboards", name))
		if err != nil || !bytes.Equal(got, []byte(orig)) {
			t.Errorf("deploy/helm/sseedge/dashboards/%s differs from dashboards/%s: run cp dashboards/*.json deploy/helm/sseedge/dashboards/", name, name)
		}
	}
}

// TestChecksCatchMistakes: the checks above fail on a chart that gets the drain, the probes, the
// security context or the environment wrong (each mutation of a good rendering must be reported).
func TestChecksCatchMistakes(t *testing.T) {
	good := render(t, filepath.Join(chartDir, "ci", "ingress-monitoring-values.yaml"))
	if p, _ := check(good); len(p) > 0 {
		t.Fatalf("the unmodified rendering has problems: %v", p)
	}
	edge := func(d *appsv1.Deployment) *corev1.Container { return container(d, "edge") }
	for _, m := range []struct {
		name   string
		mutate func(r *rendered)
	}{
		{"readiness on another path", func(r *rendered) { edge(r.Deployments[0]).ReadinessProbe.HTTPGet.Path = "/healthz" }},
		{"readiness on another port", func(r *rendered) {
			edge(r.Deployments[0]).ReadinessProbe.HTTPGet.Port = intstr.FromInt32(9090)
		}},
		{"liveness on health", func(r *rendered) {
			edge(r.Deployments[0]).LivenessProbe = edge(r.Deployments[0]).ReadinessProbe.DeepCopy()
		}},
		{"no preStop", func(r *rendered) { edge(r.Deployments[0]).Lifecycle = nil }},
		{"grace period equal to the drain", func(r *rendered) {
			g := int64(15)
			r.Deployments[0].Spec.Template.Spec.TerminationGracePeriodSeconds = &g
		}},
		{"DRAIN_TIMEOUT above the grace period", func(r *rendered) { setEnv(edge(r.Deployments[0]), "DRAIN_TIMEOUT", "60s") }},
		{"a misspelt setting", func(r *rendered) { setEnv(edge(r.Deployments[0]), "HEARTBEAT_INTERVALL", "5s") }},
		{"a ConfigMap key that is no setting", func(r *rendered) { r.ConfigMaps["sseedge"].Data["MAX_STREAMS"] = "0" }},
		{"container port not PORT", func(r *rendered) { edge(r.Deployments[0]).Ports[0].ContainerPort = 9000 }},
		{"loopback HOST", func(r *rendered) { setEnv(edge(r.Deployments[0]), "HOST", "127.0.0.1") }},
		{"writable root filesystem", func(r *rendered) {
			f := false
			edge(r.Deployments[0]).SecurityContext.ReadOnlyRootFilesystem = &f
		}},
		{"root", func(r *rendered) {
			f, root := false, int64(0)
			edge(r.Deployments[0]).SecurityContext.RunAsNonRoot = &f
			edge(r.Deployments[0]).SecurityContext.RunAsUser = &root
		}},
		{"maxUnavailable 1", func(r *rendered) {
			u := intstr.FromInt32(1)
			r.Deployments[0].Spec.Strategy.RollingUpdate.MaxUnavailable = &u
		}},
		{"minReadySeconds shorter than the reconnects", func(r *rendered) { r.Deployments[0].Spec.MinReadySeconds = 5 }},
		{"ingress buffering", func(r *rendered) {
			delete(r.Ingresses[0].Annotations, "nginx.ingress.kubernetes.io/proxy-buffering")
		}},
		{"ServiceMonitor without the token", func(r *rendered) { r.ServiceMonitors[0].Spec.Endpoints[0].Authorization = nil }},
		{"a stale dashboard", func(r *rendered) { r.ConfigMaps["sseedge-dashboards"].Data["edge.json"] += " " }},
		{"memory too small", func(r *rendered) {
			edge(r.Deployments[0]).Resources.Requests[corev1.ResourceMemory] = resource.MustParse("64Mi")
		}},
	} {
		t.Run(m.name, func(t *testing.T) {
			r := render(t, filepath.Join(chartDir, "ci", "ingress-monitoring-values.yaml"))
			m.mutate(r)
			if p, _ := check(r); len(p) == 0 {
				t.Fatal("the checks found nothing wrong")
			} else {
				t.Log(p)
			}
		})
	}
}

func setEnv(c *corev1.Container, name, val string) {
	for i := range c.Env {
		if c.Env[i].Name == name {
			c.Env[i] = corev1.EnvVar{Name: name, Value: val}
			return
		}
	}
	c.Env = append(c.Env, corev1.EnvVar{Name: name, Value: val})
}
