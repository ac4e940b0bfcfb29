package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// BuildC compiles a test helper written in C (src, relative to the test's
// package directory) into the test's temporary directory and returns the
// binary. These helpers do what Go's runtime cannot (end the main thread,
// race threads against an exec, write through a shared mapping). Without
// gcc the test is skipped, or fails under CI=true.
// flags go to gcc before the source (-shared -fPIC for a library).
func BuildC(t testing.TB, name, src string, flags ...string) string {
	t.Helper()
	// In a qemu guest (internal/testutil/guest, which sets this variable
	// and puts Options.Extra's relative paths below /work) there is no
	// compiler: the host test that boots it builds the helper and ships
	// it as prebuilt-c/NAME.
	if os.Getenv("DRMFILTER_IN_GUEST") == "1" {
		if p := filepath.Join("/work/prebuilt-c", name); fileExists(p) {
			return p
		}
	}
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		unavailable(t, "gcc is needed to build the test helper "+name+": "+err.Error())
	}
	bin := filepath.Join(t.TempDir(), name)
	args := append([]string{"-O2", "-Wall", "-pthread"}, flags...)
	if out, err := exec.Command(gcc, append(args, "-o", bin, src)...).CombinedOutput(); err != nil {
		t.Fatalf("gcc %s: %v\n%s", src, err, out)
	}
	return bin
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// OpenToAll opens dir, one of the test's temporary directories, and its
// parents below os.TempDir() to everyone (0755), so that another user can
// reach what is below it: t.TempDir makes them 0700.
func OpenToAll(t testing.TB, dir string) {
	t.Helper()
	top := filepath.Clean(os.TempDir()) + string(filepath.Separator)
	if !strings.HasPrefix(dir, top) {
		t.Fatalf("%s is not below %s", dir, top)
	}
	for d := dir; strings.HasPrefix(d, top); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}
