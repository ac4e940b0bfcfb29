package environ

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
)

// writeTree makes a root directory holding files (path -> content).
func writeTree(t testing.TB, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func hasProblem(r Report, pathPart string) bool {
	for _, p := range r.Problems {
		if strings.Contains(p.Path, pathPart) {
			return true
		}
	}
	return false
}

func TestEmptyRootIsPhysicalWithoutProblems(t *testing.T) {
	rep := Detect(context.Background(), Options{Root: t.TempDir(), NoMounts: true})
	if rep.Hypervisor != HVNone || !rep.HypervisorDetail.Physical || rep.Cloud != CloudNone || rep.Container != ContainerNone {
		t.Errorf("got %s/%s/%s physical=%v", rep.Hypervisor, rep.Cloud, rep.Container, rep.HypervisorDetail.Physical)
	}
	if len(rep.Problems) != 0 || len(rep.Disks) != 0 {
		t.Errorf("problems %v, disks %v", rep.Problems, rep.Disks)
	}
	if rep.Problems == nil || rep.Disks == nil || rep.HypervisorDetail.Signals == nil {
		t.Error("slices must encode as [] not null")
	}
}

func TestMissingRootIsRecorded(t *testing.T) {
	rep := Detect(context.Background(), Options{Root: filepath.Join(t.TempDir(), "nope"), NoMounts: true})
	if !hasProblem(rep, "nope") {
		t.Errorf("missing root not recorded: %v", rep.Problems)
	}
	if rep.Hypervisor != HVNone {
		t.Errorf("hypervisor %q", rep.Hypervisor)
	}
}

func TestGarbageAndTruncatedFiles(t *testing.T) {
	root := writeTree(t, map[string]string{
		// Binary junk around a real vendor: the printable part still counts.
		"sys/class/dmi/id/sys_vendor":   "\x00\xffQEMU\x01\n",
		"sys/class/dmi/id/product_name": "",
		// Size that is not a number.
		"sys/block/vda/size": "lots\n",
		// A truncated ACPI header.
		"sys/firmware/acpi/tables/DSDT": "DSDT\x24",
		// Truncated SMBIOS entry.
		"sys/firmware/dmi/entries/0-0/raw": "\x00\x18",
		// Xen features that are not hex, and no capabilities.
		"proc/xen/capabilities":              "",
		"sys/hypervisor/properties/features": "zz-top\n",
		"proc/cpuinfo":                       "vendor_id : \nflags\n\x00\x00",
		"proc/self/cgroup":                   "garbage\n0::/docker/short\n",
		"proc/sys/kernel/osrelease":          "\xfe\xfe\n",
		"proc/self/mountinfo":                "1 2 3\n\x00\n",
	})
	rep := Detect(context.Background(), Options{Root: root, NoMounts: true})
	if rep.Hypervisor != HVXen {
		t.Errorf("hypervisor %q, want xen (/proc/xen present)", rep.Hypervisor)
	}
	if rep.HypervisorDetail.VMM != "" {
		t.Errorf("vmm %q from a truncated ACPI table", rep.HypervisorDetail.VMM)
	}
	if rep.HypervisorDetail.DMI.SysVendor != "QEMU" {
		t.Errorf("sys_vendor %q", rep.HypervisorDetail.DMI.SysVendor)
	}
	for _, p := range []string{"sys_vendor", "/sys/block/vda/size", "/proc/self/cgroup", "osrelease"} {
		if !hasProblem(rep, p) {
			t.Errorf("no problem recorded for %s: %v", p, rep.Problems)
		}
	}
	if len(rep.Disks) != 1 || rep.Disks[0].Kind != DiskVirtio || rep.Disks[0].SizeBytes != 0 {
		t.Errorf("disks %+v", rep.Disks)
	}
}

func TestUnreadableEntries(t *testing.T) {
	// Root can read anything, so make the entries unreadable by shape: a
	// directory where a file belongs.
	root := writeTree(t, map[string]string{
		"sys/class/dmi/id/sys_vendor/x":   "",
		"proc/self/cgroup/x":              "",
		"sys/block/sda/device/model/x":    "",
		"sys/block/sda/size":              "100\n",
		"proc/sys/kernel/osrelease/x":     "",
		"sys/firmware/acpi/tables/DSDT/x": "",
	})
	rep := Detect(context.Background(), Options{Root: root, NoMounts: true})
	for _, p := range []string{"sys_vendor", "/proc/self/cgroup", "model", "osrelease"} {
		if !hasProblem(rep, p) {
			t.Errorf("no problem for %s: %v", p, rep.Problems)
		}
	}
	if len(rep.Disks) != 1 || rep.Disks[0].SizeBytes != 51200 {
		t.Errorf("disks %+v", rep.Disks)
	}
}

// deniedFS fails every open below a prefix with a permission error.
type deniedFS struct {
	fs.FS
	prefix string
}

func (d deniedFS) Open(name string) (fs.File, error) {
	if strings.HasPrefix(name, d.prefix) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	}
	return d.FS.Open(name)
}

