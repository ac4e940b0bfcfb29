package install

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/drmfilter/drmfilter/internal/dist"
	"github.com/drmfilter/drmfilter/internal/dist/pkg"
	"github.com/drmfilter/drmfilter/internal/testutil"
)

func requireTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if testutil.InCI() {
			t.Fatalf("CI=true but %s is not installed", name)
		}
		t.Skipf("skipping: %s is not installed", name)
	}
}

// machine is one scratch machine: a root the package is installed into, the
// fakes' state, and a .deb of the fake agent with its checksum.
type machine struct {
	repo, root, state, bin string
	agent, arch            string
	deb, sum               string
}

func newMachine(t *testing.T) *machine {
	t.Helper()
	testutil.RequireRoot(t)
	requireTool(t, "dpkg")
	repo, err := dist.FindRepo(".")
	if err != nil {
		t.Fatal(err)
	}
	m := &machine{repo: repo, root: t.TempDir(), state: t.TempDir(), bin: t.TempDir()}
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "run/systemd/system"} {
		must(t, os.MkdirAll(filepath.Join(m.root, d), 0o755))
	}
	for _, f := range []string{"var/lib/dpkg/status", "var/lib/dpkg/available"} {
		must(t, os.WriteFile(filepath.Join(m.root, f), nil, 0o644))
	}
	must(t, os.WriteFile(filepath.Join(m.bin, "systemctl"), []byte(fakeSystemctl), 0o755))
	must(t, os.WriteFile(filepath.Join(m.bin, "journalctl"), []byte(fakeJournalctl), 0o755))
	agent := filepath.Join(t.TempDir(), "drmfilter")
	must(t, os.WriteFile(agent, []byte(fakeAgent), 0o755))
	arch := map[string]string{"x86_64": "amd64", "aarch64": "arm64"}[uname(t)]
	if arch == "" {
		t.Skipf("skipping: no drmfilter package for %s", uname(t))
	}
	m.agent, m.arch = agent, arch
	m.deb, m.sum = m.build(t, "1.0.0")
	return m
}

