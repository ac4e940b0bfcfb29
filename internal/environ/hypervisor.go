package environ

import (
	"bytes"
	"strconv"
	"strings"
)

// Hypervisor names, as systemd-detect-virt prints them.
const (
	HVNone      = "none"
	HVKVM       = "kvm"
	HVQEMU      = "qemu"
	HVAmazon    = "amazon"
	HVMicrosoft = "microsoft"
	HVVMware    = "vmware"
	HVOracle    = "oracle"
	HVXen       = "xen"
	HVParallels = "parallels"
	HVBhyve     = "bhyve"
	HVQNX       = "qnx"
	HVACRN      = "acrn"
	HVApple     = "apple"
	HVPowerVM   = "powervm"
	HVZVM       = "zvm"
	HVBochs     = "bochs"
	HVUML       = "uml"
	HVGoogle    = "google"
	HVSRE       = "sre"
	HVOther     = "vm-other"
)

// Virtual machine monitors told apart beneath a systemd family (all of them
// report "kvm" or "amazon" to systemd-detect-virt).
const (
	VMMFirecracker     = "firecracker"
	VMMCloudHypervisor = "cloud-hypervisor"
	VMMQEMU            = "qemu"
	VMMKubeVirt        = "kubevirt"
	VMMNitro           = "nitro"
)

// DMI holds the SMBIOS strings the kernel exports in /sys/class/dmi/id.
// Serial numbers and UUIDs are read (AWS Xen instances are recognised by
// them) but never reported.
type DMI struct {
	// SysVendor is the system manufacturer ("QEMU", "Amazon EC2").
	SysVendor string `json:"sys_vendor,omitempty"`
	// ProductName is the system product ("Virtual Machine", "m5.large").
	ProductName string `json:"product_name,omitempty"`
	// ProductVersion is the system version (Hyper-V puts its name here).
	ProductVersion string `json:"product_version,omitempty"`
	// BoardVendor is the baseboard manufacturer.
	BoardVendor string `json:"board_vendor,omitempty"`
	// BoardName is the baseboard product.
	BoardName string `json:"board_name,omitempty"`
	// BoardAssetTag is the baseboard asset tag (the instance id on EC2).
	BoardAssetTag string `json:"board_asset_tag,omitempty"`
	// BIOSVendor is the firmware vendor ("SeaBIOS", "Amazon EC2").
	BIOSVendor string `json:"bios_vendor,omitempty"`
	// BIOSVersion is the firmware version ("4.11.amazon" on EC2 Xen).
	BIOSVersion string `json:"bios_version,omitempty"`
	// ChassisVendor is the chassis manufacturer.
	ChassisVendor string `json:"chassis_vendor,omitempty"`
	// ChassisAssetTag is the chassis asset tag (Azure's fixed tag,
	// "OracleCloud.com", "ibmcloud").
	ChassisAssetTag string `json:"chassis_asset_tag,omitempty"`

	productSerial string // "GoogleCloud-...", "ec2..." on EC2 Xen
	productUUID   string // "ec2..." on EC2 Xen
}

func (d DMI) empty() bool { return d == DMI{} }

func readDMI(r *sysReader) DMI {
	const dir = "/sys/class/dmi/id/"
	return DMI{
		SysVendor:       r.line(dir + "sys_vendor"),
		ProductName:     r.line(dir + "product_name"),
		ProductVersion:  r.line(dir + "product_version"),
		BoardVendor:     r.line(dir + "board_vendor"),
		BoardName:       r.line(dir + "board_name"),
		BoardAssetTag:   r.line(dir + "board_asset_tag"),
		BIOSVendor:      r.line(dir + "bios_vendor"),
		BIOSVersion:     r.line(dir + "bios_version"),
		ChassisVendor:   r.line(dir + "chassis_vendor"),
		ChassisAssetTag: r.line(dir + "chassis_asset_tag"),
		productSerial:   r.line(dir + "product_serial"),
		productUUID:     r.line(dir + "product_uuid"),
	}
}

