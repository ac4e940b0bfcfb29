package kubernetes

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/drmfilter/drmfilter/internal/policy"
)

// policyDoc is a valid policy protecting dir.
func policyDoc(name, dir string) string {
	return fmt.Sprintf(`apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata:
  name: %s
spec:
  files:
    paths: ["%s/**"]
  rules:
    - name: nobody
      operations: [open]
      effect: deny
`, name, dir)
}

// writePolicies writes name -> content files into a new directory.
func writePolicies(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// testPolicies loads files as the deploy command would.
func testPolicies(t *testing.T, files map[string]string) *Policies {
	t.Helper()
	p, err := ReadPolicies([]string{writePolicies(t, files)}, policy.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testManifest builds the default manifest for files.
func testManifest(t *testing.T, files map[string]string) *Manifest {
	t.Helper()
	m, err := Build(Options{Image: "registry.example/drmfilter:test"}, testPolicies(t, files))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var onePolicy = map[string]string{"secrets.yaml": policyDoc("secrets", "/srv/secrets")}

type runtimeObject = runtime.Object

func forbidden(resource, name string) error {
	return apierrors.NewForbidden(schema.GroupResource{Group: "rbac.authorization.k8s.io", Resource: resource}, name, errors.New(`user "someone" cannot patch`))
}

func runtimeGVK(apiVersion, kind string) schema.GroupVersionKind {
	return schema.FromAPIVersionAndKind(apiVersion, kind)
}

func typeName(o any) string { return fmt.Sprintf("%T", o) }
