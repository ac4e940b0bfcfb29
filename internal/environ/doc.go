// Package environ tells where drmfilter runs: the hypervisor under the
// machine, the cloud it belongs to, whether nested virtualization is offered,
// the container (if any) around this process or any other PID, the block
// devices and whether they are virtual, and the mounts with their storage
// class.
//
// Every detector reads the machine through a root directory (Options.Root),
// so production passes "/" (or "/host" in a pod) and tests pass a fixture
// tree from testdata/. CPUID, the only input that does not come from a file,
// goes through the CPU interface so that a fixture can supply it. Nothing in
// the package logs or keeps global state: a problem met while reading (an
// unreadable file, garbage content) becomes a best-effort answer plus a
// Problem recorded in the Report.
//
// The hypervisor logic follows the order of systemd's detect_vm()
// (src/basic/virt.c): DMI vendors that cloak as KVM first, then UML, Xen,
// CPUID leaf 0x40000000, DMI, /sys/hypervisor, /proc/device-tree and
// /proc/sysinfo; names are those systemd-detect-virt prints. Sources:
// Documentation/ABI/testing/sysfs-firmware-dmi-tables (DMI),
// Documentation/ABI/stable/sysfs-hypervisor-xen, cgroups(7), proc(5).
//
// Files:
//
//	doc.go          this comment
//	report.go       Report and its parts, Options, Detect
//	fsread.go       reading files under the root, recording problems
//	cpu.go          the CPU interface and a fixed implementation
//	cpu_linux.go    live CPUID through github.com/klauspost/cpuid/v2
//	cpu_other.go    fallback that reports ErrNotSupported
//	hypervisor.go   hypervisor family, VMM, Xen role, nested virtualization
//	cloud.go        cloud provider (ds-identify's checks and order), bare metal
//	metadata.go     opt-in query of the instance metadata service
//	disks.go        block devices from /sys/block and their kind
//	cgroup.go       container runtime and ID from /proc/PID/cgroup lines
//	cgroupowner.go  CgroupOwners: was a cgroup's name given by root (delegation, cgroup-v2.rst)
//	cgroupowner_linux.go, cgroupowner_other.go  its stat and statfs of the cgroup file systems
//	container.go    container of this process and of any PID, with a cache
//	mounts.go       mounts with storage class (internal/mountinfo, internal/storage)
package environ