// XenDetail says which kind of Xen domain this is.
type XenDetail struct {
	// Role is "dom0" (the control domain, which systemd reports as no
	// virtualization) or "domU" (a guest).
	Role string `json:"role"`
	// Mode is the guest type from /sys/hypervisor/guest_type: "pv",
	// "hvm" or "pvh"; empty when unknown.
	Mode string `json:"mode,omitempty"`
}

// HypervisorDetail refines Report.Hypervisor.
type HypervisorDetail struct {
	// Physical is true when no hypervisor was found (and this is not a
	// Xen dom0, which runs on one).
	Physical bool `json:"physical"`
	// VMM names the monitor more precisely than the systemd family where
	// it can be told apart: firecracker, cloud-hypervisor, qemu, kubevirt,
	// nitro.
	VMM string `json:"vmm,omitempty"`
	// CPUIDVendor is the raw signature at CPUID leaf 0x40000000.
	CPUIDVendor string `json:"cpuid_vendor,omitempty"`
	// Xen is set on Xen domains, dom0 included.
	Xen *XenDetail `json:"xen,omitempty"`
	// DMI is what /sys/class/dmi/id said (empty on machines without DMI).
	DMI DMI `json:"dmi"`
	// Signals lists the evidence used, most decisive first.
	Signals []string `json:"signals"`
}

// Nested describes whether this machine may itself run virtual machines
// while being one.
type Nested struct {
	// Available is true when this is a guest that can run guests of its
	// own: the hypervisor offers it VMX or SVM, or KVM runs here in PVM
	// mode.
	Available bool `json:"available"`
	// VMX is Intel VT-x as seen by this machine (CPUID or cpuinfo flags).
	VMX bool `json:"vmx"`
	// SVM is AMD-V as seen by this machine.
	SVM bool `json:"svm"`
	// HyperVEnlightenedVMCS is true when Hyper-V recommended its nested
	// enlightenments (enlightened VMCS) and KVM took them
	// (/sys/module/kvm_intel/parameters/enlightened_vmcs).
	HyperVEnlightenedVMCS bool `json:"hyperv_enlightened_vmcs"`
	// KVMNestedParam is KVM's own "nested" module parameter: this machine
	// lets its guests nest in turn.
	KVMNestedParam bool `json:"kvm_nested_param"`
	// KVMDevice is true when /dev/kvm exists: a KVM module (kvm_intel,
	// kvm_amd, or kvm_pvm without hardware support) is loaded here.
	KVMDevice bool `json:"kvm_device"`
	// Mechanism is how a guest here would be run: "vmx", "svm", or "pvm"
	// (KVM's paravirtualized mode, /sys/module/kvm_pvm); empty when none.
	Mechanism string `json:"mechanism,omitempty"`
	// Signals lists the evidence used.
	Signals []string `json:"signals"`
}

// cpuidTable maps leaf 0x40000000 signatures to systemd names.
var cpuidTable = []struct{ sig, name string }{
	{"XenVMMXenVMM", HVXen},
	{"KVMKVMKVM", HVKVM},
	{"Linux KVM Hv", HVKVM}, // KVM with Hyper-V enlightenments
	{"TCGTCGTCGTCG", HVQEMU},
	{"VMwareVMware", HVVMware},
	{"Microsoft Hv", HVMicrosoft},
	{"bhyve bhyve ", HVBhyve},
	{"QNXQVMBSQG", HVQNX},
	{"ACRNACRNACRN", HVACRN},
	{"SRESRESRESRE", HVSRE},
	{"Apple VZ", HVApple},
}

func cpuidName(cpu CPUInfo) string {
	if !cpu.HypervisorBit {
		return HVNone
	}
	v := strings.TrimRight(cpu.HypervisorVendor, "\x00")
	for _, e := range cpuidTable {
		if v == e.sig || v == strings.TrimRight(e.sig, " ") {
			return e.name
		}
	}
	return HVOther
}

