package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drmfilter/drmfilter/internal/config"
)

// In a pod (hostRoot /host) the user names of a policy are the host's: the
// agent resolves them from hostRoot/etc/passwd, not from its image.
func TestPolicyUsersResolvedUnderTheHostRoot(t *testing.T) {
	host := t.TempDir()
	if err := os.MkdirAll(filepath.Join(host, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(host, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\ndrmfilter-podonly:x:4242:4242::/:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pol := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(pol, []byte(`apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: p}
spec:
  files: {paths: ["/srv/secret/**"]}
  rules:
  - {name: owner, effect: allow, operations: [open], subjects: {users: [drmfilter-podonly]}}
  - {name: others, effect: deny, operations: [open]}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	a := &Agent{cfg: config.Default()}
	a.cfg.Policies = []string{pol}
	a.cfg.HostRoot = host
	st, err := a.load(1)
	if err != nil {
		t.Fatalf("load with the host's accounts: %v", err)
	}
	if st.m.Rules() != 2 {
		t.Errorf("%d rules loaded, want 2", st.m.Rules())
	}
	// The same policy on this machine's own accounts names nobody.
	a.cfg.HostRoot = "/"
	if _, err := a.load(1); err == nil || !strings.Contains(err.Error(), `unknown user "drmfilter-podonly"`) {
		t.Errorf("load with this machine's accounts: %v", err)
	}
}
