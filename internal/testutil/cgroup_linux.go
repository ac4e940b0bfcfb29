package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Cgroup creates rel (and its missing parents, as root) below the cgroup2
// hierarchy, the last directory by a mkdir run as uid (as a user does in a
// subtree delegated to it), and removes what it made when the test ends.
// It returns the directory.
func Cgroup(t testing.TB, rel string, uid int) string {
	t.Helper()
	RequireRoot(t)
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
			unavailable(t, "cannot create a cgroup: "+err.Error()+" "+string(out))
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
