package environ

import (
	"context"
	"testing"
)

// TestMounts checks the wiring to internal/mountinfo and internal/storage:
// every mount is listed with its class, and bad lines are recorded, not
// fatal. The classification itself is tested in internal/storage.
func TestMounts(t *testing.T) {
	root := writeTree(t, map[string]string{
		"proc/self/mountinfo": "" +
			"100 1 0:50 / / rw,relatime - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w\n" +
			"101 100 0:51 / /proc rw - proc proc rw\n" +
			"102 100 0:52 / /mnt/efs rw - nfs4 fs-0123456789abcdef0.efs.eu-west-1.amazonaws.com:/ rw,vers=4.1\n" +
			"103 100 0:53 / /mnt/share rw - virtiofs myshare rw\n" +
			"this line is garbage\n" +
			"104 100 0:54 / /mnt/with\\040space rw - tmpfs tmpfs rw\n",
	})
	rep := Detect(context.Background(), Options{Root: root})
	want := map[string]string{"/": "overlay", "/proc": "pseudo", "/mnt/efs": "cloud", "/mnt/share": "shared-folder", "/mnt/with space": "local"}
	if len(rep.Mounts) != len(want) {
		t.Fatalf("mounts %+v", rep.Mounts)
	}
	for _, m := range rep.Mounts {
		if want[m.MountPoint] != m.Class {
			t.Errorf("%s: class %q (%s), want %q", m.MountPoint, m.Class, m.Reason, want[m.MountPoint])
		}
		if m.Reason == "" {
			t.Errorf("%s: no reason", m.MountPoint)
		}
	}
	if !hasProblem(rep, "/proc/self/mountinfo") {
		t.Errorf("garbage line not recorded: %v", rep.Problems)
	}
}

func TestMountsForPID(t *testing.T) {
	root := writeTree(t, map[string]string{
		"proc/42/stat":        statLine(42, 1),
		"proc/42/mountinfo":   "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n",
		"proc/self/mountinfo": "1 0 0:1 / / rw - overlay overlay rw\n",
	})
	rep := Detect(context.Background(), Options{Root: root, PID: 42})
	if len(rep.Mounts) != 1 || rep.Mounts[0].FSType != "ext4" {
		t.Errorf("mounts of pid 42: %+v", rep.Mounts)
	}
	rep = Detect(context.Background(), Options{Root: root, PID: 42, NoMounts: true})
	if rep.Mounts != nil {
		t.Errorf("NoMounts: %+v", rep.Mounts)
	}
}
