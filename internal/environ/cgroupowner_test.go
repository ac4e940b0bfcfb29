package environ

import (
	"errors"
	"strings"
	"testing"

	"github.com/drmfilter/drmfilter/internal/mountinfo"
)

// TestCgroupIDDepth: the directory a container's name is read from, for
// each shape of path, counted in the path's own segments.
func TestCgroupIDDepth(t *testing.T) {
	id := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		path  string
		depth int
	}{
		{"/", 0},
		{"/user.slice/user-1000.slice/session-2.scope", 0},
		{"/system.slice/docker-" + id + ".scope", 2},
		{"/system.slice/docker-" + id + ".scope/init.scope", 2},
		{"/docker/" + id, 2},
		{"/docker/" + id + "/nested", 2},
		{"/ecs/task/" + id, 3},
		{"/lxc.payload.web", 1},
		{"/lxc/web/sub", 2},
		{"/machine.slice/machine-web.scope/payload", 2},
		{"/kubepods/besteffort/pod1234/" + id, 4},
		{"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1_2.slice/cri-containerd-" + id + ".scope", 4},
		// One segment written by containerd as "<slice>:<prefix>:<id>".
		{"/kubepods-besteffort-pod1_2.slice:cri-containerd:" + id, 1},
		{"/kubepods.slice/kubepods-pod1_2.slice:cri-containerd:" + id + "/x", 2},
		// A pod without a container: its last Kubernetes segment.
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1_2.slice", 3},
		// Outside the reader's cgroup namespace.
		{"/../../system.slice/docker-" + id + ".scope", 4},
	} {
		c, depth := containerFromCgroupPath(tc.path)
		if depth != tc.depth {
			t.Errorf("%s: depth %d, want %d (%+v)", tc.path, depth, tc.depth, c)
		}
		if depth > 0 && !c.found() {
			t.Errorf("%s: a depth without a container", tc.path)
		}
	}
}

// TestCgroupMountFor: which mount shows a cgroup path, and the path below
// that mount's root.
func TestCgroupMountFor(t *testing.T) {
	v2 := mountinfo.Mount{ID: 1, FSType: "cgroup2", Root: "/", MountPoint: "/sys/fs/cgroup/unified", SuperOptions: "rw"}
	own := mountinfo.Mount{ID: 2, FSType: "cgroup2", Root: "/", MountPoint: "/sys/fs/cgroup", SuperOptions: "rw"}
	host := mountinfo.Mount{ID: 3, FSType: "cgroup2", Root: "/../..", MountPoint: "/host/sys/fs/cgroup", SuperOptions: "rw"}
	cpu := mountinfo.Mount{ID: 4, FSType: "cgroup", Root: "/", MountPoint: "/sys/fs/cgroup/cpu,cpuacct", SuperOptions: "rw,cpu,cpuacct"}
	sd := mountinfo.Mount{ID: 5, FSType: "cgroup", Root: "/", MountPoint: "/sys/fs/cgroup/systemd", SuperOptions: "rw,xattr,name=systemd"}
	sub := mountinfo.Mount{ID: 6, FSType: "cgroup2", Root: "/system.slice", MountPoint: "/mnt/sys", SuperOptions: "rw"}
	for _, tc := range []struct {
		name   string
		mounts []mountinfo.Mount
		line   CgroupLine
		mp     string
		rest   string
	}{
		{"unified", []mountinfo.Mount{cpu, v2}, CgroupLine{0, "", "/system.slice/docker-x.scope"}, "/sys/fs/cgroup/unified", "system.slice/docker-x.scope"},
		{"v1 controllers", []mountinfo.Mount{v2, sd, cpu}, CgroupLine{3, "cpu,cpuacct", "/docker/x"}, "/sys/fs/cgroup/cpu,cpuacct", "docker/x"},
		{"v1 named", []mountinfo.Mount{v2, cpu, sd}, CgroupLine{1, "name=systemd", "/docker/x"}, "/sys/fs/cgroup/systemd", "docker/x"},
		{"v1 named other", []mountinfo.Mount{sd}, CgroupLine{1, "name=elogind", "/docker/x"}, "", ""},
		{"v1 without its mount", []mountinfo.Mount{v2}, CgroupLine{2, "memory", "/docker/x"}, "", ""},
		// From a pod: its own cgroup namespace mounted at /sys/fs/cgroup,
		// the host's hierarchy at /host/sys/fs/cgroup.
		{"outside the namespace", []mountinfo.Mount{own, host}, CgroupLine{0, "", "/../../system.slice/docker-x.scope"}, "/host/sys/fs/cgroup", "system.slice/docker-x.scope"},
		{"outside, no host mount", []mountinfo.Mount{own}, CgroupLine{0, "", "/../../system.slice/docker-x.scope"}, "", ""},
		{"a subtree mount", []mountinfo.Mount{sub}, CgroupLine{0, "", "/system.slice/docker-x.scope"}, "/mnt/sys", "docker-x.scope"},
		{"beside a subtree mount", []mountinfo.Mount{sub}, CgroupLine{0, "", "/user.slice/docker-x.scope"}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, rest, err := mountFor(tc.mounts, tc.line)
			if tc.mp == "" {
				if err == nil || !errors.Is(err, ErrCgroupUnverified) {
					t.Fatalf("got %+v %q %v, want ErrCgroupUnverified", m, rest, err)
				}
				return
			}
			if err != nil || m.MountPoint != tc.mp || strings.Join(rest, "/") != tc.rest {
				t.Fatalf("got %+v %q %v, want %s %s", m, rest, err, tc.mp, tc.rest)
			}
		})
	}
}

// TestNilCgroupOwnersBelieves: without a machine to examine (a fixture
// tree), every name is believed.
func TestNilCgroupOwnersBelieves(t *testing.T) {
	var o *CgroupOwners
	if err := o.Check(CgroupLine{Path: "/system.slice/docker-" + strings.Repeat("a", 64) + ".scope"}); err != nil {
		t.Fatal(err)
	}
	if o := NewCgroupOwners(t.TempDir()); o != nil {
		t.Fatalf("a directory that is not a machine's root: %+v", o)
	}
}