func TestPermissionDenied(t *testing.T) {
	base := fstest.MapFS{
		"sys/class/dmi/id/sys_vendor":   {Data: []byte("VMware, Inc.\n")},
		"sys/class/dmi/id/product_name": {Data: []byte("VMware Virtual Platform\n")},
		"proc/self/cgroup":              {Data: []byte("0::/\n")},
	}
	rep := Detect(context.Background(), Options{FS: deniedFS{base, "sys/class/dmi"}, Root: "fixture", CPU: VendorCPU("VMwareVMware"), NoMounts: true})
	if rep.Hypervisor != HVVMware {
		t.Errorf("hypervisor %q; CPUID alone should still tell vmware", rep.Hypervisor)
	}
	if !hasProblem(rep, "dmi") {
		t.Errorf("permission problem not recorded: %v", rep.Problems)
	}
	for _, p := range rep.Problems {
		if strings.Contains(p.Path, "dmi") && !strings.Contains(p.Error, "permission denied") {
			t.Errorf("problem %+v does not say why", p)
		}
	}
}

type failingCPU struct{}

func (failingCPU) Info() (CPUInfo, error) { return CPUInfo{}, fmt.Errorf("cpuid: %w", ErrNotSupported) }

func TestCPUFailureIsRecorded(t *testing.T) {
	rep := Detect(context.Background(), Options{Root: t.TempDir(), CPU: failingCPU{}, NoMounts: true})
	if !hasProblem(rep, "cpuid") {
		t.Errorf("problems %v", rep.Problems)
	}
}

func TestXenDom0Features(t *testing.T) {
	// Synthetic feature words: bit 11 (XENFEAT_dom0) set, then clear.
	for _, tc := range []struct {
		features, role string
	}{
		{"00000800", "dom0"},
		{"000007ff", "domU"},
	} {
		root := writeTree(t, map[string]string{
			"proc/xen/capabilities":              "",
			"sys/hypervisor/type":                "xen\n",
			"sys/hypervisor/properties/features": tc.features + "\n",
		})
		rep := Detect(context.Background(), Options{Root: root, NoMounts: true})
		if rep.HypervisorDetail.Xen == nil || rep.HypervisorDetail.Xen.Role != tc.role {
			t.Errorf("features %s: xen %+v", tc.features, rep.HypervisorDetail.Xen)
		}
		if tc.role == "dom0" && (rep.Hypervisor != HVNone || rep.HypervisorDetail.Physical) {
			t.Errorf("dom0: hypervisor %q physical %v", rep.Hypervisor, rep.HypervisorDetail.Physical)
		}
	}
}

func TestSMBIOSBit(t *testing.T) {
	raw := make([]byte, 24)
	raw[1] = 24
	amazon := map[string]string{"sys/class/dmi/id/sys_vendor": "Amazon EC2\n", "sys/class/dmi/id/product_name": "c5.large\n"}
	root := writeTree(t, amazon)
	if err := os.MkdirAll(filepath.Join(root, "sys/firmware/dmi/entries/0-0"), 0o755); err != nil {
		t.Fatal(err)
	}
	rawPath := filepath.Join(root, "sys/firmware/dmi/entries/0-0/raw")
	os.WriteFile(rawPath, raw, 0o644)
	if rep := Detect(context.Background(), Options{Root: root, NoMounts: true}); rep.Hypervisor != HVNone || !rep.CloudDetail.BareMetal {
		t.Errorf("VM bit clear: %q bare=%v", rep.Hypervisor, rep.CloudDetail.BareMetal)
	}
	raw[19] = 1 << 4
	os.WriteFile(rawPath, raw, 0o644)
	if rep := Detect(context.Background(), Options{Root: root, NoMounts: true}); rep.Hypervisor != HVAmazon {
		t.Errorf("VM bit set: %q", rep.Hypervisor)
	}
	// Unknown vendor but the firmware says VM: vm-other.
	os.WriteFile(filepath.Join(root, "sys/class/dmi/id/sys_vendor"), []byte("Acme\n"), 0o644)
	if rep := Detect(context.Background(), Options{Root: root, NoMounts: true}); rep.Hypervisor != HVOther {
		t.Errorf("VM bit, unknown vendor: %q", rep.Hypervisor)
	}
}

