package testutil

import (
	"fmt"
	"os"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(RunWithFDCheck(m)) }

// fakeTB records failures and skips instead of stopping the test.
type fakeTB struct {
	testing.TB
	failed, skipped bool
	msg             string
	cleanups        []func()
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed, f.msg = true, fmt.Sprintf(format, args...)
}
func (f *fakeTB) Errorf(format string, args ...any) {
	f.failed, f.msg = true, fmt.Sprintf(format, args...)
}
func (f *fakeTB) Skip(args ...any)  { f.skipped, f.msg = true, fmt.Sprint(args...) }
func (f *fakeTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }
func (f *fakeTB) runCleanups() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

func TestUnavailablePolicy(t *testing.T) {
	t.Setenv("CI", "")
	f := &fakeTB{TB: t}
	unavailable(f, "no widget")
	if !f.skipped || f.failed || f.msg != "skipping: no widget" {
		t.Errorf("outside CI: %+v, want a skip with the reason", f)
	}
	t.Setenv("CI", "true")
	f = &fakeTB{TB: t}
	unavailable(f, "no widget")
	if !f.failed || f.skipped {
		t.Errorf("in CI: %+v, want a failure", f)
	}
}

func TestLeaked(t *testing.T) {
	before := map[int]string{0: "/dev/null", 3: "pipe:[1]"}
	after := map[int]string{0: "/dev/null", 3: "pipe:[2]", 7: "/tmp/x"}
	got := leaked(before, after)
	want := []string{"fd 3 -> pipe:[2]", "fd 7 -> /tmp/x"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("leaked = %q, want %q", got, want)
	}
	if got := leaked(after, map[int]string{0: "/dev/null"}); len(got) != 0 {
		t.Fatalf("closing descriptors counted as leaks: %q", got)
	}
}
