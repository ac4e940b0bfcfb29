package environ

import (
	"context"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// What systemd-detect-virt may print on a machine whose Report is known.
// TestLiveMatchesSystemdDetectVirt compares the live answer through these,
// so that it holds on every kind of machine: the report differs from
// systemd's only where this package deliberately refines or corrects it,
// or where the installed systemd predates a detection that the report
// already has.

// systemdVMAnswers lists the answers of `systemd-detect-virt --vm`
// consistent with rep; the first is rep's own.
func systemdVMAnswers(rep Report) []string {
	acc := []string{rep.Hypervisor}
	d := rep.HypervisorDetail
	if rep.Hypervisor == HVNone && oracleHardware(d.DMI) &&
		(d.DMI.SysVendor == "Oracle Corporation" || d.DMI.BoardVendor == "Oracle Corporation") {
		// Ours: an Oracle server is physical; systemd takes any "Oracle
		// Corporation" for VirtualBox.
		acc = append(acc, HVOracle)
	}
	// Releases of systemd older than the change that taught it an id
	// print what they used to.
	switch rep.Hypervisor {
	case HVGoogle: // DMI "Google Compute Engine" (GCE runs KVM)
		acc = append(acc, HVKVM)
	case HVAmazon: // DMI "Amazon EC2" (#17315): KVM by CPUID, nothing on arm64
		acc = append(acc, HVKVM, HVNone)
	case HVApple: // DMI (#24419), then CPUID "Apple VZ" (#31007)
		acc = append(acc, HVOther, HVNone)
	case HVSRE: // CPUID "SRESRESRESRE" (#25594)
		acc = append(acc, HVOther)
	}
	for _, s := range d.Signals {
		switch {
		case strings.Contains(s, `"Alibaba Cloud ECS"`): // #43347
			acc = append(acc, HVNone, HVOther)
		case strings.Contains(s, "compatible=linux,dummy-virt"): // #36655
			acc = append(acc, HVNone)
		}
	}
	return acc
}

// systemdSources are the signal prefixes of the sources systemd's
// detect_container() reads itself.
var systemdSources = []string{
	"/proc/vz", "osrelease=", "/run/host/container-manager=", "/run/systemd/container=",
	"/proc/1/environ container=", "/run/.containerenv exists", "/.dockerenv exists", "/sys/fs/cgroup/",
}

// systemdContainerAnswers lists the answers of `systemd-detect-virt
// --container` consistent with rep; the first is rep's own.
func systemdContainerAnswers(rep Report) []string {
	c := rep.Container
	acc := []string{c}
	sigs := rep.ContainerDetail.Signals
	fromSystemdSource := false
	osrelease := ""
	for _, s := range sigs {
		if strings.Contains(s, "TracerPid") {
			fromSystemdSource = true
		}
		for _, p := range systemdSources {
			if strings.HasPrefix(s, p) {
				fromSystemdSource = true
			}
		}
		if v, ok := strings.CutPrefix(s, "osrelease="); ok {
			osrelease = v
		}
	}
	if c == RTKubernetes {
		// systemd has no name for a pod; it names the engine when a
		// marker does.
		if r := rep.ContainerDetail.Runtime; r != "" {
			acc = append(acc, r)
		}
	}
	if c != ContainerNone && !fromSystemdSource {
		// Named from a cgroup path or bind mounts, which systemd does
		// not read: it says container-other (private cgroup namespace)
		// or nothing.
		acc = append(acc, RTContainerOther, ContainerNone)
	}
	switch c {
	case RTContainerd, RTCRIO:
		// Engines systemd has no name for.
		acc = append(acc, RTContainerOther)
	}
	if osrelease != "" {
		wslForSystemd := strings.Contains(osrelease, "Microsoft") || strings.Contains(osrelease, "WSL")
		switch {
		case c != RTWSL && wslForSystemd:
			// systemd stops at WSL; an engine's marker wins here
			// (Docker Desktop runs its containers on the WSL kernel).
			acc = append(acc, RTWSL)
		case c == RTWSL && !wslForSystemd:
			// Early WSL 2 kernels say only "microsoft".
			acc = append(acc, ContainerNone)
		}
	}
	return acc
}

// TestSystemdAnswers pins the mapping down on trees of known machines, so
// that the live comparison is known to accept exactly the documented
// differences whatever machine it runs on.
func TestSystemdAnswers(t *testing.T) {
	for _, tc := range []struct {
		name       string
		files      map[string]string
		cpuid      string
		arch       string
		vm, ct     string // what systemd-detect-virt prints there
		rejectVM   string // an answer that must not be accepted
		rejectCont string
	}{
		{name: "firecracker", files: map[string]string{".dockerenv": ""}, cpuid: "KVMKVMKVM", arch: "amd64",
			vm: "kvm", ct: "docker", rejectVM: "none", rejectCont: "none"},
		{name: "firecracker-bhyve-signature", cpuid: "bhyve bhyve ", arch: "amd64", vm: "bhyve", ct: "none", rejectVM: "kvm"},
		{name: "physical", arch: "amd64", vm: "none", ct: "none", rejectVM: "kvm", rejectCont: "docker"},
		{name: "oracle-server", files: map[string]string{"sys/class/dmi/id/sys_vendor": "Oracle Corporation\n",
			"sys/class/dmi/id/product_name": "ORACLE SERVER X9-2\n"}, arch: "amd64", vm: "oracle", ct: "none"},
		{name: "gce-on-old-systemd", files: map[string]string{"sys/class/dmi/id/product_name": "Google Compute Engine\n"},
			cpuid: "KVMKVMKVM", arch: "amd64", vm: "kvm", ct: "none", rejectVM: "none"},
		{name: "docker-desktop", files: map[string]string{"proc/sys/kernel/osrelease": "5.15.153.1-microsoft-standard-WSL2\n", ".dockerenv": ""},
			cpuid: "Microsoft Hv", arch: "amd64", vm: "microsoft", ct: "wsl", rejectCont: "none"},
		{name: "containerd-cgroup", files: map[string]string{"proc/self/cgroup": "0::/system.slice/cri-containerd-" + strings.Repeat("a", 64) + ".scope\n"},
			arch: "amd64", vm: "none", ct: "container-other", rejectCont: "docker"},
		{name: "arm64-alibaba-on-old-systemd", files: map[string]string{"sys/class/dmi/id/product_name": "Alibaba Cloud ECS\n"},
			arch: "arm64", vm: "none", ct: "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := fstest.MapFS{}
			for p, c := range tc.files {
				m[p] = &fstest.MapFile{Data: []byte(c)}
			}
			rep := Detect(context.Background(), Options{FS: m, Root: tc.name, CPU: VendorCPU(tc.cpuid), Arch: tc.arch, NoMounts: true})
			vms, cts := systemdVMAnswers(rep), systemdContainerAnswers(rep)
			if !slices.Contains(vms, tc.vm) || (tc.rejectVM != "" && slices.Contains(vms, tc.rejectVM)) {
				t.Errorf("vm answers %q: want %q accepted, %q not", vms, tc.vm, tc.rejectVM)
			}
			if !slices.Contains(cts, tc.ct) || (tc.rejectCont != "" && slices.Contains(cts, tc.rejectCont)) {
				t.Errorf("container answers %q: want %q accepted, %q not", cts, tc.ct, tc.rejectCont)
			}
		})
	}
}
