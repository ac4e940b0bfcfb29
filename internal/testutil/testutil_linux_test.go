package testutil

import (
	"os"
	"strings"
	"testing"
)

func TestCheckFDLeaksCatchesALeak(t *testing.T) {
	f := &fakeTB{TB: t}
	CheckFDLeaks(f)
	leak, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	f.runCleanups()
	leak.Close()
	if !f.failed || !strings.Contains(f.msg, "/dev/null") {
		t.Fatalf("leak not reported: %+v", f)
	}

	f = &fakeTB{TB: t}
	CheckFDLeaks(f)
	g, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
	f.runCleanups()
	if f.failed {
		t.Fatalf("closed descriptor reported: %s", f.msg)
	}
}

func mounted(t *testing.T, dir string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if fields := strings.Fields(line); len(fields) > 4 && fields[4] == dir {
			return true
		}
	}
	return false
}

func TestMountTmpfs(t *testing.T) {
	RequireRoot(t)
	var dir string
	t.Run("mount", func(t *testing.T) {
		dir = MountTmpfs(t)
		if !mounted(t, dir) {
			t.Fatalf("%s is not a mount point", dir)
		}
		if err := os.WriteFile(dir+"/f", []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	if mounted(t, dir) {
		t.Fatalf("%s still mounted after the subtest", dir)
	}
}

func TestMountTmpfsBusy(t *testing.T) {
	RequireRoot(t)
	var dir string
	var busy *os.File
	t.Run("mount", func(t *testing.T) {
		dir = MountTmpfs(t)
		var err error
		// A file held open makes umount fail with EBUSY; the helper
		// falls back to a lazy unmount.
		if busy, err = os.Create(dir + "/held"); err != nil {
			t.Fatal(err)
		}
	})
	defer busy.Close()
	if mounted(t, dir) {
		t.Fatalf("%s still mounted after the subtest", dir)
	}
}

func TestRequireFanotify(t *testing.T) {
	RequireFanotify(t) // on this machine: passes as root, skips otherwise
}