func TestUnknownCPUIDVendor(t *testing.T) {
	rep := Detect(context.Background(), Options{Root: t.TempDir(), CPU: VendorCPU("FooBarHyper!"), NoMounts: true})
	if rep.Hypervisor != HVOther {
		t.Errorf("got %q, want vm-other", rep.Hypervisor)
	}
}

func TestArchGatesDeviceTree(t *testing.T) {
	root := writeTree(t, map[string]string{"proc/device-tree/hypervisor/compatible": "linux,kvm\x00"})
	if rep := Detect(context.Background(), Options{Root: root, Arch: "amd64", NoMounts: true}); rep.Hypervisor != HVNone {
		t.Errorf("amd64 read the device tree: %q", rep.Hypervisor)
	}
	if rep := Detect(context.Background(), Options{Root: root, Arch: "aarch64", NoMounts: true}); rep.Hypervisor != HVKVM || rep.Arch != "arm64" {
		t.Errorf("arm64: %q arch %q", rep.Hypervisor, rep.Arch)
	}
	if rep := Detect(context.Background(), Options{Root: root, NoMounts: true}); rep.Hypervisor != HVKVM {
		t.Errorf("any arch: %q", rep.Hypervisor)
	}
}

func statLine(pid int, start uint64) string {
	return fmt.Sprintf("%d (sh) S 1 %d %d 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 %d 1000 100 18446744073709551615\n", pid, pid, pid, start)
}

func TestResolverCacheAndReuse(t *testing.T) {
	a, b := strings.Repeat("a", 64), strings.Repeat("b", 64)
	root := writeTree(t, map[string]string{
		"proc/7/stat":   statLine(7, 100),
		"proc/7/cgroup": "0::/system.slice/docker-" + a + ".scope\n",
		"proc/8/stat":   statLine(8, 100),
		"proc/8/cgroup": "0::/user.slice\n",
	})
	res := NewResolver(root, 0)
	info, probs, err := res.Lookup(7)
	if err != nil || info.ID != a || info.Name != RTDocker || len(probs) != 0 {
		t.Fatalf("%+v %v %v", info, probs, err)
	}
	// The cgroup changes but the process is the same: cached answer.
	os.WriteFile(filepath.Join(root, "proc/7/cgroup"), []byte("0::/system.slice/docker-"+b+".scope\n"), 0o644)
	if info, _, _ = res.Lookup(7); info.ID != a {
		t.Errorf("not cached: %q", info.ID)
	}
	// PID reused (new start time): looked up afresh.
	os.WriteFile(filepath.Join(root, "proc/7/stat"), []byte(statLine(7, 200)), 0o644)
	if info, _, _ = res.Lookup(7); info.ID != b {
		t.Errorf("reuse not noticed: %q", info.ID)
	}
	if info, _, _ := res.Lookup(8); info.InContainer || info.Name != ContainerNone {
		t.Errorf("pid 8: %+v", info)
	}
	if _, _, err := res.Lookup(9); !errors.Is(err, ErrNoProcess) {
		t.Errorf("pid 9: %v", err)
	}
	if _, _, err := res.Lookup(-1); !errors.Is(err, ErrNoProcess) {
		t.Errorf("pid -1: %v", err)
	}
	res.Forget(7)
	if res.Len() != 1 {
		t.Errorf("len %d after Forget", res.Len())
	}
}

