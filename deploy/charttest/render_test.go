package charttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// rendered is what one `helm template` produced, decoded.
type rendered struct {
	Values          map[string]any // the chart's values with the case's file over them
	Deployments     []*appsv1.Deployment
	Services        []*corev1.Service
	ConfigMaps      map[string]*corev1.ConfigMap
	Secrets         map[string]*corev1.Secret
	ServiceAccounts []*corev1.ServiceAccount
	Ingresses       []*networkingv1.Ingress
	HPAs            []*autoscalingv2.HorizontalPodAutoscaler
	PDBs            []*policyv1.PodDisruptionBudget
	ServiceMonitors []*monitoringv1.ServiceMonitor
}

// decodeStrict decodes one JSON object into v, refusing fields v's type does not have and anything
// after the object.
func decodeStrict(j []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("data after the object")
	}
	return nil
}

// decodeManifests splits helm's output into documents and decodes each strictly (YAML with duplicate
// keys refused, then JSON with unknown fields refused) into its k8s.io/api type (the ServiceMonitor into
// the prometheus-operator type). A kind the chart is not known to render is an error.
func decodeManifests(out string) (*rendered, error) {
	r := &rendered{ConfigMaps: map[string]*corev1.ConfigMap{}, Secrets: map[string]*corev1.Secret{}}
	for i, doc := range strings.Split("\n"+out, "\n---") {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		j, err := yaml.YAMLToJSONStrict([]byte(doc))
		if err != nil {
			return nil, fmt.Errorf("document %d: %w\n%s", i, err, doc)
		}
		var tm metav1.TypeMeta
		if err := json.Unmarshal(j, &tm); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		var obj any
		switch tm.APIVersion + " " + tm.Kind {
		case "apps/v1 Deployment":
			d := &appsv1.Deployment{}
			r.Deployments, obj = append(r.Deployments, d), d
		case "v1 Service":
			s := &corev1.Service{}
			r.Services, obj = append(r.Services, s), s
		case "v1 ConfigMap":
			obj = &corev1.ConfigMap{}
		case "v1 Secret":
			obj = &corev1.Secret{}
		case "v1 ServiceAccount":
			s := &corev1.ServiceAccount{}
			r.ServiceAccounts, obj = append(r.ServiceAccounts, s), s
		case "networking.k8s.io/v1 Ingress":
			g := &networkingv1.Ingress{}
			r.Ingresses, obj = append(r.Ingresses, g), g
		case "autoscaling/v2 HorizontalPodAutoscaler":
			h := &autoscalingv2.HorizontalPodAutoscaler{}
			r.HPAs, obj = append(r.HPAs, h), h
		case "policy/v1 PodDisruptionBudget":
			p := &policyv1.PodDisruptionBudget{}
			r.PDBs, obj = append(r.PDBs, p), p
		case "monitoring.coreos.com/v1 ServiceMonitor":
			s := &monitoringv1.ServiceMonitor{}
			r.ServiceMonitors, obj = append(r.ServiceMonitors, s), s
		default:
			return nil, fmt.Errorf("document %d: %s %q is not a kind this test knows: add its type", i, tm.APIVersion, tm.Kind)
		}
		if err := decodeStrict(j, obj); err != nil {
			return nil, fmt.Errorf("document %d (%s): %w\n%s", i, tm.Kind, err, doc)
		}
		switch o := obj.(type) {
		case *corev1.ConfigMap:
			r.ConfigMaps[o.Name] = o
		case *corev1.Secret:
			r.Secrets[o.Name] = o
		}
	}
	return r, nil
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// mergedValues is the chart's values.yaml with file over it, merged as helm merges maps.
func mergedValues(file string) (map[string]any, error) {
	base, err := readValues(filepath.Join(chartDir, "values.yaml"))
	if err != nil || file == "" {
		return base, err
	}
	over, err := readValues(file)
	if err != nil {
		return nil, err
	}
	return mergeMaps(base, over), nil
}

func readValues(path string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m := map[string]any{}
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

func mergeMaps(base, over map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		bm, ok1 := out[k].(map[string]any)
		om, ok2 := v.(map[string]any)
		if ok1 && ok2 {
			out[k] = mergeMaps(bm, om)
		} else {
			out[k] = v
		}
	}
	return out
}

// value reads a dotted path of the values ("tuning.streamsPerPod").
func value(vals map[string]any, path string) any {
	var cur any = vals
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

func valueString(vals map[string]any, path string) string {
	v := value(vals, path)
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func valueInt(vals map[string]any, path string) int64 {
	switch v := value(vals, path).(type) {
	case float64:
		return int64(v)
	case int64:
		return v
	case int:
		return int64(v)
	}
	return 0
}

// render lints and templates the chart with one values file and decodes the result.
func render(t *testing.T, file string) *rendered {
	t.Helper()
	out, err := helm(append([]string{"lint", "--strict", chartDir}, valuesArgs(file)...)...)
	if err != nil {
		t.Fatalf("helm lint: %v", err)
	}
	if !strings.Contains(out, "1 chart(s) linted, 0 chart(s) failed") {
		t.Fatalf("helm lint did not pass:\n%s", out)
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "[WARNING]") || strings.HasPrefix(l, "[ERROR]") {
			t.Errorf("helm lint: %s", l)
		}
	}
	out, err = helm(append([]string{"template", "sseedge", chartDir, "--namespace", "ci"}, valuesArgs(file)...)...)
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	r, err := decodeManifests(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.Values, err = mergedValues(file); err != nil {
		t.Fatal(err)
	}
	return r
}
