package policy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeResolver knows a few accounts, so tests do not depend on the host's.
type fakeResolver map[string]uint32

func (f fakeResolver) LookupUser(name string) (uint32, error) {
	if id, ok := f["user:"+name]; ok {
		return id, nil
	}
	return 0, fmt.Errorf("user: unknown user %s", name)
}

func (f fakeResolver) LookupGroup(name string) (uint32, error) {
	if id, ok := f["group:"+name]; ok {
		return id, nil
	}
	return 0, fmt.Errorf("group: unknown group %s", name)
}

var testAccounts = fakeResolver{"user:root": 0, "user:alice": 1000, "group:finance": 3000}

func loadString(t testing.TB, docs ...string) (*Set, error) {
	t.Helper()
	var srcs []Source
	for i, d := range docs {
		srcs = append(srcs, Source{Name: fmt.Sprintf("p%d.yaml", i+1), Data: []byte(d)})
	}
	return Load(srcs, LoadOptions{Resolver: testAccounts})
}

func mustMatcher(t testing.TB, docs ...string) *Matcher {
	t.Helper()
	set, err := loadString(t, docs...)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return Compile(set, CompileOptions{})
}

// The document from the foundation issue, verbatim.
const financeDoc = `apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata:
  name: finance-docs
spec:
  mode: enforce
  files:
    paths: ["/srv/finance/**"]
  rules:
    - name: office-may-open
      operations: [open]
      subjects:
        executables: ["/usr/lib/libreoffice/program/soffice.bin"]
      effect: allow
    - name: everyone-else
      operations: [open, exec]
      effect: deny
`

const soffice = "/usr/lib/libreoffice/program/soffice.bin"

func decide(m *Matcher, op Operation, path, exe string) Decision {
	return m.Decide(&Input{Op: op, Path: path, Subject: Subject{Exe: exe, UID: 1000, GID: 1000}})
}

func TestFinanceExampleMeaning(t *testing.T) {
	m := mustMatcher(t, financeDoc)
	cases := []struct {
		name    string
		op      Operation
		path    string
		exe     string
		verdict Verdict
		rule    string
		covered bool
	}{
		{"libreoffice opens", OpOpen, "/srv/finance/2026/q3.xlsx", soffice, Allow, "office-may-open", true},
		{"libreoffice may not execute", OpExec, "/srv/finance/tool.sh", soffice, Deny, "everyone-else", true},
		{"cat may not open", OpOpen, "/srv/finance/q3.xlsx", "/usr/bin/cat", Deny, "everyone-else", true},
		{"bash may not execute", OpExec, "/srv/finance/run.sh", "/usr/bin/bash", Deny, "everyone-else", true},
		{"the directory itself", OpOpen, "/srv/finance", "/usr/bin/ls", Deny, "everyone-else", true},
		{"a sibling directory is not covered", OpOpen, "/srv/financial/q3.xlsx", "/usr/bin/cat", Allow, "", false},
		{"elsewhere is not covered", OpOpen, "/etc/passwd", "/usr/bin/cat", Allow, "", false},
		{"read access has no rule", OpRead, "/srv/finance/q3.xlsx", "/usr/bin/cat", Allow, "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := decide(m, c.op, c.path, c.exe)
			if d.Verdict != c.verdict || d.Rule != c.rule || d.Covered != c.covered {
				t.Fatalf("got verdict=%s rule=%q covered=%v, want %s %q %v", d.Verdict, d.Rule, d.Covered, c.verdict, c.rule, c.covered)
			}
			if d.Verdict == Deny && (!d.Audit || d.Policy != "finance-docs") {
				t.Fatalf("a deny must be audited and name its policy: %+v", d)
			}
		})
	}
}

