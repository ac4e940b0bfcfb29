package proc

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/drmfilter/drmfilter/internal/testutil"
)

// testCgroupAs creates rel (and its missing parents) below the cgroup2
// hierarchy, the last directory by mkdir run as uid (as a user does in a
// subtree delegated to it), and removes what it made when the test ends.
func testCgroupAs(t *testing.T, rel string, uid int) string {
	t.Helper()
	testutil.RequireRoot(t)
	base := "/sys/fs/cgroup/unified"
	if _, err := os.Stat(filepath.Join(base, "cgroup.procs")); err != nil {
		base = "/sys/fs/cgroup"
	}
	parts := strings.Split(rel, "/")
	dir := base
	var made []string
	for i, part := range parts {
		dir = filepath.Join(dir, part)
		if _, err := os.Stat(dir); err == nil {
			continue
		}
		cmd := exec.Command("mkdir", dir)
		if i == len(parts)-1 && uid != 0 {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid), NoSetGroups: true}}
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			if testutil.InCI() {
				t.Fatalf("cannot create a cgroup: %v %s", err, out)
			}
			t.Skipf("cannot create a cgroup: %v %s", err, out)
		}
		made = append(made, dir)
	}
	t.Cleanup(func() {
		for i := len(made) - 1; i >= 0; i-- {
			os.Remove(made[i])
		}
	})
	return dir
}

// TestCgroupContainerFromADelegatedSubtreeIsNotBelieved (issue #17, case
// 12), through Options.Cgroups as the agent looks processes up: a process
// in a docker-<id>.scope that root made is in that container; one in a
// scope of the same shape made by the user a subtree was delegated to
// (chowned to it, as systemd's Delegate= does) is a host process, with
// Container.Rejected saying why.
func TestCgroupContainerFromADelegatedSubtreeIsNotBelieved(t *testing.T) {
	top := "drmfilter-proc-" + strconv.Itoa(os.Getpid()) + ".slice"
	// The spoofing user picks the real container's ID.
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	id := hex.EncodeToString(b)
	ids := [2]string{id, id}
	real := testCgroupAs(t, top+"/system.slice/docker-"+ids[0]+".scope", 0)
	deleg := testCgroupAs(t, top+"/user.slice/user@65534.service", 0)
	for _, f := range []string{"", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads"} {
		if err := os.Chown(filepath.Join(deleg, f), nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	spoof := testCgroupAs(t, top+"/user.slice/user@65534.service/docker-"+ids[1]+".scope", nobody)

	r := NewResolver("/", Options{Cgroups: true})
	for i, dir := range []string{real, spoof} {
		c := start(t, nil, "sleep", "600")
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(itoa(c.pid)), 0); err != nil {
			t.Fatal(err)
		}
		waitExe(t, c.pid, lookPath(t, "sleep"))
		p, err := r.Lookup(c.pid, c.pidfd)
		if err != nil {
			t.Fatal(err)
		}
		switch i {
		case 0:
			if p.Container != (Container{ID: ids[0], Runtime: "docker"}) {
				t.Errorf("in root's scope: %+v", p.Container)
			}
		case 1:
			if p.Container.ID != "" || p.Container.Runtime != "" {
				t.Errorf("in the delegated subtree's scope: %+v", p.Container)
			}
			if !strings.Contains(p.Container.Rejected, deleg+" is owned by uid 65534, not root") {
				t.Errorf("Rejected = %q", p.Container.Rejected)
			}
		}
	}
}
