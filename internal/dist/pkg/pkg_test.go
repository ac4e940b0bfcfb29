package pkg

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/drmfilter/drmfilter/internal/dist"
	"github.com/drmfilter/drmfilter/internal/policy"
	"github.com/drmfilter/drmfilter/internal/testutil"
)

// requireTool returns the path of a program the test needs: outside CI a
// missing one skips the test, in CI it fails it (CI installs it).
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if testutil.InCI() {
			t.Fatalf("CI=true but %s is not installed", name)
		}
		t.Skipf("skipping: %s is not installed", name)
	}
	return p
}

func repoDir(t *testing.T) string {
	t.Helper()
	d, err := dist.FindRepo(".")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// fakeBinary writes a stand-in for the agent: packaging does not look inside
// it, and a script keeps these tests fast (internal/dist/image runs the real
// static binary).
func fakeBinary(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "drmfilter")
	if err := os.WriteFile(p, []byte("#!/bin/sh\necho drmfilter test binary\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func build(t *testing.T, format, version string) string {
	t.Helper()
	path, err := Build(Options{RepoDir: repoDir(t), Binary: fakeBinary(t), Version: version, Arch: "amd64", Format: format, OutDir: t.TempDir()})
	if err != nil {
		t.Fatalf("Build(%s %s): %v", format, version, err)
	}
	return path
}

func output(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// The files every package holds, with their modes as `ls -l` shows them.
var wantFiles = map[string]string{
	"/usr/bin/drmfilter":                                   "-rwxr-xr-x",
	"/usr/lib/systemd/system/drmfilter.service":            "-rw-r--r--",
	"/etc/drmfilter/config.yaml":                           "-rw-r--r--",
	"/etc/drmfilter/policies/":                             "drwxr-xr-x",
	"/etc/drmfilter/policies/default.yaml":                 "-rw-r--r--",
	"/usr/share/drmfilter/examples/demo.yaml":              "-rw-r--r--",
	"/usr/share/drmfilter/examples/finance-docs.yaml":      "-rw-r--r--",
	"/usr/share/drmfilter/examples/source-code.yaml":       "-rw-r--r--",
	"/usr/share/drmfilter/examples/container-secrets.yaml": "-rw-r--r--",
	"/var/log/drmfilter/":                                  "drwx------",
}

func TestDebContentsAndMetadata(t *testing.T) {
	requireTool(t, "dpkg-deb")
	deb := build(t, "deb", "v1.2.3-rc.1")
	if got, want := filepath.Base(deb), "drmfilter_1.2.3~rc.1_amd64.deb"; got != want {
		t.Errorf("package file name %s, want %s", got, want)
	}

	listed := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(output(t, "dpkg-deb", "-c", deb)), "\n") {
		f := strings.Fields(line)
		listed[strings.TrimPrefix(f[len(f)-1], ".")] = f[0]
	}
	for path, mode := range wantFiles {
		if got, ok := listed[path]; !ok {
			t.Errorf("dpkg-deb -c does not list %s", path)
		} else if got != mode {
			t.Errorf("%s has mode %s, want %s", path, got, mode)
		}
	}
	for path := range listed {
		if strings.HasPrefix(path, "/etc/drmfilter/policies/") && path != "/etc/drmfilter/policies/" && path != DefaultPolicy {
			t.Errorf("the package installs policy %s; only %s belongs in %s", path, DefaultPolicy, PolicyDir)
		}
	}

	fields := map[string]string{
		"Package":      "drmfilter",
		"Version":      "1.2.3~rc.1",
		"Architecture": "amd64",
		"Maintainer":   Maintainer,
		"Homepage":     dist.Repository,
		"Section":      "admin",
	}
	for field, want := range fields {
		if got := strings.TrimSpace(output(t, "dpkg-deb", "-f", deb, field)); got != want {
			t.Errorf("control field %s = %q, want %q", field, got, want)
		}
	}
	if got := strings.TrimSpace(output(t, "dpkg-deb", "-f", deb, "Depends")); got != "" {
		t.Errorf("Depends = %q; the static binary needs nothing", got)
	}
	info := output(t, "dpkg-deb", "-I", deb)
	for _, script := range []string{"postinst", "prerm", "postrm"} {
		if !strings.Contains(info, script) {
			t.Errorf("dpkg-deb -I lists no %s:\n%s", script, info)
		}
	}

	ctl := t.TempDir()
	output(t, "dpkg-deb", "-e", deb, ctl)
	conffiles, err := os.ReadFile(filepath.Join(ctl, "conffiles"))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Fields(string(conffiles))
	slices.Sort(got)
	if want := []string{ConfigPath, DefaultPolicy}; !slices.Equal(got, want) {
		t.Errorf("conffiles %v, want %v", got, want)
	}
}

// dpkgRoot is a scratch dpkg root: an empty package database, a directory
// that makes the maintainer scripts believe systemd runs, and a fake
// systemctl first on PATH that records its arguments.
type dpkgRoot struct {
	dir   string
	calls string
	env   []string
}

func newDpkgRoot(t *testing.T) *dpkgRoot {
	t.Helper()
	r := &dpkgRoot{dir: t.TempDir()}
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "run/systemd/system"} {
		if err := os.MkdirAll(filepath.Join(r.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"var/lib/dpkg/status", "var/lib/dpkg/available"} {
		if err := os.WriteFile(filepath.Join(r.dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := t.TempDir()
	r.calls = filepath.Join(bin, "calls")
	fake := "#!/bin/sh\necho \"$*\" >> " + r.calls + "\n"
	if err := os.WriteFile(filepath.Join(bin, "systemctl"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	r.env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return r
}

// dpkg runs dpkg on the scratch root; maintainer scripts run outside a
// chroot with DPKG_ROOT set (--force-script-chrootless).
func (r *dpkgRoot) dpkg(t *testing.T, args ...string) {
	t.Helper()
	all := append([]string{"--root=" + r.dir, "--force-not-root", "--force-script-chrootless", "--log=/dev/null"}, args...)
	cmd := exec.Command("dpkg", all...)
	cmd.Env = r.env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// takeCalls returns the systemctl calls since the last takeCalls.
func (r *dpkgRoot) takeCalls(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(r.calls)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	os.Remove(r.calls)
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

func (r *dpkgRoot) path(p string) string { return filepath.Join(r.dir, p) }

func TestDebInstallUpgradeRemove(t *testing.T) {
	testutil.RequireRoot(t)
	requireTool(t, "dpkg")
	v1 := build(t, "deb", "1.0.0")
	v2 := build(t, "deb", "1.1.0")
	r := newDpkgRoot(t)

	r.dpkg(t, "-i", v1)
	for path, mode := range wantFiles {
		fi, err := os.Stat(r.path(path))
		if err != nil {
			t.Errorf("after install: %v", err)
			continue
		}
		if got := fi.Mode().String(); got != mode {
			t.Errorf("installed %s has mode %s, want %s", path, got, mode)
		}
	}
	if got, want := r.takeCalls(t), []string{"daemon-reload", "enable drmfilter.service"}; !slices.Equal(got, want) {
		t.Errorf("install called systemctl %q, want %q (and no start: policies come first)", got, want)
	}

	// The administrator edits the configuration, adds a policy, and the
	// agent writes audit records.
	edited := []byte("# edited by the administrator\nmode: audit\n")
	mine := []byte("# a policy of the administrator's\n")
	for p, data := range map[string][]byte{ConfigPath: edited, PolicyDir + "/mine.yaml": mine, AuditLogDir + "/audit.jsonl": []byte("{}\n")} {
		if err := os.WriteFile(r.path(p), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	r.dpkg(t, "-i", v2)
	if got, want := r.takeCalls(t), []string{"daemon-reload", "enable drmfilter.service", "try-restart drmfilter.service"}; !slices.Equal(got, want) {
		t.Errorf("upgrade called systemctl %q, want %q (no stop)", got, want)
	}
	if got, _ := os.ReadFile(r.path(ConfigPath)); string(got) != string(edited) {
		t.Errorf("upgrade replaced the edited %s with:\n%s", ConfigPath, got)
	}

	r.dpkg(t, "-r", "drmfilter")
	if got, want := r.takeCalls(t), []string{"stop drmfilter.service", "disable drmfilter.service", "daemon-reload"}; !slices.Equal(got, want) {
		t.Errorf("remove called systemctl %q, want %q", got, want)
	}
	if _, err := os.Stat(r.path(BinaryPath)); !os.IsNotExist(err) {
		t.Errorf("after remove %s is still there (%v)", BinaryPath, err)
	}
	for p, want := range map[string][]byte{ConfigPath: edited, PolicyDir + "/mine.yaml": mine, AuditLogDir + "/audit.jsonl": []byte("{}\n")} {
		if got, err := os.ReadFile(r.path(p)); err != nil || string(got) != string(want) {
			t.Errorf("after remove %s: %q, %v; want it kept", p, got, err)
		}
	}
	if _, err := os.Stat(r.path(DefaultPolicy)); err != nil {
		t.Errorf("remove (not purge) deleted the configuration file %s: %v", DefaultPolicy, err)
	}

	// A purge removes the configuration files dpkg installed, nothing else.
	r.dpkg(t, "-P", "drmfilter")
	for _, p := range []string{ConfigPath, DefaultPolicy} {
		if _, err := os.Stat(r.path(p)); !os.IsNotExist(err) {
			t.Errorf("after purge %s is still there (%v)", p, err)
		}
	}
	for _, p := range []string{PolicyDir + "/mine.yaml", AuditLogDir + "/audit.jsonl"} {
		if _, err := os.Stat(r.path(p)); err != nil {
			t.Errorf("purge deleted %s, which dpkg does not own: %v", p, err)
		}
	}
}

func TestRPMContentsAndMetadata(t *testing.T) {
	requireTool(t, "rpm")
	rpmFile := build(t, "rpm", "1.2.3")
	if got, want := filepath.Base(rpmFile), "drmfilter-1.2.3-1.x86_64.rpm"; got != want {
		t.Errorf("package file name %s, want %s", got, want)
	}
	q := func(args ...string) string {
		return output(t, "rpm", append([]string{"-qp", "--nosignature"}, append(args, rpmFile)...)...)
	}
	if got, want := q("--qf", "%{NAME} %{VERSION} %{RELEASE} %{ARCH} %{LICENSE} %{URL}"), "drmfilter 1.2.3 1 x86_64 "+dist.License+" "+dist.Repository; got != want {
		t.Errorf("rpm metadata %q, want %q", got, want)
	}
	// --dump: path size mtime digest mode owner group isconfig isdoc ...
	dumped := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(q("--dump")), "\n") {
		f := strings.Fields(line)
		dumped[f[0]] = f
	}
	modes := map[string]string{"-rwxr-xr-x": "0100755", "-rw-r--r--": "0100644", "drwxr-xr-x": "040755", "drwx------": "040700"}
	for path, mode := range wantFiles {
		f, ok := dumped[strings.TrimSuffix(path, "/")]
		if !ok {
			t.Errorf("rpm --dump does not list %s", path)
			continue
		}
		if f[4] != modes[mode] {
			t.Errorf("%s has mode %s, want %s", path, f[4], modes[mode])
		}
	}
	configs := strings.Fields(q("-c"))
	slices.Sort(configs)
	if want := []string{ConfigPath, DefaultPolicy}; !slices.Equal(configs, want) {
		t.Errorf("rpm config files %v, want %v", configs, want)
	}
	// noreplace: an upgrade keeps an edited file and writes the new one as .rpmnew.
	if got := q("--qf", "[%{FILENAMES} %{FILEFLAGS:fflags}\n]"); !strings.Contains(got, ConfigPath+" cn") || !strings.Contains(got, DefaultPolicy+" cn") {
		t.Errorf("config files are not marked config(noreplace):\n%s", got)
	}
	if got := q("--requires"); strings.Contains(got, "libc") {
		t.Errorf("the package requires a C library; the binary is static:\n%s", got)
	}
	scripts := q("--scripts")
	for _, s := range []string{"postinstall scriptlet", "preuninstall scriptlet", "postuninstall scriptlet"} {
		if !strings.Contains(scripts, s) {
			t.Errorf("rpm --scripts has no %s", s)
		}
	}
}

// The policy a fresh package enables must not deny anything: every policy
// in it is in audit mode, and it loads like the agent loads it.
func TestDefaultPolicyDeniesNothing(t *testing.T) {
	set, err := policy.LoadPaths([]string{filepath.Join(repoDir(t), "deploy", "systemd", "policies")}, policy.LoadOptions{})
	if err != nil {
		t.Fatalf("the default policy does not load: %v", err)
	}
	if len(set.Policies) == 0 {
		t.Fatal("no default policy")
	}
	for _, p := range set.Policies {
		if p.Spec.Mode != policy.ModeAudit {
			t.Errorf("default policy %s has mode %s; a fresh install must deny nothing (audit)", p.Name, p.Spec.Mode)
		}
	}
}

func TestMaintainerScripts(t *testing.T) {
	sc, _ := exec.LookPath("shellcheck")
	if sc == "" && testutil.InCI() {
		t.Fatal("CI=true but shellcheck is not installed")
	}
	entries, err := scripts.ReadDir("scripts")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		p := filepath.Join("scripts", e.Name())
		output(t, "sh", "-n", p)
		if sc != "" {
			output(t, sc, "-s", "sh", p)
		}
	}
}