// build returns a .deb of the fake agent at version, and its SHA-256.
func (m *machine) build(t *testing.T, version string) (string, string) {
	t.Helper()
	deb, err := pkg.Build(pkg.Options{RepoDir: m.repo, Binary: m.agent, Version: version, Arch: m.arch, Format: "deb", OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return deb, sha256File(t, deb)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func uname(t *testing.T) string {
	var u syscall.Utsname
	must(t, syscall.Uname(&u))
	var b []byte
	for _, c := range u.Machine {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b)
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	must(t, err)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

type result struct {
	stdout, stderr string
	code           int
}

// install runs scripts/install.sh with args on the machine.
func (m *machine) install(t *testing.T, args ...string) result {
	t.Helper()
	cmd := exec.Command(filepath.Join(m.repo, "scripts", "install.sh"), args...)
	cmd.Env = append(os.Environ(),
		"DRMFILTER_INSTALL_ROOT="+m.root,
		"FAKE_STATE="+m.state,
		"PATH="+m.bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return r
}

// calls returns the systemctl calls since the last look.
func (m *machine) calls(t *testing.T) []string {
	t.Helper()
	p := filepath.Join(m.state, "calls")
	data, err := os.ReadFile(p)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	os.Remove(p)
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// policyFiles returns the names of the files in the installed policy
// directory.
func (m *machine) policyFiles(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(m.root, pkg.PolicyDir))
	must(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func writePolicy(t *testing.T, name, effect string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	body := "apiVersion: drmfilter.dev/v1\nkind: ProtectionPolicy\nmetadata:\n  name: " + strings.TrimSuffix(name, ".yaml") +
		"\nspec:\n  files:\n    paths: [\"/srv/x/**\"]\n  rules:\n    - name: r\n      operations: [open]\n      effect: " + effect + "\n"
	must(t, os.WriteFile(p, []byte(body), 0o644))
	return p
}

func hasCall(calls []string, verb string) bool {
	return slices.ContainsFunc(calls, func(c string) bool { return strings.HasPrefix(c, verb+" ") })
}

func TestChecksumMismatchInstallsNothing(t *testing.T) {
	m := newMachine(t)
	wrong := strings.Repeat("0", 64)
	r := m.install(t, "--package-url", "file://"+m.deb, "--sha256", wrong)
	if r.code != 4 {
		t.Fatalf("exit status %d, want 4 (checksum mismatch)\nstderr: %s", r.code, r.stderr)
	}
	for _, want := range []string{"checksum mismatch", "expected sha256 " + wrong, "got " + m.sum, "nothing was installed"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(m.root, pkg.BinaryPath)); !os.IsNotExist(err) {
		t.Errorf("%s exists after a checksum mismatch (%v)", pkg.BinaryPath, err)
	}
	if c := m.calls(t); c[0] != "" {
		t.Errorf("systemctl was called: %q", c)
	}
}

func TestInstallRerunPolicyChangeAndMode(t *testing.T) {
	m := newMachine(t)
	good := writePolicy(t, "finance.yaml", "deny")

	// First run: install the package, place the policy, start the agent.
	r := m.install(t, "--package-url", "file://"+m.deb, "--sha256", strings.ToUpper(m.sum), "--policy-file", good)
	if r.code != 0 {
		t.Fatalf("first run: exit status %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	bin := filepath.Join(m.root, pkg.BinaryPath)
	st1, err := os.Stat(bin)
	if err != nil {
		t.Fatalf("first run installed no agent: %v", err)
	}
	if got := m.policyFiles(t); !slices.Equal(got, []string{"finance.yaml"}) {
		t.Errorf("policies %v, want exactly [finance.yaml] (the given set replaces the default)", got)
	}
	if _, err := os.Stat(filepath.Join(m.root, "var/lib/drmfilter/policies.previous/default.yaml")); err != nil {
		t.Errorf("the replaced default policy was not kept: %v", err)
	}
	calls := m.calls(t)
	if !slices.Contains(calls, "enable --quiet drmfilter.service") || !slices.Contains(calls, "restart drmfilter.service") {
		t.Errorf("first run: systemctl calls %q, want enable and a start", calls)
	}
	if !strings.Contains(r.stdout, "policy generation 1") {
		t.Errorf("first run does not print the agent's status:\n%s", r.stdout)
	}

	// Second run, same arguments: nothing reinstalled, nothing restarted.
	r = m.install(t, "--package-url", "file://"+m.deb, "--sha256", m.sum, "--policy-file", good)
	if r.code != 0 {
		t.Fatalf("second run: exit status %d\nstderr: %s", r.code, r.stderr)
	}
	st2, err := os.Stat(bin)
	must(t, err)
	if !os.SameFile(st1, st2) {
		t.Error("second run reinstalled the package")
	}
	calls = m.calls(t)
	for _, verb := range []string{"restart", "try-restart", "reload", "start"} {
		if hasCall(calls, verb) {
			t.Errorf("second run called systemctl %s: %q", verb, calls)
		}
	}
	if !strings.Contains(r.stdout, "already installed") || !strings.Contains(r.stdout, "nothing changed") {
		t.Errorf("second run does not say it changed nothing:\n%s", r.stdout)
	}

	// Third run, another policy over HTTP with a token in the URL: the agent
	// reloads (no restart) and the token is never printed.
	audit := writePolicy(t, "hr.yaml", "audit")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Query().Get("sig") != "SECRET" {
			http.Error(w, "no token", http.StatusForbidden)
			return
		}
		switch req.URL.Path {
		case "/drmfilter.deb":
			http.ServeFile(w, req, m.deb)
		case "/policies/hr.yaml":
			http.ServeFile(w, req, audit)
		default:
			http.NotFound(w, req)
		}
	}))
	defer srv.Close()
	r = m.install(t, "--package-url", srv.URL+"/drmfilter.deb?sig=SECRET", "--sha256", m.sum, "--policy-url", srv.URL+"/policies/hr.yaml?sig=SECRET")
	if r.code != 0 {
		t.Fatalf("third run: exit status %d\nstderr: %s", r.code, r.stderr)
	}
	if got := m.policyFiles(t); !slices.Equal(got, []string{"hr.yaml"}) {
		t.Errorf("policies %v, want [hr.yaml]", got)
	}
	calls = m.calls(t)
	if !hasCall(calls, "reload") || hasCall(calls, "restart") {
		t.Errorf("third run: systemctl calls %q, want a reload and no restart", calls)
	}
	// The agent was running: it was given the policies (on the bpf
	// backend no other process may write its policy directory).
	if admin, _ := os.ReadFile(filepath.Join(m.state, "admin")); !strings.Contains(string(admin), "policy apply --replace") {
		t.Errorf("third run: the running agent was not asked to take the policies (admin requests: %q)", admin)
	}
	if strings.Contains(r.stdout+r.stderr, "SECRET") {
		t.Errorf("the URL's token was printed:\n%s%s", r.stdout, r.stderr)
	}

	// Fourth run: --mode audit edits the configuration and restarts.
	r = m.install(t, "--package-url", "file://"+m.deb, "--sha256", m.sum, "--mode", "audit")
	if r.code != 0 {
		t.Fatalf("fourth run: exit status %d\nstderr: %s", r.code, r.stderr)
	}
	cfg, err := os.ReadFile(filepath.Join(m.root, pkg.ConfigPath))
	must(t, err)
	if !strings.Contains(string(cfg), "\nmode: audit ") {
		t.Errorf("config.yaml after --mode audit:\n%s", cfg)
	}
	if calls := m.calls(t); !hasCall(calls, "restart") {
		t.Errorf("fourth run: systemctl calls %q, want a restart for the new mode", calls)
	}
	if admin, _ := os.ReadFile(filepath.Join(m.state, "admin")); !strings.Contains(string(admin), "config apply") {
		t.Errorf("fourth run: the running agent was not asked to write the configuration (admin requests: %q)", admin)
	}
	if got := m.policyFiles(t); !slices.Equal(got, []string{"hr.yaml"}) {
		t.Errorf("a run without policies changed them: %v", got)
	}
}

func TestUpgradeRestartsOnce(t *testing.T) {
	m := newMachine(t)
	if r := m.install(t, "--package-url", "file://"+m.deb, "--sha256", m.sum); r.code != 0 {
		t.Fatalf("first run: exit status %d\nstderr: %s", r.code, r.stderr)
	}
	m.calls(t)
	deb2, sum2 := m.build(t, "1.1.0")
	r := m.install(t, "--package-url", "file://"+deb2, "--sha256", sum2)
	if r.code != 0 {
		t.Fatalf("upgrade: exit status %d\nstderr: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "updating drmfilter 1.0.0 to 1.1.0") {
		t.Errorf("upgrade output:\n%s", r.stdout)
	}
	calls := m.calls(t)
	restarts := 0
	for _, c := range calls {
		if strings.HasPrefix(c, "restart ") || strings.HasPrefix(c, "try-restart ") {
			restarts++
		}
	}
	if restarts != 1 || !slices.Contains(calls, "try-restart drmfilter.service") {
		t.Errorf("upgrade: systemctl calls %q, want exactly one restart (the package's try-restart)", calls)
	}
}

func TestInvalidPolicyChangesNothing(t *testing.T) {
	m := newMachine(t)
	good := writePolicy(t, "finance.yaml", "deny")
	if r := m.install(t, "--package-url", "file://"+m.deb, "--sha256", m.sum, "--policy-file", good); r.code != 0 {
		t.Fatalf("first run: exit status %d\nstderr: %s", r.code, r.stderr)
	}
	m.calls(t)

	bad := writePolicy(t, "broken.yaml", "permit")
	r := m.install(t, "--package-url", "file://"+m.deb, "--sha256", m.sum, "--policy-file", bad)
	if r.code != 6 {
		t.Fatalf("exit status %d, want 6 (invalid policy)\nstderr: %s", r.code, r.stderr)
	}
	for _, want := range []string{`broken.yaml:11:15: spec.rules[0].effect: unknown effect "permit"`, "nothing was changed"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if got := m.policyFiles(t); !slices.Equal(got, []string{"finance.yaml"}) {
		t.Errorf("policies after an invalid one: %v, want [finance.yaml]", got)
	}
	if calls := m.calls(t); hasCall(calls, "restart") || hasCall(calls, "reload") || hasCall(calls, "stop") {
		t.Errorf("the running agent was touched: %q", calls)
	}
}

func TestFailedStartShowsTheJournal(t *testing.T) {
	m := newMachine(t)
	must(t, os.WriteFile(filepath.Join(m.state, "fail-start"), nil, 0o644))
	r := m.install(t, "--package-url", "file://"+m.deb, "--sha256", m.sum, "--timeout", "5")
	if r.code != 7 {
		t.Fatalf("exit status %d, want 7 (failed start)\nstderr: %s", r.code, r.stderr)
	}
	for _, want := range []string{"drmfilter failed to start", "fanotify_init: operation not permitted (fake journal)"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	m := newMachine(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--sha256", m.sum}, "--package-url is required"},
		{[]string{"--package-url", "file://" + m.deb, "--sha256", "abc"}, "64 hexadecimal digits"},
		{[]string{"--package-url", "file://" + m.deb, "--sha256", m.sum, "--mode", "strict"}, "--mode must be audit or enforce"},
		{[]string{"--package-url", "ftp://example.com/x.deb", "--sha256", m.sum}, "unsupported URL"},
	} {
		r := m.install(t, tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("install.sh %q: exit %d, stderr %q; want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}

func TestShellcheck(t *testing.T) {
	requireTool(t, "shellcheck")
	repo, err := dist.FindRepo(".")
	must(t, err)
	out, err := exec.Command("shellcheck", "-s", "sh", filepath.Join(repo, "scripts", "install.sh")).CombinedOutput()
	if err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
}