func TestResolverBoundedAndConcurrent(t *testing.T) {
	files := map[string]string{}
	for pid := 1; pid <= 64; pid++ {
		files[fmt.Sprintf("proc/%d/stat", pid)] = statLine(pid, uint64(pid))
		files[fmt.Sprintf("proc/%d/cgroup", pid)] = "0::/\n"
	}
	res := NewResolver(writeTree(t, files), 16)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pid := 1; pid <= 64; pid++ {
				if _, _, err := res.Lookup(pid); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := res.Len(); n > 16 {
		t.Errorf("cache holds %d, bound 16", n)
	}
}

func TestProcessStartMalformed(t *testing.T) {
	for _, stat := range []string{"", "7 (sh S", "7 (a) b) S 1", "7 (sh) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 x"} {
		root := writeTree(t, map[string]string{"proc/7/stat": stat})
		if _, err := processStart(os.DirFS(root), 7); err == nil {
			t.Errorf("stat %q: no error", stat)
		}
	}
}

func TestDetectWithPID(t *testing.T) {
	rep := Detect(context.Background(), Options{Root: t.TempDir(), PID: 31337, NoMounts: true})
	if rep.Container != ContainerNone || rep.ContainerDetail.PID != 31337 || !hasProblem(rep, "/proc/31337") {
		t.Errorf("%+v %v", rep.ContainerDetail, rep.Problems)
	}
}

func TestPIDInOtherMountNamespace(t *testing.T) {
	root := writeTree(t, map[string]string{
		"proc/5/stat":   statLine(5, 1),
		"proc/5/cgroup": "0::/weird/place\n",
	})
	for _, l := range []struct{ name, target string }{{"proc/5/ns/mnt", "mnt:[4026532300]"}, {"proc/1/ns/mnt", "mnt:[4026531841]"}} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(l.name)), 0o755)
		if err := os.Symlink(l.target, filepath.Join(root, l.name)); err != nil {
			t.Fatal(err)
		}
	}
	info, _, err := NewResolver(root, 0).Lookup(5)
	if err != nil || info.Name != RTContainerOther || info.Isolation != IsolationNamespace {
		t.Errorf("%+v %v", info, err)
	}
}

func TestHostProcessSandboxes(t *testing.T) {
	root := writeTree(t, map[string]string{
		"proc/5/stat":    statLine(5, 1),
		"proc/5/cmdline": "runsc-sandbox\x00--root=/run/runsc\x00",
		"proc/6/stat":    statLine(6, 1),
		"proc/6/cmdline": "/usr/bin/containerd-shim-kata-v2\x00-namespace\x00k8s.io\x00",
		"proc/6/cgroup":  "0::/kubepods/besteffort/pod1234/kata_" + strings.Repeat("d", 64) + "\n",
	})
	res := NewResolver(root, 0)
	if info, _, _ := res.Lookup(5); info.Sandbox != "gvisor" || info.Isolation != IsolationVM {
		t.Errorf("runsc: %+v", info)
	}
	if info, _, _ := res.Lookup(6); info.Sandbox != "kata" || info.Isolation != IsolationVM || info.Name != RTKubernetes {
		t.Errorf("kata shim: %+v", info)
	}
}

func TestRootConfinesSymlinks(t *testing.T) {
	root := writeTree(t, map[string]string{"sys/class/dmi/id/product_name": "Droplet\n"})
	secret := filepath.Join(t.TempDir(), "outside")
	os.WriteFile(secret, []byte("DigitalOcean\n"), 0o644)
	// An absolute link, as a careless capture of a live tree may hold.
	if err := os.Symlink(secret, filepath.Join(root, "sys/class/dmi/id/sys_vendor")); err != nil {
		t.Fatal(err)
	}
	rep := Detect(context.Background(), Options{Root: root, NoMounts: true})
	if rep.HypervisorDetail.DMI.SysVendor != "" || rep.Cloud != CloudNone {
		t.Errorf("read through a link leaving the root: vendor %q cloud %q", rep.HypervisorDetail.DMI.SysVendor, rep.Cloud)
	}
	if !hasProblem(rep, "sys_vendor") {
		t.Errorf("escape not recorded: %v", rep.Problems)
	}
	// A relative link inside the root is followed.
	os.Remove(filepath.Join(root, "sys/class/dmi/id/sys_vendor"))
	os.WriteFile(filepath.Join(root, "vendor"), []byte("DigitalOcean\n"), 0o644)
	os.Symlink("../../../../vendor", filepath.Join(root, "sys/class/dmi/id/sys_vendor"))
	if rep := Detect(context.Background(), Options{Root: root, NoMounts: true}); rep.Cloud != CloudDigitalOcean {
		t.Errorf("relative link not followed: %q %v", rep.Cloud, rep.Problems)
	}
}
