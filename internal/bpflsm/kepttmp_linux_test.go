package bpflsm

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/drmfilter/drmfilter/internal/testutil"
	"github.com/drmfilter/drmfilter/internal/testutil/guest"
)

func TestKernelAAKeptTMP(t *testing.T) {
	guest.RequireGuest(t)
	plain, _ := subjects(t)
	root := filepath.Join(t.TempDir(), "tmpfs")
	must(t, os.Mkdir(root, 0o755))
	must(t, unix.Mount("tmpfs", root, "tmpfs", 0, "mode=0755"))
	t.Cleanup(func() { _ = unix.Unmount(root, unix.MNT_DETACH) })
	testutil.OpenToAll(t, root)
	T := root + "/t"
	write(t, T+"/b/true", "x")
	write(t, T+"/a/x/k", "x")
	must(t, os.MkdirAll(root+"/out", 0o755))
	pol := func(name, paths, extra, rules string) string {
		return fmt.Sprintf("---\napiVersion: drmfilter.dev/v1\nkind: ProtectionPolicy\nmetadata: {name: %s}\nspec:\n  files: {paths: [%s]%s}\n  rules:\n%s", name, paths, extra, rules)
	}
	deny := "    - {name: no-read, operations: [read], effect: deny}\n"
	allow := "    - {name: may-read, operations: [read], effect: allow}\n"
	m1 := compile(t, pol("p", fmt.Sprintf("%q", T+"/**"), "", deny))
	plan1, err := Build(m1, BuildOptions{})
	must(t, err)
	b, err := Load(plan1, Options{})
	must(t, err)
	t.Cleanup(func() { _ = b.Close() })
	t.Logf("before: %q", plain.as(t, "read "+T+"/b/true", "read "+T+"/a/x/k"))
	// The agent (exempt) links both out and back: the kernel keeps them.
	for _, f := range []string{T + "/b/true", T + "/a/x/k"} {
		must(t, os.Link(f, root+"/out/l"))
		must(t, os.Remove(root+"/out/l"))
	}
	// Case 1: an exclusion.
	m2 := compile(t, pol("p", fmt.Sprintf("%q", T+"/**"), fmt.Sprintf(", excludePaths: [%q]", T+"/**/true"), deny))
	plan2, err := Build(m2, BuildOptions{})
	must(t, err)
	must(t, b.Replace(plan2))
	t.Logf("case 1 (excluded b/true: Decide allows): %q", plain.as(t, "read "+T+"/b/true"))
	// Case 2: a deeper tree.
	m3 := compile(t, pol("p", fmt.Sprintf("%q", T+"/**"), "", deny)+pol("q", fmt.Sprintf("%q", T+"/a/x/**"), "", allow))
	plan3, err := Build(m3, BuildOptions{})
	must(t, err)
	must(t, b.Replace(plan3))
	t.Logf("case 2 (a/x/k under a/x/** that allows: Decide allows): %q", plain.as(t, "read "+T+"/a/x/k"))
}
