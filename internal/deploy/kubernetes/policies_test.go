package kubernetes

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/drmfilter/drmfilter/internal/kubeagent"
	"github.com/drmfilter/drmfilter/internal/kubeschema"
	"github.com/drmfilter/drmfilter/internal/policy"
)

func TestPoliciesHashDoesNotDependOnTheOrderGiven(t *testing.T) {
	dir := writePolicies(t, map[string]string{
		"a.yaml": policyDoc("a", "/srv/a"),
		"b.yaml": policyDoc("b", "/srv/b"),
	})
	fromDir, err := ReadPolicies([]string{dir}, policy.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Files named in the other order: the ConfigMap's keys (and the agent's
	// hash of them) are the same, so the annotation must be too.
	reversed, err := ReadPolicies([]string{filepath.Join(dir, "b.yaml"), filepath.Join(dir, "a.yaml")}, policy.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if fromDir.Set.Hash != reversed.Set.Hash {
		t.Errorf("hash %s from the directory, %s from the files in reverse order", fromDir.Set.Hash, reversed.Set.Hash)
	}
	// And it is the hash the agent computes from its mounted volume, whose
	// files are named by the keys.
	vol := writePolicies(t, reversed.Data)
	onNode, err := policy.LoadPaths([]string{vol}, policy.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if onNode.Hash != reversed.Set.Hash {
		t.Errorf("hash of the ConfigMap's keys as files %s, annotation %s", onNode.Hash, reversed.Set.Hash)
	}
	if got := len(reversed.Data); got != 2 || reversed.Data["a.yaml"] != policyDoc("a", "/srv/a") {
		t.Errorf("data has %d keys: %v", got, reversed.Data)
	}
}

func TestPoliciesRefusesFilesTheConfigMapCannotCarry(t *testing.T) {
	one := writePolicies(t, map[string]string{"p.yaml": policyDoc("one", "/srv/one")})
	two := writePolicies(t, map[string]string{"p.yaml": policyDoc("two", "/srv/two")})
	_, err := ReadPolicies([]string{one, two}, policy.LoadOptions{})
	if !errors.Is(err, ErrPolicyFiles) || !strings.Contains(err.Error(), `have the same file name "p.yaml"`) {
		t.Errorf("two p.yaml: %v", err)
	}

	odd := writePolicies(t, map[string]string{"odd name.yaml": policyDoc("odd", "/srv/odd")})
	_, err = ReadPolicies([]string{filepath.Join(odd, "odd name.yaml")}, policy.LoadOptions{})
	if !errors.Is(err, ErrPolicyFiles) || !strings.Contains(err.Error(), "odd name.yaml") {
		t.Errorf("a name with a space: %v", err)
	}

	// The agent reads only *.yaml and *.yml from its volume: a policy.txt
	// would be deployed and never loaded.
	txt := filepath.Join(t.TempDir(), "policy.txt")
	if err := os.WriteFile(txt, []byte(policyDoc("txt", "/srv/txt")), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPolicies([]string{txt}, policy.LoadOptions{}); !errors.Is(err, ErrPolicyFiles) {
		t.Errorf("policy.txt: %v", err)
	}

	big := writePolicies(t, map[string]string{"big.yaml": policyDoc("big", "/srv/big") + "# " + strings.Repeat("x", maxConfigMapData) + "\n"})
	if _, err := ReadPolicies([]string{big}, policy.LoadOptions{}); !errors.Is(err, ErrPolicyFiles) || !strings.Contains(err.Error(), "a ConfigMap holds at most") {
		t.Errorf("more than 1 MiB: %v", err)
	}
}

func TestPoliciesReportsPolicyErrorsAsPolicyCheckDoes(t *testing.T) {
	dir := writePolicies(t, map[string]string{"bad.yaml": "apiVersion: drmfilter.dev/v1\nkind: ProtectionPolicy\nmetadata: {name: x}\nspec: {files: {}, rules: []}\n"})
	_, err := ReadPolicies([]string{dir}, policy.LoadOptions{})
	perrs := policy.Errors(err)
	if len(perrs) == 0 {
		t.Fatalf("want policy errors, got %v", err)
	}
	if got := perrs[0].Error(); !strings.Contains(got, filepath.Join(dir, "bad.yaml")+":4:15: spec.files: empty file selector") {
		t.Errorf("first error %q", got)
	}
}

// TestAgentHashesTheConfigMapAsDeployDoes checks the contract with the
// agent: the policies it reads from the deployed ConfigMap hash to the
// ConfigMap's policy-hash annotation, which is how `fleet status` tells a
// node that has the desired policy.
func TestAgentHashesTheConfigMapAsDeployDoes(t *testing.T) {
	dir := writePolicies(t, map[string]string{
		"b.yaml": policyDoc("b", "/srv/b"),
		"a.yml":  policyDoc("a", "/srv/a"),
	})
	p, err := ReadPolicies([]string{filepath.Join(dir, "b.yaml"), filepath.Join(dir, "a.yml")}, policy.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := Build(Options{}, p)
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{Data: m.ConfigMap.Data}
	onNode, err := policy.Load(kubeagent.ConfigMapSources(cm), policy.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := m.ConfigMap.Annotations[kubeschema.AnnotationPolicyHash]; onNode.Hash != want {
		t.Errorf("the agent computes %s from the ConfigMap, its annotation says %s", onNode.Hash, want)
	}
}
