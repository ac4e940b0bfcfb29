package environ

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/drmfilter/drmfilter/internal/testutil"
)

// nobody is the unprivileged user a cgroup subtree is delegated to.
const nobody = 65534

func randomID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// unifiedBase is where the cgroup2 hierarchy is mounted: /sys/fs/cgroup/unified
// on a hybrid host (this one), /sys/fs/cgroup on a pure v2 one.
func unifiedBase(t *testing.T) string {
	t.Helper()
	testutil.RequireRoot(t)
	for _, b := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		var st syscall.Statfs_t
		if syscall.Statfs(b, &st) == nil && st.Type == cgroup2SuperMagic {
			return b
		}
	}
	if testutil.InCI() {
		t.Fatal("no cgroup2 hierarchy mounted")
	}
	t.Skip("no cgroup2 hierarchy mounted")
	return ""
}

// makeCgroup creates dir, and its missing parents below base, as uid
// (mkdir run as that user when uid is not 0, as in a subtree delegated to
// it), and removes what it made when the test ends.
func makeCgroup(t *testing.T, base, rel string, uid int) string {
	t.Helper()
	dir := base
	var made []string
	for _, part := range strings.Split(rel, "/") {
		dir = filepath.Join(dir, part)
		if _, err := os.Stat(dir); err == nil {
			continue
		}
		cmd := exec.Command("mkdir", dir)
		if uid != 0 {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid), NoSetGroups: true}}
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			if testutil.InCI() {
				t.Fatalf("mkdir %s as uid %d: %v %s", dir, uid, err, out)
			}
			t.Skipf("cannot create a cgroup: mkdir %s as uid %d: %v %s", dir, uid, err, out)
		}
		made = append(made, dir)
	}
	t.Cleanup(func() {
		for i := len(made) - 1; i >= 0; i-- {
			if err := os.Remove(made[i]); err != nil {
				t.Errorf("remove cgroup: %v", err)
			}
		}
	})
	return dir
}

// delegate chowns a cgroup directory and the files a delegatee writes to
// uid, as systemd does for a unit with Delegate=yes and User= (and for
// user@UID.service).
func delegate(t *testing.T, dir string, uid int) {
	t.Helper()
	for _, f := range []string{"", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads"} {
		if err := os.Chown(filepath.Join(dir, f), uid, uid); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
}

// sleeperIn starts a `sleep` in cgroup dir; it is killed by PID and reaped
// (so that the cgroup can be removed) when the test ends.
func sleeperIn(t *testing.T, dir string) int {
	t.Helper()
	cmd := exec.Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		syscall.Kill(pid, syscall.SIGKILL)
		cmd.Wait()
	})
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		t.Fatalf("move %d into %s: %v", pid, dir, err)
	}
	return pid
}