func TestExamplesLoad(t *testing.T) {
	set, err := LoadPaths([]string{"../../examples"}, LoadOptions{})
	if err != nil {
		t.Fatalf("the shipped examples must load: %v", err)
	}
	if len(set.Policies) < 4 {
		t.Fatalf("expected at least 4 example policies, got %d", len(set.Policies))
	}
	m := Compile(set, CompileOptions{})
	// Source code: git may read, cat may not, vendored code is not covered.
	for _, c := range []struct {
		op      Operation
		path    string
		exe     string
		verdict Verdict
	}{
		{OpOpen, "/srv/src/acme/cmd/main.go", "/usr/bin/git", Allow},
		{OpRead, "/srv/src/acme/cmd/main.go", "/usr/local/go/pkg/tool/linux_amd64/compile", Allow},
		{OpOpen, "/srv/src/acme/cmd/main.go", "/usr/bin/cat", Deny},
		{OpOpen, "/srv/src/acme/README.md", "/usr/bin/cat", Allow},
		{OpOpen, "/srv/src/acme/vendor/x/y.go", "/usr/bin/cat", Allow},
		{OpOpen, "/srv/src/acme/cmd/MAIN.GO", "/usr/bin/cat", Deny},
	} {
		if d := decide(m, c.op, c.path, c.exe); d.Verdict != c.verdict {
			t.Errorf("%s %s by %s: got %s (%s/%s), want %s", c.op, c.path, c.exe, d.Verdict, d.Policy, d.Rule, c.verdict)
		}
	}
	// HR is in audit mode: nothing is denied, outsiders are recorded as would-deny.
	d := decide(m, OpOpen, "/srv/hr/salaries.xlsx", "/usr/bin/cat")
	if d.Verdict != Allow || !d.WouldDeny || !d.Audit || d.WouldPolicy != "hr-records-audit" || d.WouldRule != "not-hr" {
		t.Fatalf("audit-mode policy: got %+v", d)
	}
	in := &Input{Op: OpOpen, Path: "/srv/hr/salaries.xlsx", Subject: Subject{Exe: "/usr/bin/cat", UID: 5, GID: 2000}}
	if d := m.Decide(in); d.Verdict != Allow || d.WouldDeny || !d.Audit {
		t.Fatalf("HR staff in audit-mode policy: got %+v", d)
	}
}

func TestPrecedence(t *testing.T) {
	broad := `apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: broad}
spec:
  files: {paths: ["/srv/**"]}
  rules:
    - {name: backup-may-read, operations: [open], subjects: {executables: [/usr/bin/backup]}, effect: allow}
    - {name: deny-all, operations: [open], effect: deny}
`
	narrow := `apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: narrow}
spec:
  files: {paths: ["/srv/secret/**"]}
  rules:
    - {name: deny-all, operations: [open], effect: deny}
    - {name: auditor, operations: [open], subjects: {executables: [/usr/bin/auditor]}, effect: audit}
`
	equal := `apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: equal}
spec:
  files: {paths: ["/srv/**"]}
  rules:
    - {name: tool-allowed, operations: [open], subjects: {executables: [/usr/bin/tool]}, effect: allow}
    - {name: tool-denied-for-alice, operations: [open], subjects: {users: [alice]}, effect: deny}
`
	m := mustMatcher(t, broad, narrow, equal)
	cases := []struct {
		name, path, exe string
		uid             uint32
		verdict         Verdict
		decider         string
	}{
		{"more specific subject wins in one policy", "/srv/data/a", "/usr/bin/backup", 0, Allow, "broad/backup-may-read"},
		{"more specific file wins across policies", "/srv/secret/a", "/usr/bin/backup", 0, Deny, "narrow/deny-all"},
		{"subject specificity inside the narrow policy", "/srv/secret/a", "/usr/bin/auditor", 0, Allow, "narrow/auditor"},
		{"deny beats allow at equal specificity", "/srv/data/a", "/usr/bin/tool", 1000, Deny, "equal/tool-denied-for-alice"},
		{"allow when the deny does not apply", "/srv/data/a", "/usr/bin/tool", 0, Allow, "equal/tool-allowed"},
	}
	for _, c := range cases {
		d := m.Decide(&Input{Op: OpOpen, Path: c.path, Subject: Subject{Exe: c.exe, UID: c.uid}})
		if d.Verdict != c.verdict || d.Policy+"/"+d.Rule != c.decider {
			t.Errorf("%s: got %s by %s/%s, want %s by %s", c.name, d.Verdict, d.Policy, d.Rule, c.verdict, c.decider)
		}
	}
}