// dmiVMTable is matched as a prefix against each DMI field in dmiVMFields
// order, as systemd does.
var dmiVMTable = []struct{ prefix, name string }{
	{"KVM", HVKVM},
	{"OpenStack", HVKVM},
	{"KubeVirt", HVKVM},
	{"Amazon EC2", HVAmazon},
	{"QEMU", HVQEMU},
	{"VMware", HVVMware},
	{"VMW", HVVMware},
	{"innotek GmbH", HVOracle},
	{"VirtualBox", HVOracle},
	{"Oracle Corporation", HVOracle},
	{"Xen", HVXen},
	{"Bochs", HVBochs},
	{"Parallels", HVParallels},
	{"BHYVE", HVBhyve},
	{"Hyper-V", HVMicrosoft},
	{"Apple Virtualization", HVApple},
	{"Google Compute Engine", HVGoogle},
	// Alibaba Cloud ECS runs on KVM; on arm64, with no CPUID, only its DMI
	// product name says so (systemd PR #43347).
	{"Alibaba Cloud ECS", HVKVM},
}

func dmiVM(d DMI) (string, string) {
	fields := []struct{ name, val string }{
		{"product_name", d.ProductName}, // before sys_vendor: KVM over QEMU
		{"sys_vendor", d.SysVendor},
		{"board_vendor", d.BoardVendor},
		{"bios_vendor", d.BIOSVendor},
		{"product_version", d.ProductVersion}, // Hyper-V
	}
	for _, f := range fields {
		if f.val == "" {
			continue
		}
		for _, e := range dmiVMTable {
			if e.prefix == "Oracle Corporation" && oracleHardware(d) {
				// Oracle's own servers (OCI bare metal) say so too;
				// systemd would call them VirtualBox.
				continue
			}
			if strings.HasPrefix(f.val, e.prefix) {
				return e.name, "dmi " + f.name + "=" + strconv.Quote(f.val)
			}
		}
	}
	return HVNone, ""
}

// oracleHardware tells an Oracle or Sun server from VirtualBox, which both
// write "Oracle Corporation" into DMI.
func oracleHardware(d DMI) bool {
	p := strings.ToUpper(d.ProductName)
	return d.ChassisAssetTag == "OracleCloud.com" || strings.HasPrefix(p, "ORACLE SERVER") || strings.HasPrefix(p, "SUN ")
}

// smbiosVMBit reads the "virtual machine" bit of the SMBIOS BIOS
// characteristics extension byte 2 (DSP0134 2.1.2.2). ok is false when the
// table cannot tell.
func smbiosVMBit(r *sysReader) (set, ok bool) {
	b, err := r.read("/sys/firmware/dmi/entries/0-0/raw", smallFile)
	if err != nil || len(b) < 20 || b[1] < 20 {
		return false, false
	}
	return b[19]&(1<<4) != 0, true
}

func isAWSMetal(productName string) bool {
	i := strings.Index(productName, ".metal")
	if i < 0 {
		return false
	}
	rest := productName[i+len(".metal"):]
	return rest == "" || rest[0] == '-'
}

// cpuinfo holds what /proc/cpuinfo says that matters here.
type cpuinfo struct {
	vendorID string
	flags    map[string]bool
}

func readCPUInfo(r *sysReader) cpuinfo {
	var ci cpuinfo
	b, err := r.read("/proc/cpuinfo", largeFile)
	if err != nil {
		return ci
	}
	for len(b) > 0 {
		var ln []byte
		ln, b, _ = bytes.Cut(b, []byte{'\n'})
		k, v, ok := bytes.Cut(ln, []byte{':'})
		if !ok {
			continue
		}
		key := string(bytes.TrimSpace(k))
		switch {
		case key == "vendor_id" && ci.vendorID == "":
			ci.vendorID = string(bytes.TrimSpace(v))
		case key == "flags" && ci.flags == nil:
			ci.flags = map[string]bool{}
			for _, f := range strings.Fields(string(v)) {
				ci.flags[f] = true
			}
		}
		if ci.vendorID != "" && ci.flags != nil {
			break
		}
	}
	return ci
}

