package guest

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"\x1bc\x1b[?7l\x1b[2J\x1b[0mSeaBIOS (version 1.16.2)": "SeaBIOS (version 1.16.2)",
		"--- PASS: TestX (0.00s)\r":                           "--- PASS: TestX (0.00s)",
		"\ta\x00b\x7f":                                        "\tab",
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestModuleName(t *testing.T) {
	for in, want := range map[string]string{
		"kernel/drivers/block/loop.ko.xz": "loop",
		"kernel/fs/ext4/ext4.ko":          "ext4",
		"nf-tables.ko.zst":                "nf_tables",
	} {
		if got := moduleName(in); got != want {
			t.Errorf("moduleName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLddLine(t *testing.T) {
	for in, want := range map[string]string{
		"\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f1131 4d0000)": "",
		"\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f11314d0000)":  "/lib/x86_64-linux-gnu/libc.so.6",
		"\t/lib64/ld-linux-x86-64.so.2 (0x00007f11317c9000)":                   "/lib64/ld-linux-x86-64.so.2",
		"\tlinux-vdso.so.1 (0x00007f11317c7000)":                               "",
	} {
		got := ""
		if m := lddLine.FindStringSubmatch(in); m != nil {
			got = m[1]
		}
		if got != want {
			t.Errorf("ldd line %q: got %q, want %q", in, got, want)
		}
	}
}

// TestSharedLibraries needs a dynamic program with libraries beyond libc
// (mke2fs, as the guest tests ship it).
func TestSharedLibraries(t *testing.T) {
	path, err := lookProgram("mkfs.ext4")
	if err != nil {
		t.Skipf("skipping: %v", err)
	}
	libs, err := sharedLibraries(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(libs, func(l string) bool { return strings.Contains(l, "libext2fs.so") }) ||
		!slices.ContainsFunc(libs, func(l string) bool { return strings.Contains(l, "ld-linux") }) {
		t.Errorf("%s: libraries %q lack libext2fs or the loader", path, libs)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// A Go test binary built with cgo (the race detector) is dynamic;
	// without it, static. Either way the call must not fail.
	if _, err := sharedLibraries(self); err != nil {
		t.Errorf("%s: %v", self, err)
	}
}

func TestTestArgs(t *testing.T) {
	got := testArgs(Options{Run: "^TestInGuest", Verbose: true}, 3*time.Minute)
	want := []string{"-test.timeout=2m30s", "-test.paniconexit0", "-test.run=^TestInGuest", "-test.v"}
	if !slices.Equal(got, want) {
		t.Errorf("testArgs = %q, want %q", got, want)
	}
	if got := testArgs(Options{}, 40*time.Second); got[0] != "-test.timeout=20s" {
		t.Errorf("short boot: %q, want the guest's timeout at half the boot's", got[0])
	}
}

// TestBootTellsAKernelPanic: boot reads the console of a fake qemu (a
// shell script): a result line gives the tests' exit code; a guest
// kernel's panic before any result is errKernelPanic, which Run boots
// again for; other ends are plain errors.
func TestBootTellsAKernelPanic(t *testing.T) {
	const nonce = "n0nce"
	fake := func(console string) string {
		p := filepath.Join(t.TempDir(), "qemu")
		script := "#!/bin/sh\ncat <<'EOF'\n" + console + "\nEOF\n"
		if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, console string
		code          int
		panic, fails  bool
	}{
		{"result", "booting\n" + resultMarker + " " + nonce + " exit=3", 3, false, false},
		{"kernel panic", "[ 720.4] traps: PANIC: double fault\n[ 720.5] Kernel panic - not syncing: Fatal exception in interrupt", 0, true, true},
		{"no result", "booting\nsilence", 0, false, true},
		{"a panic after the result is the tests' business", resultMarker + " " + nonce + " exit=0\nKernel panic - not syncing: Attempted to kill init", 0, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, err := boot(t, fake(tc.console), nil, nonce, time.Minute)
			if tc.fails != (err != nil) || errors.Is(err, errKernelPanic) != tc.panic || (err == nil && code != tc.code) {
				t.Errorf("boot: code %d, err %v; want code %d, failure %v, kernel panic %v", code, err, tc.code, tc.fails, tc.panic)
			}
		})
	}
}