func TestAuditModeNeverWeakensEnforcement(t *testing.T) {
	enforce := `apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: enforce-broad}
spec:
  files: {paths: ["/srv/**"]}
  rules: [{name: deny-all, operations: [open], effect: deny}]
`
	trial := `apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: trial-narrow}
spec:
  mode: audit
  files: {paths: ["/srv/finance/**"]}
  rules:
    - {name: cat-ok, operations: [open], subjects: {executables: [/usr/bin/cat]}, effect: allow}
    - {name: others, operations: [open], effect: deny}
`
	m := mustMatcher(t, enforce, trial)
	d := decide(m, OpOpen, "/srv/finance/a", "/usr/bin/cat")
	if d.Verdict != Deny || d.Policy != "enforce-broad" {
		t.Fatalf("an audit-mode policy's allow must not undo an enforced deny: %+v", d)
	}
	// With every policy forced into audit mode nothing is denied, and the
	// deny is reported as a would-deny.
	m = Compile(m.Set(), CompileOptions{ForceAudit: true})
	d = decide(m, OpOpen, "/srv/data/a", "/usr/bin/less")
	if d.Verdict != Allow || !d.WouldDeny || d.WouldPolicy != "enforce-broad" || !d.Audit {
		t.Fatalf("forced audit: %+v", d)
	}
}

func TestFileSelectors(t *testing.T) {
	doc := `apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: sel}
spec:
  files:
    paths: ["/data/**"]
    extensions: [".PDF", tar.gz]
    filesystems: [ext4, nfs4]
    storageClasses: [local, network]
    excludePaths: ["/data/public/**"]
  rules: [{name: deny, operations: [open], effect: deny}]
---
apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: cloud-anywhere}
spec:
  files: {storageClasses: [cloud]}
  rules: [{name: deny-exec, operations: [exec], effect: deny}]
---
apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: keys-anywhere}
spec:
  files: {extensions: [key]}
  rules: [{name: deny, operations: [open], effect: deny}]
`
	m := mustMatcher(t, doc)
	cases := []struct {
		op           Operation
		path, fs, sc string
		verdict      Verdict
	}{
		{OpOpen, "/data/a/report.pdf", "ext4", "local", Deny},
		{OpOpen, "/data/a/REPORT.Pdf", "ext4", "local", Deny},
		{OpOpen, "/data/a/backup.tar.gz", "nfs4", "network", Deny},
		{OpOpen, "/data/a/report.txt", "ext4", "local", Allow},
		{OpOpen, "/data/a/report.pdf", "xfs", "local", Allow},
		{OpOpen, "/data/a/report.pdf", "ext4", "removable", Allow},
		{OpOpen, "/data/public/report.pdf", "ext4", "local", Allow},
		{OpOpen, "/data/.pdf", "ext4", "local", Allow},
		{OpExec, "/mnt/s3/tool", "fuse.mountpoint-s3", "cloud", Deny},
		{OpExec, "/mnt/local/tool", "ext4", "local", Allow},
		{OpOpen, "/home/u/.ssh/id.key", "ext4", "local", Deny},
		{OpOpen, "/home/u/.key", "ext4", "local", Allow},
	}
	for _, c := range cases {
		d := m.Decide(&Input{Op: c.op, Path: c.path, FSType: c.fs, StorageClass: c.sc, Subject: Subject{Exe: "/usr/bin/cat"}})
		if d.Verdict != c.verdict {
			t.Errorf("%s %s (%s, %s): got %s by %s/%s, want %s", c.op, c.path, c.fs, c.sc, d.Verdict, d.Policy, d.Rule, c.verdict)
		}
	}
	roots, anywhere := m.Roots()
	if strings.Join(roots, ",") != "/data" || !anywhere {
		t.Errorf("Roots() = %v, %v; want [/data], true", roots, anywhere)
	}
}