// acpiOEM returns the OEM ID (bytes 10..15 of the header) of the DSDT or,
// failing that, the FADT. Firecracker writes "FIRECK", cloud-hypervisor
// "CLOUDH", QEMU "BOCHS ".
func acpiOEM(r *sysReader) string {
	for _, t := range []string{"DSDT", "FACP"} {
		b, err := r.read("/sys/firmware/acpi/tables/"+t, 36)
		if err != nil || len(b) < 16 {
			continue
		}
		s, _ := printable(b[10:16])
		return s
	}
	return ""
}

func xenDom0(r *sysReader) (dom0 bool, signal string) {
	if f := r.line("/sys/hypervisor/properties/features"); f != "" {
		if v, err := strconv.ParseUint(strings.TrimPrefix(f, "0x"), 16, 64); err == nil {
			const xenfeatDom0 = 11 // xen/include/public/features.h
			return v&(1<<xenfeatDom0) != 0, "/sys/hypervisor/properties/features=" + f
		}
	}
	c := r.line("/proc/xen/capabilities")
	for _, cap := range strings.Split(c, ",") {
		if strings.TrimSpace(cap) == "control_d" {
			return true, "/proc/xen/capabilities has control_d"
		}
	}
	return false, "/proc/xen present without control_d"
}

func archHas(arch string, list ...string) bool {
	if arch == "" {
		return true
	}
	for _, a := range list {
		if a == arch {
			return true
		}
	}
	return false
}

func detectDeviceTree(r *sysReader, arch string) (string, string) {
	if !archHas(arch, "arm", "arm64", "ppc64", "ppc64le", "riscv64") {
		return HVNone, ""
	}
	if b, err := r.read("/proc/device-tree/hypervisor/compatible", smallFile); err == nil {
		first, _, _ := bytes.Cut(b, []byte{0})
		hv, _ := printable(first)
		sig := "device-tree hypervisor/compatible=" + strconv.Quote(hv)
		switch {
		case hv == "linux,kvm":
			return HVKVM, sig
		case strings.Contains(hv, "xen"):
			return HVXen, sig
		case strings.Contains(hv, "vmware"):
			return HVVMware, sig
		default:
			return HVOther, sig
		}
	}
	if r.exists("/proc/device-tree/ibm,partition-name") && r.exists("/proc/device-tree/hmc-managed?") &&
		!r.exists("/proc/device-tree/chosen/qemu,graphic-width") {
		return HVPowerVM, "device-tree ibm,partition-name and hmc-managed?"
	}
	for _, e := range r.dir("/proc/device-tree") {
		if strings.Contains(e.Name(), "fw-cfg") {
			return HVQEMU, "device-tree " + e.Name()
		}
	}
	if b, err := r.read("/proc/device-tree/compatible", smallFile); err == nil {
		first, _, _ := bytes.Cut(b, []byte{0})
		switch c := string(bytes.TrimSpace(first)); c {
		case "qemu,pseries":
			return HVQEMU, "device-tree compatible=qemu,pseries"
		case "linux,dummy-virt":
			// The board name the kernel's bindings reserve for machines
			// that exist only as a VMM's device tree (Firecracker, crosvm,
			// kvmtool on arm64): a VM, but not which one (systemd PR
			// #36655). QEMU's "virt" board says so too, which is why the
			// fw-cfg node is looked for first.
			return HVOther, "device-tree compatible=linux,dummy-virt"
		}
	}
	return HVNone, ""
}

func detectZVM(r *sysReader, arch string) (string, string) {
	if !archHas(arch, "s390x", "s390") {
		return HVNone, ""
	}
	b, err := r.read("/proc/sysinfo", largeFile)
	if err != nil {
		return HVNone, ""
	}
	for _, ln := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(ln, "VM00 Control Program:"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				continue
			}
			sig := "/proc/sysinfo VM00 Control Program=" + strconv.Quote(f[0])
			if f[0] == "z/VM" {
				return HVZVM, sig
			}
			return HVKVM, sig
		}
	}
	return HVNone, ""
}

