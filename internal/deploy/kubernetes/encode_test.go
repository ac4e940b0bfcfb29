package kubernetes

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

// decodeManifest decodes each document with the API's own types, strictly
// (an unknown field fails), as kubectl would read them.
func decodeManifest(t *testing.T, docs [][]byte) []runtime.Object {
	t.Helper()
	var out []runtime.Object
	for i, d := range docs {
		var tm struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal(d, &tm); err != nil || tm.APIVersion == "" || tm.Kind == "" {
			t.Fatalf("document %d has no apiVersion and kind (%v)", i, err)
		}
		obj, err := scheme.Scheme.New(runtimeGVK(tm.APIVersion, tm.Kind))
		if err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		if err := yaml.UnmarshalStrict(d, obj); err != nil {
			t.Fatalf("document %d (%s): %v", i, tm.Kind, err)
		}
		out = append(out, obj)
	}
	return out
}

func TestEncodeYAMLParsesBackIntoTheObjects(t *testing.T) {
	m := testManifest(t, onePolicy)
	var b bytes.Buffer
	if err := Encode(&b, FormatYAML, m.Objects()); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	for _, noise := range []string{"status:", "managedFields", "creationTimestamp"} {
		if strings.Contains(text, noise) {
			t.Errorf("manifest contains %q", noise)
		}
	}
	var docs [][]byte
	for _, d := range strings.Split(text, "---\n") {
		docs = append(docs, []byte(d))
	}
	objs := decodeManifest(t, docs)
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, strings.TrimPrefix(strings.TrimPrefix(typeName(o), "*v1."), "*"))
	}
	if got := strings.Join(kinds, " "); got != "Namespace ServiceAccount Role RoleBinding ClusterRole ClusterRoleBinding ConfigMap DaemonSet" {
		t.Fatalf("kinds %s", got)
	}
	ds := objs[7].(*appsv1.DaemonSet)
	sc := ds.Spec.Template.Spec.Containers[0].SecurityContext
	if *sc.Privileged || *sc.AllowPrivilegeEscalation || !*sc.ReadOnlyRootFilesystem ||
		len(sc.Capabilities.Add) != 3 || sc.Capabilities.Drop[0] != "ALL" || !ds.Spec.Template.Spec.HostPID {
		t.Errorf("security context after a round trip: %+v", sc)
	}
	if cm := objs[6].(*corev1.ConfigMap); cm.Data["secrets.yaml"] != onePolicy["secrets.yaml"] {
		t.Error("policy text changed in the round trip")
	}
	if r := objs[2].(*rbacv1.Role); len(r.Rules) != 2 || r.Rules[0].ResourceNames[0] != "drmfilter-policies" {
		t.Errorf("role rules %+v", r.Rules)
	}
	if cr := objs[4].(*rbacv1.ClusterRole); len(cr.Rules) != 1 || cr.Rules[0].Resources[0] != "pods" || len(cr.Rules[0].Verbs) != 3 {
		t.Errorf("clusterrole rules %+v", cr.Rules)
	}
	if crb := objs[5].(*rbacv1.ClusterRoleBinding); crb.RoleRef.Name != "drmfilter-agent-pods" || crb.Subjects[0].Namespace != "drmfilter" {
		t.Errorf("clusterrolebinding %+v", crb)
	}
}

func TestEncodeJSONIsAList(t *testing.T) {
	var b bytes.Buffer
	if err := Encode(&b, FormatJSON, testManifest(t, onePolicy).Objects()); err != nil {
		t.Fatal(err)
	}
	var list struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Items      []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(b.Bytes(), &list); err != nil {
		t.Fatal(err)
	}
	if list.APIVersion != "v1" || list.Kind != "List" || len(list.Items) != 8 {
		t.Fatalf("%s %s with %d items", list.APIVersion, list.Kind, len(list.Items))
	}
	var docs [][]byte
	for _, it := range list.Items {
		docs = append(docs, it)
	}
	if ds := decodeManifest(t, docs)[7].(*appsv1.DaemonSet); ds.Name != "drmfilter-agent" {
		t.Errorf("last item %s", ds.Name)
	}
	if err := Encode(&b, "table", nil); err == nil {
		t.Error("format table accepted")
	}
}