type countingHasher struct {
	sum   [32]byte
	calls int
}

func (h *countingHasher) SHA256() ([32]byte, error) { h.calls++; return h.sum, nil }

func TestSubjectSelectors(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	doc := `apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: subjects}
spec:
  files: {paths: ["/p/**"]}
  rules:
    - {name: by-hash, operations: [open], subjects: {executableHashes: ["sha256:` + hash + `"], executables: ["/opt/*/bin/*"]}, effect: allow}
    - {name: by-group, operations: [open], subjects: {groups: [finance], users: [root, "4242"]}, effect: allow}
    - {name: docker-only, operations: [open], subjects: {container: {runtimes: [docker]}}, effect: allow}
    - {name: this-container, operations: [open], subjects: {container: {ids: [0123456789ab]}, executables: [/bin/sh]}, effect: allow}
    - {name: host-only-exec, operations: [exec], subjects: {container: none}, effect: allow}
    - {name: pods, operations: [open], subjects: {kubernetes: {namespaces: [pay], podLabels: {matchLabels: {app: api}, matchExpressions: [{key: env, operator: NotIn, values: [dev]}]}}}, effect: allow}
    - {name: on-azure-vms, operations: [open], subjects: {environment: {machines: [virtual], clouds: [azure]}, users: [alice]}, effect: allow}
    - {name: deny, operations: [open, exec], effect: deny}
`
	m := mustMatcher(t, doc)
	var sum [32]byte
	for i := range sum {
		sum[i] = 0xab
	}
	h := &countingHasher{sum: sum}
	run := func(s Subject, env Env, op Operation) Decision {
		return m.Decide(&Input{Op: op, Path: "/p/f", Subject: s, Env: env})
	}
	if d := run(Subject{Exe: "/opt/tool/bin/x", Hasher: h}, Env{}, OpOpen); d.Rule != "by-hash" {
		t.Errorf("hash rule: %+v", d)
	}
	if h.calls != 1 {
		t.Errorf("hasher called %d times, want once", h.calls)
	}
	if d := run(Subject{Exe: "/opt/tool/bin/x", Hasher: &countingHasher{}}, Env{}, OpOpen); d.Verdict != Deny {
		t.Errorf("wrong hash must not be allowed: %+v", d)
	}
	if d := run(Subject{Exe: "/x", UID: 4242, Groups: []uint32{7, 3000}}, Env{}, OpOpen); d.Rule != "by-group" {
		t.Errorf("supplementary group: %+v", d)
	}
	if d := run(Subject{Exe: "/x", UID: 1, GID: 3000}, Env{}, OpOpen); d.Verdict != Deny {
		t.Errorf("group without user must be denied: %+v", d)
	}
	if d := run(Subject{Exe: "/x", Container: Container{ID: "ffff", Runtime: "docker"}}, Env{}, OpOpen); d.Rule != "docker-only" {
		t.Errorf("docker runtime: %+v", d)
	}
	if d := run(Subject{Exe: "/bin/sh", Container: Container{ID: "0123456789abcdef", Runtime: "containerd"}}, Env{}, OpOpen); d.Rule != "this-container" {
		t.Errorf("container id prefix: %+v", d)
	}
	if d := run(Subject{Exe: "/bin/sh", Container: Container{ID: "0123456789ac", Runtime: "containerd"}}, Env{}, OpOpen); d.Verdict != Deny {
		t.Errorf("other container id: %+v", d)
	}
	if d := run(Subject{Exe: "/bin/x"}, Env{}, OpExec); d.Rule != "host-only-exec" {
		t.Errorf("host exec: %+v", d)
	}
	if d := run(Subject{Exe: "/bin/x", Container: Container{ID: "ab12", Runtime: "cri-o"}}, Env{}, OpExec); d.Verdict != Deny {
		t.Errorf("container exec must be denied: %+v", d)
	}
	pod := &Pod{Namespace: "pay", Name: "api-0", Labels: map[string]string{"app": "api", "env": "prod"}}
	if d := run(Subject{Exe: "/app", Container: Container{ID: "c1", Runtime: "containerd"}, Pod: pod}, Env{}, OpOpen); d.Rule != "pods" {
		t.Errorf("pod selector: %+v", d)
	}
	dev := &Pod{Namespace: "pay", Name: "api-1", Labels: map[string]string{"app": "api", "env": "dev"}}
	if d := run(Subject{Exe: "/app", Container: Container{ID: "c1", Runtime: "containerd"}, Pod: dev}, Env{}, OpOpen); d.Verdict != Deny {
		t.Errorf("NotIn label must exclude dev pod: %+v", d)
	}
	if d := run(Subject{Exe: "/x", UID: 1000}, Env{Virtual: true, Hypervisor: "microsoft", Cloud: "azure"}, OpOpen); d.Rule != "on-azure-vms" {
		t.Errorf("environment selector: %+v", d)
	}
	if d := run(Subject{Exe: "/x", UID: 1000}, Env{Virtual: true, Hypervisor: "kvm", Cloud: "aws"}, OpOpen); d.Verdict != Deny {
		t.Errorf("environment selector elsewhere: %+v", d)
	}
}