// detectHypervisor follows systemd's detect_vm() order and then refines.
func detectHypervisor(r *sysReader, cpu CPUInfo, arch string, dmi DMI, ci cpuinfo) (string, HypervisorDetail) {
	d := HypervisorDetail{DMI: dmi, CPUIDVendor: cpu.HypervisorVendor, Signals: []string{}}
	add := func(s string) {
		if s != "" {
			d.Signals = append(d.Signals, s)
		}
	}
	name := func() string {
		// 1. DMI names that win even over a KVM CPUID signature.
		dmiName, dmiSig := dmiVM(dmi)
		if dmiName == HVAmazon {
			// DMI cannot tell EC2 VMs from bare-metal instances; SMBIOS can.
			set, ok := smbiosVMBit(&sysReader{fsys: r.fsys}) // raw table is root-only: a failure is expected
			switch {
			case ok && set:
				add(dmiSig)
				add("smbios: virtual machine bit set")
			case ok && !set:
				add(dmiSig)
				add("smbios: virtual machine bit clear (bare metal)")
				dmiName = HVNone
			case isAWSMetal(dmi.ProductName):
				add(dmiSig)
				add("dmi product_name has .metal (bare metal)")
				dmiName = HVNone
			default:
				add(dmiSig)
			}
			// A bare-metal instance goes on through the other checks,
			// as in systemd.
		}
		switch dmiName {
		case HVOracle, HVXen, HVAmazon, HVParallels, HVGoogle:
			if dmiName != HVAmazon {
				add(dmiSig)
			}
			return dmiName
		}
		// 2. User-mode Linux.
		if strings.HasPrefix(ci.vendorID, "User Mode Linux") {
			add("/proc/cpuinfo vendor_id=" + strconv.Quote(ci.vendorID))
			return HVUML
		}
		// 3. Xen, whose PV guests do not set the CPUID bit.
		dom0 := false
		if r.exists("/proc/xen") {
			var sig string
			dom0, sig = xenDom0(r)
			add(sig)
			if !dom0 {
				return HVXen
			}
		}
		// 4. CPUID.
		hyperv, other := false, false
		switch c := cpuidName(cpu); c {
		case HVNone:
		case HVMicrosoft:
			// QEMU with Hyper-V enlightenments shows this signature too.
			hyperv = true
			add("cpuid leaf 0x40000000=" + strconv.Quote(cpu.HypervisorVendor))
		case HVOther:
			other = true
			add("cpuid leaf 0x40000000=" + strconv.Quote(cpu.HypervisorVendor) + " (unknown)")
		default:
			add("cpuid leaf 0x40000000=" + strconv.Quote(cpu.HypervisorVendor))
			return c
		}
		fallback := func() string {
			switch {
			case hyperv:
				return HVMicrosoft
			case other:
				return HVOther
			}
			return HVNone
		}
		if dom0 {
			return fallback()
		}
		// 5. DMI again, for the rest of the table.
		if dmiName != HVNone {
			add(dmiSig)
			return dmiName
		}
		if set, ok := smbiosVMBit(&sysReader{fsys: r.fsys}); ok && set {
			add("smbios: virtual machine bit set")
			other = true
		}
		// 6. /sys/hypervisor.
		if t := r.line("/sys/hypervisor/type"); t != "" {
			add("/sys/hypervisor/type=" + strconv.Quote(t))
			if t == "xen" {
				return HVXen
			}
			other = true
		}
		// 7. Device tree (Arm, POWER, RISC-V).
		if n, sig := detectDeviceTree(r, arch); n != HVNone {
			add(sig)
			if n != HVOther {
				return n
			}
			other = true
		}
		// 8. s390 /proc/sysinfo.
		if n, sig := detectZVM(r, arch); n != HVNone {
			add(sig)
			return n
		}
		return fallback()
	}()

	// Xen detail, dom0 included.
	if name == HVXen || r.exists("/proc/xen") {
		x := &XenDetail{Role: "domU"}
		if r.exists("/proc/xen") {
			if dom0, _ := xenDom0(&sysReader{fsys: r.fsys}); dom0 {
				x.Role = "dom0"
			}
		}
		switch gt := strings.ToLower(r.line("/sys/hypervisor/guest_type")); gt {
		case "pv", "hvm", "pvh":
			x.Mode = gt
		default:
			if cpuidName(cpu) == HVXen {
				x.Mode = "hvm"
			} else if r.exists("/proc/xen") && !cpu.HypervisorBit && name == HVXen {
				x.Mode = "pv"
			}
		}
		if x.Role == "dom0" || name == HVXen {
			d.Xen = x
		}
	}

	// The monitor beneath the family.
	oem := acpiOEM(r)
	switch {
	case oem == "FIRECK":
		d.VMM = VMMFirecracker
		add("acpi oem id FIRECK")
		if name != HVKVM && name != HVNone {
			// Firecracker runs only on KVM, but the family stays the one
			// systemd-detect-virt prints for this CPUID (some Firecracker
			// builds present bhyve's "bhyve bhyve " signature), so that
			// `hypervisor` keeps meaning the same on every machine; the
			// VMM says what runs the guest.
			add("cpuid family " + name + " kept as systemd names it; the VMM is Firecracker, a KVM monitor")
		}
	case oem == "CLOUDH" || strings.HasPrefix(dmi.SysVendor, "Cloud Hypervisor"):
		d.VMM = VMMCloudHypervisor
		if oem == "CLOUDH" {
			add("acpi oem id CLOUDH")
		} else {
			add("dmi sys_vendor=" + strconv.Quote(dmi.SysVendor))
		}
	case strings.HasPrefix(dmi.ProductName, "KubeVirt") || strings.HasPrefix(dmi.SysVendor, "KubeVirt"):
		d.VMM = VMMKubeVirt
	case name == HVAmazon:
		d.VMM = VMMNitro
	case (name == HVKVM || name == HVQEMU) && strings.HasPrefix(dmi.SysVendor, "QEMU"):
		d.VMM = VMMQEMU
	}
	if name == HVNone && (d.VMM == VMMFirecracker || d.VMM == VMMCloudHypervisor) {
		// Both run only on KVM here; seen when CPUID is not available
		// (a captured tree inspected with --root).
		name = HVKVM
	}
	d.Physical = name == HVNone && (d.Xen == nil || d.Xen.Role != "dom0")
	return name, d
}

