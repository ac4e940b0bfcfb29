package pkg

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/drmfilter/drmfilter/internal/testutil"
)

// rpmRoot is a scratch root for rpm --root. rpm runs scriptlets chrooted
// into it, so it holds a static busybox as /bin/sh and a fake systemctl
// that records its arguments in /calls.
type rpmRoot struct{ dir string }

func newRPMRoot(t *testing.T) *rpmRoot {
	t.Helper()
	busybox := requireTool(t, "busybox")
	r := &rpmRoot{dir: t.TempDir()}
	for _, d := range []string{"bin", "usr/bin", "run/systemd/system"} {
		if err := os.MkdirAll(r.path(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.path("bin/busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("busybox", r.path("bin/sh")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.path("usr/bin/systemctl"), []byte("#!/bin/sh\necho \"$*\" >> /calls\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rpmRoot) path(p string) string { return filepath.Join(r.dir, p) }

func (r *rpmRoot) rpm(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("rpm", append([]string{"--root=" + r.dir, "--nosignature", "--nodeps"}, args...)...).CombinedOutput()
	if err != nil || strings.Contains(string(out), "scriptlet failed") {
		t.Fatalf("rpm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (r *rpmRoot) takeCalls(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(r.path("calls"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	os.Remove(r.path("calls"))
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// The .rpm's scriptlets get rpm's arguments (1 install, 2 upgrade, 0
// erase) and must do what the .deb's do; an erase keeps the administrator's
// policies and the audit logs.
func TestRPMInstallUpgradeErase(t *testing.T) {
	testutil.RequireRoot(t)
	requireTool(t, "rpm")
	v1 := build(t, "rpm", "1.0.0")
	v2 := build(t, "rpm", "1.1.0")
	r := newRPMRoot(t)

	r.rpm(t, "-i", v1)
	for path, mode := range wantFiles {
		fi, err := os.Stat(r.path(path))
		if err != nil {
			t.Errorf("after install: %v", err)
		} else if got := fi.Mode().String(); got != mode {
			t.Errorf("installed %s has mode %s, want %s", path, got, mode)
		}
	}
	if got, want := r.takeCalls(t), []string{"daemon-reload", "enable drmfilter.service"}; !slices.Equal(got, want) {
		t.Errorf("install called systemctl %q, want %q", got, want)
	}

	edited := []byte("# edited\nmode: audit\n")
	kept := map[string][]byte{PolicyDir + "/mine.yaml": []byte("# mine\n"), AuditLogDir + "/audit.jsonl": []byte("{}\n")}
	for p, data := range kept {
		if err := os.WriteFile(r.path(p), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(r.path(ConfigPath), edited, 0o644); err != nil {
		t.Fatal(err)
	}

	r.rpm(t, "-U", v2)
	if got, want := r.takeCalls(t), []string{"daemon-reload", "enable drmfilter.service", "try-restart drmfilter.service"}; !slices.Equal(got, want) {
		t.Errorf("upgrade called systemctl %q, want %q (no stop)", got, want)
	}
	if got, _ := os.ReadFile(r.path(ConfigPath)); string(got) != string(edited) {
		t.Errorf("upgrade replaced the edited %s:\n%s", ConfigPath, got)
	}

	r.rpm(t, "-e", "drmfilter")
	if got, want := r.takeCalls(t), []string{"stop drmfilter.service", "disable drmfilter.service", "daemon-reload"}; !slices.Equal(got, want) {
		t.Errorf("erase called systemctl %q, want %q", got, want)
	}
	for p, want := range kept {
		if got, err := os.ReadFile(r.path(p)); err != nil || string(got) != string(want) {
			t.Errorf("after erase %s: %q, %v; want it kept", p, got, err)
		}
	}
	// rpm keeps an edited configuration file as .rpmsave.
	if got, err := os.ReadFile(r.path(ConfigPath + ".rpmsave")); err != nil || string(got) != string(edited) {
		t.Errorf("after erase the edited configuration is not in %s.rpmsave: %q, %v", ConfigPath, got, err)
	}
	if _, err := os.Stat(r.path(BinaryPath)); !os.IsNotExist(err) {
		t.Errorf("after erase %s is still there (%v)", BinaryPath, err)
	}
}