// TestCgroupOwnersDelegatedSubtree (issue #17, case 12): a process in a
// docker-<id>.scope that root made is in that container; one in a scope
// of the same shape that a user made in a subtree delegated to it is not,
// and the answer says why; a scope root made and handed to a user (a
// container with a user namespace) still is.
func TestCgroupOwnersDelegatedSubtree(t *testing.T) {
	// Everything below a cgroup of this test's own, so that no other
	// test's cgroups are touched.
	base := makeCgroup(t, unifiedBase(t), "drmfilter-owners-"+strconv.Itoa(os.Getpid())+".slice", 0)
	// The spoofing user picks the real container's ID.
	realID, userns := randomID(t), randomID(t)
	spoofID := realID

	real := makeCgroup(t, base, "system.slice/docker-"+realID+".scope", 0)
	deleg := makeCgroup(t, base, "user.slice/user@65534.service", 0)
	delegate(t, deleg, nobody)
	spoof := makeCgroup(t, deleg, "docker-"+spoofID+".scope", nobody)
	handed := makeCgroup(t, base, "system.slice/docker-"+userns+".scope", 0)
	delegate(t, handed, nobody)

	res := NewResolver("/", 0)
	owners := NewCgroupOwners("/")
	if owners == nil {
		t.Fatal("no CgroupOwners for the live machine")
	}
	for _, tc := range []struct {
		name, dir, id string
		notRoot       bool
	}{
		{"root's scope", real, realID, false},
		{"a delegated subtree's scope", spoof, "", true},
		{"root's scope handed to a user", handed, userns, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pid := sleeperIn(t, tc.dir)
			info, probs, err := res.Lookup(pid)
			if err != nil {
				t.Fatal(err)
			}
			if info.ID != tc.id {
				t.Errorf("container %q (%+v), want %q", info.ID, info, tc.id)
			}
			b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
			if err != nil {
				t.Fatal(err)
			}
			_, line, err := ParseCgroupLine(strings.NewReader(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			err = owners.Check(line)
			if got := errors.Is(err, ErrCgroupNotRoot); got != tc.notRoot || (!tc.notRoot && err != nil) {
				t.Fatalf("Check(%+v) = %v", line, err)
			}
			if !tc.notRoot {
				if info.Name != RTDocker || len(probs) != 0 {
					t.Errorf("%+v %+v", info, probs)
				}
				return
			}
			// (Other signals may still say "a container": this machine has
			// a /.dockerenv. Only the cgroup names one.)
			if info.ID != "" || info.CgroupPath != "" || info.Runtime == RTDocker && !strings.Contains(strings.Join(info.Signals, " "), ".dockerenv") {
				t.Errorf("a user's scope named the container: %+v", info)
			}
			if !strings.Contains(err.Error(), deleg+" is owned by uid 65534") {
				t.Errorf("the reason does not name the delegated directory: %v", err)
			}
			found := false
			for _, p := range probs {
				found = found || (p.Path == "/proc/"+strconv.Itoa(pid)+"/cgroup" && strings.Contains(p.Error, ErrCgroupNotRoot.Error()))
			}
			signal := false
			for _, s := range info.Signals {
				signal = signal || strings.Contains(s, "not believed")
			}
			if !found || !signal {
				t.Errorf("no problem or signal says why: %+v %+v", probs, info.Signals)
			}
		})
	}
}

// TestCgroupOwnersWritableParent: a root-owned directory that its group or
// others may write is as good as a delegated one.
func TestCgroupOwnersWritableParent(t *testing.T) {
	base := unifiedBase(t)
	parent := makeCgroup(t, base, "drmfilter-open-"+strconv.Itoa(os.Getpid())+".slice", 0)
	if err := os.Chmod(parent, 0o777); err != nil {
		t.Fatal(err)
	}
	id := randomID(t)
	makeCgroup(t, parent, "docker-"+id+".scope", nobody)
	rel := strings.TrimPrefix(parent, base)
	err := NewCgroupOwners("/").Check(CgroupLine{Path: rel + "/docker-" + id + ".scope"})
	if !errors.Is(err, ErrCgroupNotRoot) || !strings.Contains(err.Error(), "writable by its group and others") {
		t.Fatalf("Check = %v", err)
	}
}

// TestCgroupOwnersV1: on a v1 hierarchy (the cgroupfs driver's
// /docker/<id>), the same rule, extended to the process's own cgroup.
func TestCgroupOwnersV1(t *testing.T) {
	testutil.RequireRoot(t)
	base := "/sys/fs/cgroup/pids"
	var st syscall.Statfs_t
	if err := syscall.Statfs(base, &st); err != nil || st.Type != cgroupSuperMagic {
		t.Skip("no cgroup v1 pids hierarchy (a pure cgroup2 host)")
	}
	suffix := strconv.Itoa(os.Getpid())
	id := randomID(t)
	top := makeCgroup(t, base, "drmfilter-v1-"+suffix, 0)
	real := makeCgroup(t, top, "docker/"+id, 0)
	sub := makeCgroup(t, real, "sub", 0)
	o := NewCgroupOwners("/")
	rel := strings.TrimPrefix(real, base)
	line := CgroupLine{Hierarchy: 7, Controllers: "pids", Path: rel}
	if err := o.Check(line); err != nil {
		t.Fatalf("root's: %v", err)
	}
	delegate(t, sub, nobody)
	line.Path = rel + "/sub"
	if err := o.Check(line); !errors.Is(err, ErrCgroupNotRoot) {
		t.Fatalf("a user's cgroup inside the container (no containment on v1): %v", err)
	}
	delegate(t, filepath.Dir(real), nobody)
	line.Path = rel
	if err := o.Check(line); !errors.Is(err, ErrCgroupNotRoot) {
		t.Fatalf("a user's docker directory: %v", err)
	}
	if err := o.Check(CgroupLine{Hierarchy: 7, Controllers: "no-such-controller", Path: rel}); !errors.Is(err, ErrCgroupUnverified) {
		t.Fatalf("a hierarchy that is not mounted: %v", err)
	}
}

// BenchmarkCgroupOwnersCheck is what believing a container costs a new
// process's lookup: a statfs and a stat of the mount point, and a stat of
// each directory down to the one carrying the ID (here four, the depth of
// a Kubernetes pod's container under the systemd driver).
//
// Run: go test -run XXX -bench CgroupOwnersCheck -benchmem ./internal/environ
func BenchmarkCgroupOwnersCheck(b *testing.B) {
	testutil.RequireRoot(b)
	base := "/sys/fs/cgroup/unified"
	if _, err := os.Stat(filepath.Join(base, "cgroup.procs")); err != nil {
		base = "/sys/fs/cgroup"
	}
	top := "drmfilter-bench-" + strconv.Itoa(os.Getpid()) + ".slice"
	rel := top + "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1_2.slice/cri-containerd-" + strings.Repeat("ab", 32) + ".scope"
	dir := base
	for _, part := range strings.Split(rel, "/") {
		dir = filepath.Join(dir, part)
		if err := os.Mkdir(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		d := dir
		b.Cleanup(func() { os.Remove(d) })
	}
	o := NewCgroupOwners("/")
	line := CgroupLine{Path: "/" + rel}
	if err := o.Check(line); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := o.Check(line); err != nil {
			b.Fatal(err)
		}
	}
}