func detectNested(r *sysReader, cpu CPUInfo, hv string, ci cpuinfo) Nested {
	n := Nested{VMX: cpu.VMX || ci.flags["vmx"], SVM: cpu.SVM || ci.flags["svm"], Signals: []string{}}
	if cpu.VMX {
		n.Signals = append(n.Signals, "cpuid vmx")
	} else if ci.flags["vmx"] {
		n.Signals = append(n.Signals, "/proc/cpuinfo flags vmx")
	}
	if cpu.SVM {
		n.Signals = append(n.Signals, "cpuid svm")
	} else if ci.flags["svm"] {
		n.Signals = append(n.Signals, "/proc/cpuinfo flags svm")
	}
	if yes(r.line("/sys/module/kvm_intel/parameters/enlightened_vmcs")) {
		n.HyperVEnlightenedVMCS = true
		n.Signals = append(n.Signals, "kvm_intel enlightened_vmcs=Y")
	}
	for _, m := range []string{"kvm_intel", "kvm_amd"} {
		if yes(r.line("/sys/module/" + m + "/parameters/nested")) {
			n.KVMNestedParam = true
			n.Signals = append(n.Signals, m+" nested=Y")
		}
	}
	if r.exists("/dev/kvm") {
		n.KVMDevice = true
		n.Signals = append(n.Signals, "/dev/kvm exists")
	}
	switch {
	case n.VMX:
		n.Mechanism = "vmx"
	case n.SVM:
		n.Mechanism = "svm"
	case r.exists("/sys/module/kvm_pvm"):
		n.Mechanism = "pvm"
		n.Signals = append(n.Signals, "kvm_pvm module loaded")
	}
	n.Available = hv != HVNone && (n.VMX || n.SVM || (n.KVMDevice && n.Mechanism != ""))
	return n
}

func yes(s string) bool { return s == "Y" || s == "1" || s == "y" }
