package proc

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/drmfilter/drmfilter/internal/testutil"
)

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
	real := testutil.Cgroup(t, top+"/system.slice/docker-"+ids[0]+".scope", 0)
	deleg := testutil.Cgroup(t, top+"/user.slice/user@65534.service", 0)
	for _, f := range []string{"", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads"} {
		if err := os.Chown(filepath.Join(deleg, f), nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	spoof := testutil.Cgroup(t, top+"/user.slice/user@65534.service/docker-"+ids[1]+".scope", nobody)

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