func TestLoadIsAllOrNothing(t *testing.T) {
	bad := strings.Replace(financeDoc, "name: finance-docs", "name: other", 1)
	bad = strings.Replace(bad, "effect: deny", "effect: block", 1)
	set, err := loadString(t, financeDoc, bad)
	if set != nil || err == nil || !errors.Is(err, ErrInvalid) {
		t.Fatalf("a set with one bad document must be rejected whole: set=%v err=%v", set, err)
	}
}

func TestDirectoryLikeAConfigMapVolume(t *testing.T) {
	dir := t.TempDir()
	// A ConfigMap volume: real files in a timestamped directory, ..data
	// pointing at it, and the visible names symlinked through ..data.
	ts := filepath.Join(dir, "..2026_11_26_10_00_00.123")
	if err := os.Mkdir(ts, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ts, "finance.yaml"), []byte(financeDoc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ts, "notes.txt"), []byte("not a policy"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Base(ts), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"finance.yaml", "notes.txt"} {
		if err := os.Symlink(filepath.Join("..data", n), filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	set, err := LoadPaths([]string{dir}, LoadOptions{Resolver: testAccounts})
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Policies) != 1 || len(set.Files) != 1 || !strings.HasPrefix(set.Hash, "sha256:") {
		t.Fatalf("got %d policies from %v, hash %q", len(set.Policies), set.Files, set.Hash)
	}
	if _, err := LoadPaths([]string{t.TempDir()}, LoadOptions{}); err == nil || !strings.Contains(err.Error(), "no policy files") {
		t.Fatalf("an empty directory must be an error, got %v", err)
	}
}

func TestDecideUncoveredDoesNotAllocate(t *testing.T) {
	set, err := LoadPaths([]string{"../../examples"}, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := Compile(set, CompileOptions{})
	in := &Input{Op: OpOpen, Path: "/usr/lib/x86_64-linux-gnu/libc.so.6", FSType: "ext4", StorageClass: "local", Subject: Subject{Exe: "/usr/bin/cat"}}
	allocs := testing.AllocsPerRun(1000, func() {
		if d := m.Decide(in); d.Covered {
			t.Fatal("libc must not be covered")
		}
	})
	if allocs != 0 {
		t.Fatalf("deciding an uncovered file allocated %v times", allocs)
	}
}

func TestContainerPathsAndImages(t *testing.T) {
	doc := `apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: app-secret}
spec:
  files:
    containerPaths: ["/etc/app/secret.yaml", "/run/secrets/**"]
    excludePaths: ["/run/secrets/public/**"]
  rules:
    - name: api-pods
      operations: [open]
      subjects:
        kubernetes: {namespaces: [payments]}
        container: {images: ["registry.example.com/payments/api"]}
      effect: allow
    - name: others
      operations: [open]
      effect: deny
`
	m := mustMatcher(t, doc)
	if !m.HasContainerPaths() {
		t.Fatal("HasContainerPaths() = false")
	}
	if _, anywhere := m.Roots(); !anywhere {
		t.Fatal("a container-path policy must mark every filesystem")
	}
	api := Container{ID: "c1", Runtime: "containerd", Image: "registry.example.com/payments/api:2.3", ImageID: "sha256:" + strings.Repeat("a", 64)}
	pod := &Pod{Namespace: "payments", Name: "api-0"}
	cases := []struct {
		name          string
		path, cpath   string
		container     Container
		pod           *Pod
		covered, deny bool
	}{
		{"the file as the container sees it", "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~secret/app/secret.yaml", "/etc/app/secret.yaml", Container{ID: "c2", Runtime: "containerd", Image: "busybox:1.36"}, &Pod{Namespace: "payments", Name: "debug"}, true, true},
		{"the selected image in the namespace", "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~secret/app/secret.yaml", "/etc/app/secret.yaml", api, pod, true, false},
		{"the same host file from the host", "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~secret/app/secret.yaml", "", Container{}, nil, false, false},
		{"under a glob", "/var/lib/docker/volumes/x/_data/db", "/run/secrets/db", Container{ID: "c3", Runtime: "docker"}, nil, true, true},
		{"excluded by container path", "/var/lib/docker/volumes/x/_data/p", "/run/secrets/public/p", Container{ID: "c3", Runtime: "docker"}, nil, false, false},
	}
	for _, c := range cases {
		in := &Input{Op: OpOpen, Path: c.path, ContainerPath: c.cpath, Subject: Subject{Exe: "/app", Container: c.container, Pod: c.pod}}
		in2 := *in
		d := m.Decide(in)
		if d.Covered != c.covered || (d.Verdict == Deny) != c.deny {
			t.Errorf("%s: got covered=%v verdict=%s (%s), want covered=%v deny=%v", c.name, d.Covered, d.Verdict, d.Rule, c.covered, c.deny)
		}
		if ex := m.Explain(&in2); ex.Decision != d {
			t.Errorf("%s: explain %+v differs from decide %+v", c.name, ex.Decision, d)
		}
	}
}

func TestImageMatches(t *testing.T) {
	c := &Container{Image: "docker.io/library/nginx:1.27", ImageID: "docker.io/library/nginx@sha256:" + strings.Repeat("b", 64)}
	for sel, want := range map[string]bool{
		"docker.io/library/nginx:1.27":                              true,
		"docker.io/library/nginx":                                   true,
		"sha256:" + strings.Repeat("b", 64):                         true,
		"docker.io/library/nginx@sha256:" + strings.Repeat("b", 64): true,
		"nginx:1.26":                        false,
		"docker.io/library/nginx:1.2":       false,
		"sha256:" + strings.Repeat("c", 64): false,
	} {
		if got := imageMatches([]string{sel}, c); got != want {
			t.Errorf("imageMatches(%q) = %v, want %v", sel, got, want)
		}
	}
	if imageMatches([]string{"nginx"}, &Container{}) {
		t.Error("a container of unknown image must not match")
	}
}
